/* test_tokenizer.c - the tokenizer: exact ids, round trips, linear cost.
 *
 * Exactness is pinned by the shared cases (ids of OpenAI's encoder.py),
 * run through the default, the small-piece and the heap merge loop; the
 * pre-tokenizer's tricky rules have unit tests of their own and, on random
 * text, are compared with a literal re-reading of the regex; synthetic
 * merge tables with shuffled ranks check both loops against encoder.py's
 * bpe() written out naively; properties (byte round trip, loop agreement)
 * run on seeded random texts; and the cost of 1 MB runs is checked with the
 * machine-independent work counters, never with a clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_vocab.h"
#include "json.h"
#include "pretokenize.h"
#include "test_util.h"
#include "tokenizer.h"
#include "unicode_tables.h"
#include "utf8.h"

/* ---- fixtures ------------------------------------------------------------ */

/* The real GPT-2 tokenizer, loaded once from the shared folder and freed by
 * the group teardown. */
static struct {
    HfVocab vocab;
    Tokenizer *tok;
} g_gpt2;

/* The shared GPT-2 tokenizer with the default loop choice and an empty word
 * cache, whatever an earlier (maybe failed) test left behind. */
static Tokenizer *gpt2_tokenizer(const char *shared) {
    if (!g_gpt2.tok) {
        char vocab[4096], merges[4096], err[512];
        test_path(vocab, sizeof vocab, shared, "gpt2/vocab.json");
        test_path(merges, sizeof merges, shared, "gpt2/merges.txt");
        if (!gpt2_hf_vocab_load(&g_gpt2.vocab, vocab, merges, err, sizeof err)) fail_msg("%s", err);
        if (!gpt2_tokenizer_build(&g_gpt2.tok, &g_gpt2.vocab.data, err, sizeof err)) fail_msg("%s", err);
    }
    gpt2_tokenizer_set_small_piece_max(g_gpt2.tok, TOKENIZER_SMALL_PIECE_MAX);
    return g_gpt2.tok;
}

#define REQUIRE_GPT2(var)                                                                                              \
    REQUIRE_SHARED(shared_dir_);                                                                                       \
    Tokenizer *var = gpt2_tokenizer(shared_dir_)

static int free_gpt2(void **state) {
    (void)state;
    gpt2_tokenizer_free(g_gpt2.tok);
    if (g_gpt2.tok) gpt2_hf_vocab_free(&g_gpt2.vocab);
    g_gpt2.tok = NULL;
    return 0;
}

/* ---- small helpers -------------------------------------------------------- */

/* A deterministic PRNG (splitmix64), so every random test is repeatable. */
typedef struct {
    uint64_t state;
} Rng;

static uint64_t rng_next(Rng *r) {
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n >= 1 (the bias is irrelevant here). */
static uint32_t rng_below(Rng *r, uint32_t n) { return (uint32_t)(rng_next(r) % n); }

/* text[0..len) with non-printable bytes escaped, cut to fit out. */
static const char *escaped(const void *text, size_t len, char *out, size_t outsz) {
    const uint8_t *s = text;
    size_t w = 0, i = 0;
    for (; i < len && w + 8 < outsz; i++) { /* room for one escape and "..." */
        if (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '\\') out[w++] = (char)s[i];
        else w += (size_t)snprintf(out + w, outsz - w, "\\x%02X", s[i]);
    }
    if (i < len) w += (size_t)snprintf(out + w, outsz - w, "...");
    out[w] = '\0';
    return out;
}

static TokenList encode(Tokenizer *t, const void *text, size_t len, bool special) {
    TokenList ids = {0};
    assert_true(gpt2_tokenizer_encode(t, text, len, special, &ids));
    return ids;
}

/* Fails unless the ids decode to text[0..len) exactly. */
static void check_decodes_to(Tokenizer *t, const TokenList *ids, const void *text, size_t len) {
    StrBuf back = {0};
    assert_true(gpt2_tokenizer_decode(t, ids->ids, ids->n, &back));
    if (back.len != len || (len && memcmp(back.data, text, len) != 0)) {
        char a[200];
        fail_msg("decode(encode(x)) != x for x = \"%s\"", escaped(text, len, a, sizeof a));
    }
    gpt2_strbuf_free(&back);
}

static void check_same_ids(const TokenList *got, const int32_t *want, size_t n_want, const char *what, const void *text,
                           size_t len) {
    size_t n = got->n < n_want ? got->n : n_want;
    size_t i = 0;
    while (i < n && got->ids[i] == want[i]) i++;
    if (i == n && got->n == n_want) return;
    char a[200];
    fail_msg("%s: %zu ids where %zu were expected, first difference at id %zu (got %d, want %d), text \"%s\"", what,
             got->n, n_want, i, i < got->n ? got->ids[i] : -1, i < n_want ? want[i] : -1,
             escaped(text, len, a, sizeof a));
}

/* The id of the single-byte token for byte b. */
static int32_t byte_token(const Tokenizer *t, uint8_t b) {
    for (int32_t id = 0; id < (int32_t)gpt2_tokenizer_vocab_size(t); id++) {
        size_t len;
        const uint8_t *bytes = gpt2_tokenizer_token(t, id, &len);
        if (len == 1 && bytes[0] == b) return id;
    }
    fail_msg("no token for byte 0x%02X", b);
    return -1;
}

static uint64_t total_work(const TokenizerStats *s) {
    return s->merges + s->pair_table.searches + s->heap_steps + s->scan_steps;
}

/* ---- the shared cases ---------------------------------------------------- */

typedef struct {
    char *text; /* [len + 1], UTF-8 */
    size_t len;
    int32_t *ids; /* [n_ids] */
    size_t n_ids;
} Case;

typedef struct {
    Case *items;
    size_t n;
} CaseList;

static void read_case(const char *line, size_t len, size_t lineno, Case *c) {
    JsonDoc doc;
    char err[256];
    if (!gpt2_json_parse(&doc, line, len, err, sizeof err)) fail_msg("line %zu: %s", lineno, err);
    const JsonValue *text = gpt2_json_get(doc.root, "text");
    const JsonValue *ids = gpt2_json_get(doc.root, "ids");
    if (!text || text->type != JSON_STRING || !ids || ids->type != JSON_ARRAY) {
        fail_msg("line %zu: expected {\"text\": string, \"ids\": array}", lineno);
    }
    c->len = text->n;
    c->text = malloc(c->len + 1);
    c->n_ids = gpt2_json_count(ids);
    c->ids = malloc((c->n_ids ? c->n_ids : 1) * sizeof *c->ids);
    assert_non_null(c->text);
    assert_non_null(c->ids);
    memcpy(c->text, gpt2_json_string(text, NULL), c->len + 1);
    JsonIter it = gpt2_json_iter(ids);
    for (size_t i = 0; i < c->n_ids; i++) {
        int64_t v;
        if (!gpt2_json_as_int(gpt2_json_next(&it, NULL), 0, INT32_MAX, &v))
            fail_msg("line %zu: bad id #%zu", lineno, i);
        c->ids[i] = (int32_t)v;
    }
    gpt2_json_free(&doc);
}

/* Reads shared/gpt2/NAME, one case a line, and checks the count. */
static CaseList read_cases(const char *shared, const char *name, size_t expected) {
    char path[4096];
    test_path(path, sizeof path, shared, name);
    StrBuf file = {0};
    test_read_file(path, &file);
    CaseList list = {calloc(expected + 1, sizeof(Case)), 0};
    assert_non_null(list.items);
    size_t lineno = 0;
    for (size_t at = 0; at < file.len;) {
        const char *nl = memchr(file.data + at, '\n', file.len - at);
        size_t end = nl ? (size_t)(nl - file.data) : file.len;
        lineno++;
        if (end > at) {
            if (list.n == expected) fail_msg("%s holds more than %zu cases", name, expected);
            read_case(file.data + at, end - at, lineno, &list.items[list.n++]);
        }
        at = end + 1;
    }
    gpt2_strbuf_free(&file);
    if (list.n != expected) fail_msg("%s holds %zu cases, expected %zu", name, list.n, expected);
    return list;
}

static void free_cases(CaseList *list) {
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].text);
        free(list->items[i].ids);
    }
    free(list->items);
}

