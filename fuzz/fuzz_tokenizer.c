/* fuzz_tokenizer.c - libFuzzer target for the tokenizer.
 *
 * Each input is encoded as text, without and with the special token, and
 * the target aborts unless: the pieces of the pre-tokenizer tile the input;
 * the default loop choice, the heap loop alone and the small-piece loop
 * alone give the same ids; every encoding decodes back to the input bytes;
 * ids are in range; and the special flag changes nothing but the
 * "<|endoftext|>" occurrences.  ASan and UBSan watch the rest.
 *
 * The GPT-2 vocabulary is loaded once, from $GPT2_SHARED/gpt2, else
 * ../shared/gpt2 from the current directory, else the shared folder beside
 * the source tree; without it the target stops at once rather than fuzzing
 * nothing.  The three tokenizers keep their word caches between inputs, so
 * cached pieces are checked against uncached ones too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_vocab.h"
#include "pretokenize.h"
#include "tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EOT_TEXT "<|endoftext|>"

/* Loaded once by LLVMFuzzerInitialize and kept for the whole run. */
static struct {
    HfVocab vocab;
    Tokenizer *plain; /* default loop choice */
    Tokenizer *heap;  /* every piece through the heap loop */
    Tokenizer *small; /* every piece through the small-piece loop */
} g_fx;

static void die(const char *what) {
    fprintf(stderr, "fuzz_tokenizer: %s\n", what);
    abort();
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The folder holding vocab.json and merges.txt. */
static void find_vocab_dir(char *out, size_t outsz) {
    const char *env = getenv("GPT2_SHARED");
    if (env && *env) {
        snprintf(out, outsz, "%s/gpt2", env);
        if (!is_dir(out)) {
            fprintf(stderr, "fuzz_tokenizer: GPT2_SHARED=%s has no gpt2 folder\n", env);
            abort();
        }
        return;
    }
    snprintf(out, outsz, "../shared/gpt2");
    if (is_dir(out)) return;
    /* Beside the source tree: this file is SRC/fuzz/fuzz_tokenizer.c. */
    const char *file = __FILE__;
    const char *fuzz_dir = strstr(file, "fuzz/fuzz_tokenizer.c");
    if (fuzz_dir && (fuzz_dir == file || fuzz_dir[-1] == '/')) {
        snprintf(out, outsz, "%.*s../shared/gpt2", (int)(fuzz_dir - file), file);
        if (is_dir(out)) return;
    }
    fprintf(stderr,
            "fuzz_tokenizer: cannot find the GPT-2 vocabulary (tried ../shared/gpt2 and %s); "
            "set GPT2_SHARED to the shared data folder\n",
            out);
    abort();
}

static Tokenizer *build_tokenizer(size_t small_piece_max) {
    char err[512];
    Tokenizer *t;
    if (!gpt2_tokenizer_build(&t, &g_fx.vocab.data, err, sizeof err)) die(err);
    gpt2_tokenizer_set_small_piece_max(t, small_piece_max);
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char dir[4096], vocab[4200], merges[4200], err[512];
    find_vocab_dir(dir, sizeof dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    if (!gpt2_hf_vocab_load(&g_fx.vocab, vocab, merges, err, sizeof err)) die(err);
    g_fx.plain = build_tokenizer(TOKENIZER_SMALL_PIECE_MAX);
    g_fx.heap = build_tokenizer(0);
    g_fx.small = build_tokenizer(SIZE_MAX);
    return 0;
}

static void check_pieces_tile(const uint8_t *data, size_t size) {
    PreTokenizer p;
    gpt2_pretok_init(&p, data, size);
    size_t at, n, expect_at = 0;
    while (gpt2_pretok_next(&p, &at, &n)) {
        if (at != expect_at || n == 0 || n > size - at) die("pieces do not tile the input");
        expect_at = at + n;
    }
    if (expect_at != size) die("pieces do not cover the input");
}

static TokenList encode(Tokenizer *t, const uint8_t *data, size_t size, bool special) {
    TokenList ids = {0};
    if (!gpt2_tokenizer_encode(t, data, size, special, &ids)) die("encode failed");
    return ids;
}

static bool same_ids(const TokenList *a, const TokenList *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->ids, b->ids, a->n * sizeof *a->ids) == 0);
}

static void check_decodes_to(const TokenList *ids, const uint8_t *data, size_t size) {
    StrBuf back = {0};
    if (!gpt2_tokenizer_decode(g_fx.plain, ids->ids, ids->n, &back)) die("decode refused the ids of an encoding");
    if (back.len != size || (size && memcmp(back.data, data, size) != 0)) die("decode(encode(x)) != x");
    gpt2_strbuf_free(&back);
}

static size_t count_eot_text(const uint8_t *data, size_t size) {
    size_t count = 0, len = sizeof EOT_TEXT - 1;
    for (size_t i = 0; i + len <= size;) {
        if (memcmp(data + i, EOT_TEXT, len) == 0) {
            count++;
            i += len;
        } else {
            i++;
        }
    }
    return count;
}

static size_t count_id(const TokenList *ids, int32_t id) {
    size_t count = 0;
    for (size_t i = 0; i < ids->n; i++) count += ids->ids[i] == id;
    return count;
}

static void check_ordinary(const uint8_t *data, size_t size) {
    TokenList plain = encode(g_fx.plain, data, size, false);
    TokenList heap = encode(g_fx.heap, data, size, false);
    TokenList small = encode(g_fx.small, data, size, false);
    if (!same_ids(&plain, &heap)) die("the heap loop disagrees with the default loop choice");
    if (!same_ids(&plain, &small)) die("the small-piece loop disagrees with the default loop choice");
    uint32_t n_vocab = gpt2_tokenizer_vocab_size(g_fx.plain);
    for (size_t i = 0; i < plain.n; i++) {
        if (plain.ids[i] < 0 || (uint32_t)plain.ids[i] >= n_vocab) die("id out of range");
    }
    if (count_id(&plain, gpt2_tokenizer_eot(g_fx.plain)) != 0)
        die("the special token appeared without the special flag");
    check_decodes_to(&plain, data, size);
    gpt2_token_list_free(&plain);
    gpt2_token_list_free(&heap);
    gpt2_token_list_free(&small);
}

static void check_special(const uint8_t *data, size_t size) {
    TokenList special = encode(g_fx.plain, data, size, true);
    TokenList heap = encode(g_fx.heap, data, size, true);
    if (!same_ids(&special, &heap)) die("the heap loop disagrees with the default loop choice (special)");
    if (count_id(&special, gpt2_tokenizer_eot(g_fx.plain)) != count_eot_text(data, size)) {
        die("the special flag did not turn each \"<|endoftext|>\" into the special token");
    }
    if (count_eot_text(data, size) == 0) {
        TokenList plain = encode(g_fx.plain, data, size, false);
        if (!same_ids(&special, &plain)) die("the special flag changed a text without \"<|endoftext|>\"");
        gpt2_token_list_free(&plain);
    }
    check_decodes_to(&special, data, size);
    gpt2_token_list_free(&special);
    gpt2_token_list_free(&heap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_pieces_tile(data, size);
    check_ordinary(data, size);
    check_special(data, size);
    return 0;
}
