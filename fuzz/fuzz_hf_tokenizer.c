/* fuzz_hf_tokenizer.c - libFuzzer target for the Hugging Face tokenizer files.
 *
 * An input with no NUL byte is a tokenizer.json, given to
 * gpt2_hf_vocab_parse_tokenizer_json (merges as "a b" strings or as
 * ["a", "b"] pairs); one with a NUL is a vocab.json, the NUL, then a
 * merges.txt, given to gpt2_hf_vocab_parse.  A refusal is one non-empty
 * line.  What is accepted must keep hf_vocab.h's promises: ids 0..n-1 each
 * with non-empty bytes, <|endoftext|> among them, every merge naming ids
 * below n_vocab, and tables that build a Tokenizer, on which a short text
 * is encoded and decoded back to itself.  Each part is copied to an
 * allocation of exactly its size, so ASan catches a read past its end.
 *
 * Seeds (fuzz/corpus/hf_tokenizer/, written by fuzz/make_seeds.py): a
 * byte-level vocabulary of 262 tokens (the 256 bytes, 5 merges,
 * <|endoftext|>) as tokenizer.json in both merge spellings, and as
 * vocab.json with merges.txt (LF and a "#version" line, CRLF and none, no
 * merges at all; refused: a rule twice, an empty line).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "hf_vocab.h"
#include "strbuf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_vocab(const HfVocab *v) {
    const TokenizerData *d = &v->data;
    bool eot = false;
    require(d->n_vocab > 0 && d->offsets == v->offsets && d->bytes == v->bytes && d->merges == v->merges);
    for (uint32_t i = 0; i < d->n_vocab; i++) {
        require(d->offsets[i] < d->offsets[i + 1]);
        uint32_t len = d->offsets[i + 1] - d->offsets[i];
        eot |= len == 13 && memcmp(d->bytes + d->offsets[i], "<|endoftext|>", 13) == 0;
    }
    require(eot);
    for (uint32_t i = 0; i < 3 * d->n_merges; i++) require(d->merges[i] < d->n_vocab);
    Tokenizer *t;
    char err[512];
    require(gpt2_tokenizer_build(&t, d, err, sizeof err));
    static const char text[] = "Hello the world<|endoftext|> \xff\xfe\n\t 12";
    for (int special = 0; special < 2; special++) {
        TokenList ids = {0};
        StrBuf back = {0};
        require(gpt2_tokenizer_encode(t, (const uint8_t *)text, sizeof text - 1, special, &ids));
        require(gpt2_tokenizer_decode(t, ids.ids, ids.n, &back));
        require(back.len == sizeof text - 1 && memcmp(back.data, text, back.len) == 0);
        gpt2_strbuf_free(&back);
        gpt2_token_list_free(&ids);
    }
    gpt2_tokenizer_free(t);
}

/* An exact-size copy of b[0..n) (a byte more when empty). */
static char *copy_of(const uint8_t *b, size_t n) {
    char *c = malloc(n ? n : 1);
    if (c && n) memcpy(c, b, n);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    HfVocab v;
    char err[1024];
    bool ok;
    const uint8_t *nul = memchr(data, '\0', size);
    if (!nul) {
        char *text = copy_of(data, size);
        if (!text) return 0;
        ok = gpt2_hf_vocab_parse_tokenizer_json(&v, text, size, "tokenizer.json", err, sizeof err);
        free(text);
    } else {
        size_t vlen = (size_t)(nul - data), mlen = size - vlen - 1;
        char *vocab = copy_of(data, vlen), *merges = copy_of(nul + 1, mlen);
        if (!vocab || !merges) {
            free(vocab), free(merges);
            return 0;
        }
        ok = gpt2_hf_vocab_parse(&v, vocab, vlen, "vocab.json", merges, mlen, "merges.txt", err, sizeof err);
        free(vocab), free(merges);
    }
    if (!ok) {
        check_refusal(err, sizeof err);
        return 0;
    }
    check_vocab(&v);
    gpt2_hf_vocab_free(&v);
    return 0;
}