/* Every case gives exactly its ids, and they decode back to its text. */
static void check_cases(Tokenizer *t, const CaseList *cases, const char *what) {
    for (size_t i = 0; i < cases->n; i++) {
        const Case *c = &cases->items[i];
        TokenList ids = encode(t, c->text, c->len, false);
        char label[128];
        snprintf(label, sizeof label, "%s case %zu", what, i + 1);
        check_same_ids(&ids, c->ids, c->n_ids, label, c->text, c->len);
        check_decodes_to(t, &ids, c->text, c->len);
        gpt2_token_list_free(&ids);
    }
}

static void test_shared_cases_exact(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    CaseList cases = read_cases(shared_dir_, "gpt2/tokenizer_cases.jsonl", 877);
    check_cases(t, &cases, "tokenizer_cases.jsonl");
    /* Again from a warm word cache: cached pieces must give the same ids. */
    check_cases(t, &cases, "tokenizer_cases.jsonl (warm cache)");
    free_cases(&cases);
}

static void test_peer_cases_exact(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    CaseList cases = read_cases(shared_dir_, "gpt2/peer_cases.jsonl", 147);
    check_cases(t, &cases, "peer_cases.jsonl");
    free_cases(&cases);
}

/* With every piece forced through one loop, the cases still give their ids,
 * and the counters show that only that loop ran. */
static void test_cases_exact_with_each_loop(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    CaseList cases = read_cases(shared_dir_, "gpt2/tokenizer_cases.jsonl", 877);
    CaseList peers = read_cases(shared_dir_, "gpt2/peer_cases.jsonl", 147);

    gpt2_tokenizer_set_small_piece_max(t, 0);
    TokenizerStats before = gpt2_tokenizer_stats(t);
    check_cases(t, &cases, "heap loop only");
    check_cases(t, &peers, "heap loop only");
    TokenizerStats after = gpt2_tokenizer_stats(t);
    assert_int_equal(after.scan_steps, before.scan_steps);
    assert_true(after.heap_steps > before.heap_steps);

    gpt2_tokenizer_set_small_piece_max(t, SIZE_MAX);
    before = gpt2_tokenizer_stats(t);
    check_cases(t, &cases, "small loop only");
    check_cases(t, &peers, "small loop only");
    after = gpt2_tokenizer_stats(t);
    assert_int_equal(after.heap_steps, before.heap_steps);
    assert_true(after.scan_steps > before.scan_steps);

    gpt2_tokenizer_set_small_piece_max(t, TOKENIZER_SMALL_PIECE_MAX);
    free_cases(&cases);
    free_cases(&peers);
}

/* By default a piece of TOKENIZER_SMALL_PIECE_MAX bytes takes the small
 * loop and a longer one the heap. */
static void test_default_loop_choice(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    char word[TOKENIZER_SMALL_PIECE_MAX + 1];
    for (size_t i = 0; i < sizeof word; i++) word[i] = (char)('a' + (i * 7) % 26);

    TokenizerStats before = gpt2_tokenizer_stats(t);
    TokenList ids = encode(t, word, TOKENIZER_SMALL_PIECE_MAX, false);
    TokenizerStats after = gpt2_tokenizer_stats(t);
    assert_true(after.scan_steps > before.scan_steps);
    assert_int_equal(after.heap_steps, before.heap_steps);
    gpt2_token_list_free(&ids);

    before = after;
    ids = encode(t, word, sizeof word, false);
    after = gpt2_tokenizer_stats(t);
    assert_int_equal(after.scan_steps, before.scan_steps);
    assert_true(after.heap_steps > before.heap_steps);
    gpt2_token_list_free(&ids);

    /* The same piece again is a cache hit and merges nothing. */
    before = after;
    ids = encode(t, word, sizeof word, false);
    after = gpt2_tokenizer_stats(t);
    assert_int_equal(after.cache_hits, before.cache_hits + 1);
    assert_int_equal(after.merges, before.merges);
    gpt2_token_list_free(&ids);
}

/* ---- special token, bytes, decoding -------------------------------------- */

static void check_encodes_to(Tokenizer *t, const char *text, bool special, const int32_t *want, size_t n_want) {
    TokenList ids = encode(t, text, strlen(text), special);
    check_same_ids(&ids, want, n_want, special ? "with special" : "without special", text, strlen(text));
    check_decodes_to(t, &ids, text, strlen(text));
    gpt2_token_list_free(&ids);
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)

static void test_special_token(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    assert_int_equal(gpt2_tokenizer_eot(t), 50256);
    assert_int_equal(gpt2_tokenizer_vocab_size(t), 50257);
    /* Plain text by default, as in encoder.py. */
    check_encodes_to(t, "<|endoftext|>", false, IDS(27, 91, 437, 1659, 5239, 91, 29));
    check_encodes_to(t, "<|endoftext|>", true, IDS(50256));
    check_encodes_to(t, "<|endoftext|><|endoftext|>", true, IDS(50256, 50256));
    /* The text around it is encoded on its own: no space prefix crosses. */
    check_encodes_to(t, "Hello<|endoftext|> world", true, IDS(15496, 50256, 995));
    check_encodes_to(t, "a <|endoftext|>", true, IDS(64, 220, 50256));
    /* Near misses stay text. */
    check_encodes_to(t, "<|endoftext|", true, IDS(27, 91, 437, 1659, 5239, 91));
    check_encodes_to(t, "<<|endoftext|>>", true, IDS(27, 50256, 29));
    const char *upper = "<|ENDOFTEXT|> <|endoftext |>";
    TokenList plain = encode(t, upper, strlen(upper), false);
    TokenList special = encode(t, upper, strlen(upper), true);
    check_same_ids(&special, plain.ids, plain.n, "near misses with special", upper, strlen(upper));
    for (size_t i = 0; i < plain.n; i++) assert_int_not_equal(plain.ids[i], 50256);
    gpt2_token_list_free(&plain);
    gpt2_token_list_free(&special);
}

/* A vocabulary of the 256 bytes, "<|endoftext|>" (256) and added tokens
 * (257 on), without merges: every other byte is its own token. */
typedef struct {
    uint32_t offsets[300];
    uint8_t bytes[4096];
    TokenizerData data;
} AddedVocab;

static void added_vocab(AddedVocab *v, const char *const *added, size_t n_added) {
    uint32_t at = 0, id = 0;
    for (; id < 256; id++) {
        v->offsets[id] = at;
        v->bytes[at++] = (uint8_t)id;
    }
    const char *eot = "<|endoftext|>";
    v->offsets[id++] = at;
    memcpy(v->bytes + at, eot, strlen(eot));
    at += (uint32_t)strlen(eot);
    for (size_t i = 0; i < n_added; i++, id++) {
        v->offsets[id] = at;
        memcpy(v->bytes + at, added[i], strlen(added[i]));
        at += (uint32_t)strlen(added[i]);
    }
    v->offsets[id] = at;
    v->data = (TokenizerData){id, v->offsets, v->bytes, 0, NULL, 256, (uint32_t)n_added};
}

/* Added tokens in special mode: at the leftmost place where one starts, the
 * longest that starts there, checked against a direct scan on random texts
 * made of their bytes; without special, every byte is text. */
static void test_added_tokens_match_leftmost_longest(void **state) {
    (void)state;
    static const char *const added[] = {"<|a|>", "<|ab|>", "<|a", "Zz", "ZZZ", "\xC3\xA9", "b|>"};
    const size_t n_added = sizeof added / sizeof *added;
    AddedVocab v;
    added_vocab(&v, added, n_added);
    Tokenizer *t;
    char err[256];
    if (!gpt2_tokenizer_build(&t, &v.data, err, sizeof err)) fail_msg("%s", err);
    check_encodes_to(t, "<|ab|>", true, IDS(257 + 1));
    check_encodes_to(t, "<|a|>x<|a", true, IDS(257, 'x', 257 + 2));
    check_encodes_to(t, "<|ab|>>", true, IDS(258, '>'));
    check_encodes_to(t, "<|ab|", true, IDS(259, 'b', '|')); /* "<|a", then "b|" is no token */
    check_encodes_to(t, "ZZzZ", true, IDS('Z', 260, 'Z'));
    check_encodes_to(t, "ZZZz\xC3\xA9", true, IDS(261, 'z', 262));
    check_encodes_to(t, "<|endoftext|>Zz", true, IDS(256, 260));
    check_encodes_to(t, "ZZ", false, IDS('Z', 'Z'));
    Rng r = {271828};
    const char alphabet[] = "<|ab>Zz\xC3\xA9x";
    for (int round = 0; round < 3000; round++) {
        char text[64];
        size_t len = rng_below(&r, sizeof text);
        for (size_t i = 0; i < len; i++) text[i] = alphabet[rng_below(&r, sizeof alphabet - 1)];
        int32_t want[64];
        size_t n_want = 0;
        for (size_t i = 0; i < len;) { /* the longest added token at i, else the byte */
            size_t best_len = 0;
            int32_t best = (uint8_t)text[i];
            for (size_t k = 0; k < n_added; k++) {
                size_t l = strlen(added[k]);
                if (l > best_len && l <= len - i && memcmp(text + i, added[k], l) == 0)
                    best_len = l, best = 257 + (int32_t)k;
            }
            want[n_want++] = best;
            i += best_len ? best_len : 1;
        }
        TokenList ids = encode(t, text, len, true);
        check_same_ids(&ids, want, n_want, "added tokens", text, len);
        check_decodes_to(t, &ids, text, len);
        gpt2_token_list_free(&ids);
    }
    gpt2_tokenizer_free(t);
    /* An added token of more than TOKENIZER_MAX_ADDED_BYTES bytes, and a
     * merge that names one, are refused. */
    char long_token[TOKENIZER_MAX_ADDED_BYTES + 2];
    memset(long_token, 'q', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = '\0';
    const char *const too_long[] = {long_token};
    added_vocab(&v, too_long, 1);
    assert_false(gpt2_tokenizer_build(&t, &v.data, err, sizeof err));
    assert_non_null(strstr(err, "added token 257 is longer than 256 bytes"));
    const char *const pair[] = {"ab"};
    added_vocab(&v, pair, 1);
    const uint32_t merge[3] = {'a', 'b', 257};
    v.data.merges = merge;
    v.data.n_merges = 1;
    assert_false(gpt2_tokenizer_build(&t, &v.data, err, sizeof err));
    assert_non_null(strstr(err, "merge 0 names an added token"));
}

static void test_empty_text(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    TokenList ids = encode(t, "", 0, false);
    assert_int_equal(ids.n, 0);
    assert_true(gpt2_tokenizer_encode(t, (const uint8_t *)"", 0, true, &ids));
    assert_int_equal(ids.n, 0);
    gpt2_token_list_free(&ids);
}

/* Each byte alone is its single-byte token, valid UTF-8 or not. */
static void test_every_byte_alone(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        TokenList ids = encode(t, &byte, 1, false);
        assert_int_equal(ids.n, 1);
        assert_int_equal(ids.ids[0], byte_token(t, byte));
        check_decodes_to(t, &ids, &byte, 1);
        gpt2_token_list_free(&ids);
    }
}

static void test_decode_refuses_bad_ids(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    StrBuf out = {0};
    assert_true(gpt2_strbuf_append_str(&out, "kept"));
    const int32_t bad[][2] = {{50, -1}, {50, 50257}, {INT32_MAX, 50}};
    for (size_t i = 0; i < 3; i++) {
        assert_false(gpt2_tokenizer_decode(t, bad[i], 2, &out));
        assert_int_equal(out.len, 4);
    }
    size_t len;
    assert_null(gpt2_tokenizer_token(t, -1, &len));
    assert_null(gpt2_tokenizer_token(t, 50257, &len));
    assert_true(gpt2_tokenizer_decode(t, IDS(50256, 220), &out));
    assert_string_equal(out.data, "kept<|endoftext|> ");
    gpt2_strbuf_free(&out);
}

/* ---- the pre-tokenizer ---------------------------------------------------- */

/* The pieces of text[0..len) joined by '|'. */
static void pieces_of(const void *text, size_t len, StrBuf *out) {
    PreTokenizer p;
    gpt2_pretok_init(&p, text, len);
    size_t at, n, expect_at = 0;
    gpt2_strbuf_clear(out);
    while (gpt2_pretok_next(&p, &at, &n)) {
        assert_int_equal(at, expect_at);
        assert_true(n > 0);
        if (at) assert_true(gpt2_strbuf_append_char(out, '|'));
        assert_true(gpt2_strbuf_append(out, (const uint8_t *)text + at, n));
        expect_at = at + n;
    }
    assert_int_equal(expect_at, len);
}

static void check_pieces_n(const void *text, size_t len, const char *want) {
    StrBuf got = {0};
    pieces_of(text, len, &got);
    if (strcmp(got.data ? got.data : "", want) != 0) {
        char a[200], b[200], c[200];
        fail_msg("pieces of \"%s\": got \"%s\", want \"%s\"", escaped(text, len, a, sizeof a),
                 escaped(got.data, got.len, b, sizeof b), escaped(want, strlen(want), c, sizeof c));
    }
    gpt2_strbuf_free(&got);
}

/* Pieces of a NUL-free text; the expectation is the text with '|' between
 * pieces (no test text contains '|'). */
static void check_pieces(const char *text, const char *want) { check_pieces_n(text, strlen(text), want); }

static void test_pretok_contractions(void **state) {
    (void)state;
    check_pieces("don't we'll they're I've I'm he'd it's", "don|'t| we|'ll| they|'re| I|'ve| I|'m| he|'d| it|'s");
    /* Only lower case, only the ASCII apostrophe, and also inside words. */
    check_pieces("I'M DON'T We'Ll", "I|'|M| DON|'|T| We|'|Ll");
    check_pieces("it\xE2\x80\x99s", "it|\xE2\x80\x99|s");
    check_pieces("'sa", "'s|a");
    check_pieces("'ll've're", "'ll|'ve|'re");
    check_pieces("'l 'v 'r", "'|l| '|v| '|r");
    check_pieces("'", "'");
    check_pieces("x's's", "x|'s|'s");
    /* A run of punctuation is not cut for a contraction inside it... */
    check_pieces("''s", "''|s");
    check_pieces("a.'s", "a|.'|s");
    /* ...and a space-prefixed apostrophe is a punctuation piece. */
    check_pieces("x 's", "x| '|s");
    check_pieces("'s'", "'s|'");
    check_pieces("'\xC3\xA9", "'|\xC3\xA9");
}

static void test_pretok_whitespace(void **state) {
    (void)state;
    check_pieces("a   b", "a|  | b");
    check_pieces("a\t\tb", "a|\t|\t|b");
    check_pieces("\n\n\nfoo", "\n\n|\n|foo");
    check_pieces("a \n b", "a| \n| b");
    check_pieces("a \nb", "a| |\n|b");
    check_pieces("a  ", "a|  ");
    check_pieces("a\n", "a|\n");
    check_pieces("   ", "   ");
    check_pieces(" ", " ");
    check_pieces(" a", " a");
    check_pieces("  a", " | a");
    check_pieces("\ta", "\t|a");
    check_pieces("\r\n\r\nx", "\r\n\r|\n|x");
    check_pieces("a \t", "a| \t");
    check_pieces(" 1 ! x", " 1| !| x");
    check_pieces("  !!", " | !!");
    check_pieces("x\v\fy", "x|\v|\f|y");
}

static void test_pretok_unicode_spaces(void **state) {
    (void)state;
    /* U+0085 is \s: it cannot be prefixed and splits the run before it. */
    check_pieces("a \xC2\x85"
                 "b",
                 "a| |\xC2\x85|b");
    check_pieces("a\xC2\x85\xC2\x85"
                 "b",
                 "a|\xC2\x85|\xC2\x85|b");
    /* U+00A0, U+3000, U+2028: whitespace that is never a prefix. */
    check_pieces("a\xC2\xA0"
                 "b",
                 "a|\xC2\xA0|b");
    check_pieces("a \xC2\xA0"
                 "b",
                 "a| |\xC2\xA0|b");
    check_pieces("a\xC2\xA0 b", "a|\xC2\xA0| b");
    check_pieces("x\xE3\x80\x80\xE3\x80\x80y", "x|\xE3\x80\x80|\xE3\x80\x80|y");
    check_pieces("x\xE2\x80\xA8", "x|\xE2\x80\xA8");
    /* U+FEFF and U+200B are not \s but "other"; U+001C-U+001F likewise. */
    check_pieces("a \xEF\xBB\xBF"
                 "b",
                 "a| \xEF\xBB\xBF|b");
    check_pieces("a\xE2\x80\x8B b", "a|\xE2\x80\x8B| b");
    check_pieces("a\x1C"
                 "b",
                 "a|\x1C|b");
    check_pieces("a \x1C\x1D\x1E\x1F!", "a| \x1C\x1D\x1E\x1F!");
    check_pieces("a\x1F \x1F", "a|\x1F| \x1F");
}

static void test_pretok_classes(void **state) {
    (void)state;
    check_pieces("abc123def", "abc|123|def");
    check_pieces("x 2024 y", "x| 2024| y");
    /* \p{N} is Nd, Nl and No: one run. */
    check_pieces("\xC2\xBD\xC2\xB2\xE2\x85\xAB\xE2\x91\xA0\xD9\xA3",
                 "\xC2\xBD\xC2\xB2\xE2\x85\xAB\xE2\x91\xA0\xD9\xA3");
    /* Combining marks are neither letters nor numbers. */
    check_pieces("e\xCC\x81t\xC3\xA9", "e|\xCC\x81|t\xC3\xA9");
    check_pieces(" \xCC\x81"
                 "a",
                 " \xCC\x81|a");
    /* Lt, Lm and Lo are letters; emoji are "other". */
    check_pieces("\xC7\x85\xCA\xB0\xE4\xB8\xAD!", "\xC7\x85\xCA\xB0\xE4\xB8\xAD|!");
    check_pieces("hi \xF0\x9F\x98\x80\xF0\x9F\x98\x80 x", "hi| \xF0\x9F\x98\x80\xF0\x9F\x98\x80| x");
    check_pieces("a...b", "a|...|b");
    check_pieces("a_b-c", "a|_|b|-|c");
}

/* Every byte outside a well-formed character is a piece of its own, counts
 * as \S for the lookahead and never takes a space prefix. */
static void test_pretok_invalid_bytes(void **state) {
    (void)state;
    check_pieces("a\xFF"
                 "b",
                 "a|\xFF|b");
    check_pieces("a \xFF", "a| |\xFF");
    check_pieces("a  \xFF", "a| | |\xFF");
    check_pieces("\xE2\x82", "\xE2|\x82");                   /* truncated character */
    check_pieces("!\xE2\x82!", "!|\xE2|\x82|!");             /* splits an "other" run */
    check_pieces("\xC0\xAF", "\xC0|\xAF");                   /* overlong */
    check_pieces("\xED\xA0\x80", "\xED|\xA0|\x80");          /* surrogate */
    check_pieces("\xF4\x90\x80\x80", "\xF4|\x90|\x80|\x80"); /* above U+10FFFF */
    check_pieces("ab\x80"
                 "cd",
                 "ab|\x80|cd");
    check_pieces("12\xFE"
                 "34",
                 "12|\xFE|34");
    check_pieces("\xFF\xFF", "\xFF|\xFF");
    check_pieces("'\xFF", "'|\xFF");
    /* NUL is an ordinary "other" character. */
    check_pieces_n("a\0\0 b", 5, "a|\0\0| b");
}

static void test_pretok_is_space(void **state) {
    (void)state;
    const uint32_t spaces[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,   0x85,   0xA0,   0x1680,
                               0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
                               0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    size_t k = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF + 1; cp++) {
        bool want = k < sizeof spaces / sizeof *spaces && spaces[k] == cp;
        if (want) k++;
        if (gpt2_pretok_is_space(cp) != want) fail_msg("gpt2_pretok_is_space(U+%04X) is wrong", (unsigned)cp);
    }
}

/* Spot checks of the generated tables, including Unicode 15.0 additions. */
static void test_unicode_classes(void **state) {
    (void)state;
    const struct {
        uint32_t cp;
        unsigned cls;
    } cases[] = {
        {'A', UCLASS_LETTER},     {'0', UCLASS_NUMBER},     {'_', UCLASS_OTHER},      {0xAA, UCLASS_LETTER},
        {0xB2, UCLASS_NUMBER},    {0xBD, UCLASS_NUMBER},    {0x0301, UCLASS_OTHER},   {0x0378, UCLASS_OTHER},
        {0x01C5, UCLASS_LETTER},  {0x02B0, UCLASS_LETTER},  {0x0660, UCLASS_NUMBER},  {0x093F, UCLASS_OTHER},
        {0x2160, UCLASS_NUMBER},  {0x2460, UCLASS_NUMBER},  {0x3007, UCLASS_NUMBER},  {0x4E00, UCLASS_LETTER},
        {0x9FFF, UCLASS_LETTER},  {0xAC00, UCLASS_LETTER},  {0xD7A3, UCLASS_LETTER},  {0xD800, UCLASS_OTHER},
        {0xFEFF, UCLASS_OTHER},   {0xFF21, UCLASS_LETTER},  {0xFF10, UCLASS_NUMBER},  {0x1D400, UCLASS_LETTER},
        {0x1D7CE, UCLASS_NUMBER}, {0x1F600, UCLASS_OTHER},  {0x20000, UCLASS_LETTER}, {0x2A6DF, UCLASS_LETTER},
        {0x1E030, UCLASS_LETTER}, {0x11F04, UCLASS_LETTER}, {0x11F50, UCLASS_NUMBER}, {0x31350, UCLASS_LETTER},
        {0x323AF, UCLASS_LETTER}, {0x323B0, UCLASS_OTHER},  {0xE0041, UCLASS_OTHER},  {0x10FFFF, UCLASS_OTHER},
        {0x110000, UCLASS_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (unicode_class(cases[i].cp) != cases[i].cls) {
            fail_msg("U+%04X: class %u, want %u", (unsigned)cases[i].cp, unicode_class(cases[i].cp), cases[i].cls);
        }
    }
    assert_string_equal(UNICODE_TABLES_VERSION, "15.0.0");
}

/* ---- a literal reading of the regex, for the random tests ----------------- */

enum { K_OTHER = UCLASS_OTHER, K_LETTER = UCLASS_LETTER, K_NUMBER = UCLASS_NUMBER, K_SPACE, K_BAD };

/* Stands for a byte outside any well-formed character: in no class of the
 * regex, so the regex cannot match there (pretokenize.h makes it a piece of
 * its own), and \S for the lookahead. */
#define BAD_BYTE UINT32_MAX

static unsigned kind_of(uint32_t cp) {
    if (cp == BAD_BYTE) return K_BAD;
    return gpt2_pretok_is_space(cp) ? K_SPACE : unicode_class(cp);
}

/* Length, in characters, of the match at cps[i..n) of
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * found the way a backtracking engine finds it: alternatives in order, each
 * greedy run given back one character at a time until what follows holds.
 * Where nothing matches (an ill-formed byte) the piece is that byte. */
static size_t regex_match(const uint32_t *cps, size_t n, size_t i) {
    if (kind_of(cps[i]) == K_BAD) return 1;
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t c = 0; c < 7; c++) {
        size_t l = strlen(contractions[c]), k = 0;
        while (k < l && i + k < n && cps[i + k] == (uint8_t)contractions[c][k]) k++;
        if (k == l) return l;
    }
    /* " ?" first takes the space; giving it back cannot help, as no run
     * class holds a space. */
    const unsigned runs[] = {K_LETTER, K_NUMBER, K_OTHER};
    for (size_t r = 0; r < 3; r++) {
        size_t j = i;
        if (cps[j] == ' ') j++;
        size_t k = j;
        while (k < n && kind_of(cps[k]) == runs[r]) k++;
        if (k > j) return k - i;
    }
    size_t k = i;
    while (k < n && kind_of(cps[k]) == K_SPACE) k++;
    assert_true(k > i);              /* every character is in one of the classes */
    for (size_t e = k; e > i; e--) { /* \s+(?!\S) */
        if (e == n || kind_of(cps[e]) == K_SPACE) return e - i;
    }
    return k - i; /* \s+ */
}

/* Checks pretokenize's pieces of any byte string against regex_match. */
static void check_pieces_match_regex(const uint8_t *text, size_t len) {
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    size_t *offset = malloc((len + 1) * sizeof *offset);
    assert_non_null(cps);
    assert_non_null(offset);
    size_t n = 0;
    for (size_t at = 0; at < len;) {
        size_t l = gpt2_utf8_decode(text + at, len - at, &cps[n]);
        if (l == 0) {
            cps[n] = BAD_BYTE;
            l = 1;
        }
        offset[n++] = at;
        at += l;
    }
    offset[n] = len;
    PreTokenizer p;
    gpt2_pretok_init(&p, text, len);
    size_t at, got, i = 0;
    while (gpt2_pretok_next(&p, &at, &got)) {
        assert_true(i < n);
        size_t want = offset[i + regex_match(cps, n, i)] - offset[i];
        if (at != offset[i] || got != want) {
            char a[300];
            fail_msg("piece at byte %zu: %zu bytes, the regex takes %zu, in \"%s\"", at, got, want,
                     escaped(text, len, a, sizeof a));
        }
        i += regex_match(cps, n, i);
    }
    assert_int_equal(i, n);
    free(cps);
    free(offset);
}

/* ---- random texts --------------------------------------------------------- */

/* A code point from ranges where the rules are tricky: ASCII (with many
 * apostrophes, spaces and contraction letters), Latin, combining marks,
 * scripts with their own digits, numerals, every Unicode space and near
 * space, emoji and their joiners, CJK, full-width forms, astral letters and
 * digits, and anything else valid. */
static uint32_t random_code_point(Rng *r) {
    static const uint32_t spaces[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,   0x85,   0xA0,   0x1680,
                                      0x2000, 0x2007, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x200B,
                                      0x180E, 0xFEFF, 0x1C,   0x1D,   0x1E,   0x1F,   0x200D, 0xFE0F};
    static const uint32_t ranges[][2] = {
        {0x00, 0x7F},       {0x80, 0xFF},       {0x100, 0x24F},     {0x300, 0x36F},     {0x370, 0x52F},
        {0x600, 0x6FF},     {0x900, 0x97F},     {0x9E6, 0x9EF},     {0xE00, 0xE7F},     {0x2010, 0x206F},
        {0x2150, 0x218F},   {0x2460, 0x24FF},   {0x3040, 0x30FF},   {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},
        {0xFF00, 0xFFEF},   {0x1F1E6, 0x1F1FF}, {0x1F300, 0x1FAFF}, {0x1F3FB, 0x1F3FF}, {0x1D400, 0x1D7FF},
        {0x10000, 0x1FFFF}, {0x20000, 0x323AF}, {0xE0000, 0xE007F}, {0x1E030, 0x1E08F},
    };
    uint32_t pick = rng_below(r, 100);
    if (pick < 30) return " 'aAsStTrReEvVmMlLdD0123456789.,!?-\n"[rng_below(r, 36)];
    if (pick < 40) return spaces[rng_below(r, sizeof spaces / sizeof *spaces)];
    if (pick < 90) {
        const uint32_t *range = ranges[rng_below(r, sizeof ranges / sizeof *ranges)];
        return range[0] + rng_below(r, range[1] - range[0] + 1);
    }
    for (;;) { /* anything valid */
        uint32_t cp = rng_below(r, 0x110000);
        if (cp < 0xD800 || cp > 0xDFFF) return cp;
    }
}

static size_t random_utf8(Rng *r, uint8_t *out, size_t max_chars) {
    size_t n = 0, chars = rng_below(r, (uint32_t)max_chars + 1);
    for (size_t i = 0; i < chars; i++) n += gpt2_utf8_encode(random_code_point(r), (char *)out + n);
    return n;
}

/* Random bytes, biased towards the ones that make the pre-tokenizer work:
 * spaces, apostrophes, letters, digits, UTF-8 lead and continuation bytes,
 * and whole characters (so that well-formed characters sit next to bytes
 * that are not). */
static size_t random_bytes(Rng *r, uint8_t *out, size_t max_len) {
    static const char common[] = " 'stm lv<|endoftext|>\n\t0a9Z";
    size_t len = rng_below(r, (uint32_t)max_len + 1), i = 0;
    while (i < len) {
        uint32_t pick = rng_below(r, 5);
        if (pick == 0) out[i++] = (uint8_t)common[rng_below(r, sizeof common - 1)];
        else if (pick == 1) out[i++] = (uint8_t)(0x80 + rng_below(r, 0x40));
        else if (pick == 2) out[i++] = (uint8_t)(0xC0 + rng_below(r, 0x40));
        else if (pick == 3 || len - i < 4) out[i++] = (uint8_t)rng_below(r, 256);
        else i += gpt2_utf8_encode(random_code_point(r), (char *)out + i);
    }
    return len;
}

/* Encodes text with the default loop choice, the heap loop only and the
 * small loop only: all three must agree and decode back to text. */
static void check_round_trip_and_loops(Tokenizer *t, const uint8_t *text, size_t len, bool special) {
    gpt2_tokenizer_set_small_piece_max(t, TOKENIZER_SMALL_PIECE_MAX);
    TokenList base = encode(t, text, len, special);
    check_decodes_to(t, &base, text, len);
    const size_t forced[] = {0, SIZE_MAX};
    for (size_t f = 0; f < 2; f++) {
        gpt2_tokenizer_set_small_piece_max(t, forced[f]);
        TokenList other = encode(t, text, len, special);
        check_same_ids(&other, base.ids, base.n, f == 0 ? "heap loop vs default" : "small loop vs default", text, len);
        gpt2_token_list_free(&other);
    }
    gpt2_tokenizer_set_small_piece_max(t, TOKENIZER_SMALL_PIECE_MAX);
    gpt2_token_list_free(&base);
}

static void test_random_bytes_round_trip(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    Rng r = {20240601};
    uint8_t text[600];
    for (int iter = 0; iter < 1500; iter++) {
        size_t len = random_bytes(&r, text, sizeof text);
        check_pieces_match_regex(text, len);
        check_round_trip_and_loops(t, text, len, iter % 2 == 0);
    }
}

static void test_random_utf8_round_trip(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    Rng r = {7};
    uint8_t text[4 * 200];
    for (int iter = 0; iter < 1500; iter++) {
        size_t len = random_utf8(&r, text, 200);
        assert_true(gpt2_utf8_valid(text, len));
        check_pieces_match_regex(text, len);
        check_round_trip_and_loops(t, text, len, false);
    }
}

/* The pre-tokenizer alone, on many more random texts than the above. */
static void test_random_pieces_match_regex(void **state) {
    (void)state;
    Rng r = {99};
    uint8_t text[4 * 64];
    for (int iter = 0; iter < 20000; iter++) {
        check_pieces_match_regex(text, random_utf8(&r, text, 64));
        check_pieces_match_regex(text, random_bytes(&r, text, 64));
    }
}

/* ---- synthetic merge tables ------------------------------------------------ */

/* A vocabulary of the 256 bytes, "<|endoftext|>" and tokens over "abc" made
 * by random merges, whose ranks are then shuffled: merges may create pairs
 * of lower rank than their own, and several merges may make one token. */
typedef struct {
    uint32_t n_vocab, n_merges;
    uint32_t offsets[512];
    uint8_t bytes[8192];
    uint32_t merges[3 * 200];
} SynthVocab;

static uint32_t synth_find(const SynthVocab *v, const uint8_t *b, size_t n) {
    for (uint32_t id = 0; id < v->n_vocab; id++) {
        if (v->offsets[id + 1] - v->offsets[id] == n && memcmp(v->bytes + v->offsets[id], b, n) == 0) return id;
    }
    return UINT32_MAX;
}

static uint32_t synth_add(SynthVocab *v, const uint8_t *b, size_t n) {
    uint32_t id = v->n_vocab++;
    memcpy(v->bytes + v->offsets[id], b, n);
    v->offsets[id + 1] = v->offsets[id] + (uint32_t)n;
    return id;
}

static void synth_build(SynthVocab *v, Rng *r, uint32_t n_merges) {
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        synth_add(v, &byte, 1);
    }
    synth_add(v, (const uint8_t *)"<|endoftext|>", 13);
    uint32_t pool[256] = {'a', 'b', 'c'}, n_pool = 3;
    while (v->n_merges < n_merges) {
        uint32_t left = pool[rng_below(r, n_pool)], right = pool[rng_below(r, n_pool)];
        bool seen = false;
        for (uint32_t m = 0; m < v->n_merges; m++) {
            seen |= v->merges[3 * m] == left && v->merges[3 * m + 1] == right;
        }
        size_t ll = v->offsets[left + 1] - v->offsets[left], rl = v->offsets[right + 1] - v->offsets[right];
        if (seen || ll + rl > 12) continue;
        uint8_t cat[24];
        memcpy(cat, v->bytes + v->offsets[left], ll);
        memcpy(cat + ll, v->bytes + v->offsets[right], rl);
        uint32_t merged = synth_find(v, cat, ll + rl);
        if (merged == UINT32_MAX) merged = pool[n_pool++] = synth_add(v, cat, ll + rl);
        uint32_t *m = &v->merges[3 * v->n_merges++];
        m[0] = left, m[1] = right, m[2] = merged;
    }
    for (uint32_t i = v->n_merges; i-- > 1;) { /* shuffle the ranks */
        uint32_t j = rng_below(r, i + 1), tmp[3];
        memcpy(tmp, &v->merges[3 * i], sizeof tmp);
        memcpy(&v->merges[3 * i], &v->merges[3 * j], sizeof tmp);
        memcpy(&v->merges[3 * j], tmp, sizeof tmp);
    }
}

/* encoder.py's bpe() written out naively: each round finds the pair of
 * lowest rank and rebuilds the word with all its non-overlapping
 * occurrences merged, left to right. */
static size_t reference_bpe(const SynthVocab *v, uint32_t *word, size_t n) {
    uint32_t *next = malloc((n + 1) * sizeof *next);
    assert_non_null(next);
    for (;;) {
        uint32_t best = UINT32_MAX;
        for (size_t i = 0; i + 1 < n; i++) {
            for (uint32_t m = 0; m < v->n_merges && m < best; m++) {
                if (v->merges[3 * m] == word[i] && v->merges[3 * m + 1] == word[i + 1]) best = m;
            }
        }
        if (best == UINT32_MAX) break;
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && word[i] == v->merges[3 * best] && word[i + 1] == v->merges[3 * best + 1]) {
                next[w++] = v->merges[3 * best + 2];
                i += 2;
            } else {
                next[w++] = word[i++];
            }
        }
        memcpy(word, next, w * sizeof *word);
        n = w;
    }
    free(next);
    return n;
}

static void test_synthetic_merge_tables(void **state) {
    (void)state;
    Rng r = {314159};
    SynthVocab *v = malloc(sizeof *v);
    assert_non_null(v);
    for (int table = 0; table < 40; table++) {
        synth_build(v, &r, 20 + rng_below(&r, 100));
        TokenizerData data = {v->n_vocab, v->offsets, v->bytes, v->n_merges, v->merges, 256, 0};
        Tokenizer *t;
        char err[256];
        if (!gpt2_tokenizer_build(&t, &data, err, sizeof err)) fail_msg("%s", err);
        for (int w = 0; w < 60; w++) {
            char word[300];
            uint32_t want[300];
            size_t len = 1 + rng_below(&r, sizeof word);
            uint32_t alphabet = 1 + rng_below(&r, 3);
            for (size_t i = 0; i < len; i++) {
                word[i] = (char)('a' + rng_below(&r, alphabet));
                want[i] = (uint8_t)word[i];
            }
            size_t n_want = reference_bpe(v, want, len);
            const size_t loops[] = {TOKENIZER_SMALL_PIECE_MAX, 0, SIZE_MAX};
            for (size_t l = 0; l < 3; l++) {
                gpt2_tokenizer_set_small_piece_max(t, loops[l]);
                TokenList ids = encode(t, word, len, false);
                char label[64];
                snprintf(label, sizeof label, "table %d, loop limit %zu", table, loops[l]);
                check_same_ids(&ids, (const int32_t *)want, n_want, label, word, len);
                gpt2_token_list_free(&ids);
            }
        }
        gpt2_tokenizer_free(t);
    }
    free(v);
}

/* ---- cost of long runs ------------------------------------------------------ */

/* Work of encoding text[0..len) with an empty cache. */
static uint64_t encode_work(Tokenizer *t, const uint8_t *text, size_t len, size_t *n_ids) {
    gpt2_tokenizer_set_small_piece_max(t, TOKENIZER_SMALL_PIECE_MAX);
    TokenizerStats before = gpt2_tokenizer_stats(t);
    TokenList ids = encode(t, text, len, false);
    TokenizerStats after = gpt2_tokenizer_stats(t);
    check_decodes_to(t, &ids, text, len);
    *n_ids = ids.n;
    gpt2_token_list_free(&ids);
    return total_work(&after) - total_work(&before);
}

typedef enum {
    RUN_LETTER,
    RUN_SPACE,
    RUN_DIGIT,
    RUN_NEWLINE,
    RUN_PUNCT,
    RUN_AB,
    RUN_RANDOM_WORD,
    RUN_WORDS,
    RUN_CJK,
    RUN_MARK
} RunKind;

/* Fills text[0..len) with a run of the given kind; multi-byte characters
 * are cut at the end of the buffer, which the tokenizer must also take. */
static void fill_run(uint8_t *text, size_t len, RunKind kind, Rng *r) {
    static const uint8_t cjk[3] = {0xE4, 0xB8, 0xAD}, mark[2] = {0xCC, 0x81}; /* U+4E2D, U+0301 */
    for (size_t i = 0; i < len; i++) {
        switch (kind) {
        case RUN_LETTER: text[i] = 'a'; break;
        case RUN_SPACE: text[i] = ' '; break;
        case RUN_DIGIT: text[i] = '7'; break;
        case RUN_NEWLINE: text[i] = '\n'; break;
        case RUN_PUNCT: text[i] = '!'; break;
        case RUN_AB: text[i] = "ab"[i & 1]; break;
        case RUN_RANDOM_WORD: text[i] = (uint8_t)('a' + rng_below(r, 26)); break;
        case RUN_WORDS: text[i] = i % 1000 == 999 ? '\n' : (uint8_t)('a' + rng_below(r, 26)); break;
        case RUN_CJK: text[i] = cjk[i % 3]; break;
        case RUN_MARK: text[i] = mark[i % 2]; break;
        }
    }
}

/* Encoding n and 2n bytes of the same kind of run: the work must grow like
 * n log n (a factor near 2, where a quadratic loop gives 4) and stay within
 * a small multiple of n log2 n. */
static void check_run_is_near_linear(Tokenizer *t, RunKind kind, const char *name) {
    const size_t big = (size_t)1 << 20; /* 1 MiB */
    uint8_t *text = malloc(big);
    assert_non_null(text);
    Rng r = {(uint64_t)kind + 1};
    size_t n_half, n_full;
    fill_run(text, big / 2, kind, &r);
    uint64_t half = encode_work(t, text, big / 2, &n_half);
    fill_run(text, big, kind, &r);
    uint64_t full = encode_work(t, text, big, &n_full);
    free(text);
    double ratio = (double)full / (double)half;
    double per_n_log_n = (double)full / ((double)big * 20.0);
    print_message("%-16s 1 MiB: %llu ids, work %llu (%.2f n log2 n), x%.3f from 512 KiB\n", name,
                  (unsigned long long)n_full, (unsigned long long)full, per_n_log_n, ratio);
    if (ratio > 2.3 || per_n_log_n > 4.0) {
        fail_msg("%s: work %llu for 512 KiB, %llu for 1 MiB: not near-linear", name, (unsigned long long)half,
                 (unsigned long long)full);
    }
}

static void test_long_runs_near_linear(void **state) {
    (void)state;
    REQUIRE_GPT2(t);
    check_run_is_near_linear(t, RUN_LETTER, "\"aaaa...\"");
    check_run_is_near_linear(t, RUN_SPACE, "spaces");
    check_run_is_near_linear(t, RUN_DIGIT, "\"7777...\"");
    check_run_is_near_linear(t, RUN_NEWLINE, "newlines");
    check_run_is_near_linear(t, RUN_PUNCT, "\"!!!!...\"");
    check_run_is_near_linear(t, RUN_AB, "\"abab...\"");
    check_run_is_near_linear(t, RUN_RANDOM_WORD, "random word");
    check_run_is_near_linear(t, RUN_WORDS, "1000-byte words");
    check_run_is_near_linear(t, RUN_CJK, "CJK run");
    check_run_is_near_linear(t, RUN_MARK, "U+0301 run");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretok_contractions),
        cmocka_unit_test(test_pretok_whitespace),
        cmocka_unit_test(test_pretok_unicode_spaces),
        cmocka_unit_test(test_pretok_classes),
        cmocka_unit_test(test_pretok_invalid_bytes),
        cmocka_unit_test(test_pretok_is_space),
        cmocka_unit_test(test_unicode_classes),
        cmocka_unit_test(test_random_pieces_match_regex),
        cmocka_unit_test(test_synthetic_merge_tables),
        cmocka_unit_test(test_shared_cases_exact),
        cmocka_unit_test(test_peer_cases_exact),
        cmocka_unit_test(test_cases_exact_with_each_loop),
        cmocka_unit_test(test_default_loop_choice),
        cmocka_unit_test(test_special_token),
        cmocka_unit_test(test_added_tokens_match_leftmost_longest),
        cmocka_unit_test(test_empty_text),
        cmocka_unit_test(test_every_byte_alone),
        cmocka_unit_test(test_decode_refuses_bad_ids),
        cmocka_unit_test(test_random_bytes_round_trip),
        cmocka_unit_test(test_random_utf8_round_trip),
        cmocka_unit_test(test_long_runs_near_linear),
    };
    return cmocka_run_group_tests(tests, NULL, free_gpt2);
}
