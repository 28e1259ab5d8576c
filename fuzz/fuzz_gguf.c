/* fuzz_gguf.c - libFuzzer target for the GGUF reader (gguf.h).
 *
 * Each input is a GGUF file, read from memory by gpt2_gguf_parse without
 * the tokenizer (as with --tokenizer), then, when that succeeds, with it.  Each
 * refusal is one non-empty line.  What is accepted must keep the reader's
 * promises:
 *   every tensor lies inside the input, and reads whole through
 *   gpt2_checkpoint_read when small (see fuzz_checkpoint.h);
 *   the hyperparameters are positive and the epsilon in (0, 1);
 *   the tokenizer's tables hold n_vocab tokens of at least one byte, the
 *   end-of-text id and merges among them, and the config takes that n_vocab.
 * The input is copied to an allocation of exactly its size, so ASan
 * catches a read one byte past the end.
 *
 * Seeds (fuzz/corpus/gguf/, written by fuzz/make_seeds.py): a whole 2-layer
 * model with its tokenizer (version 3), tensors of Q8_0, BF16, F16 and F32
 * with llama.cpp's tied output.weight and metadata of every type (version
 * 2, alignment 64), a tokenizer with hyperparameters of every integer
 * type and no tensors, and a header alone.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_checkpoint.h"
#include "gguf.h"
#include "hf_vocab.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_config(const ModelConfig *c, bool with_vocab) {
    require(c->n_ctx > 0 && c->n_embd > 0 && c->n_layer > 0 && c->n_head > 0);
    require(c->ln_eps > 0 && c->ln_eps < 1);
    require(!with_vocab || c->n_vocab > 0);
}

/* Whether the file was read. */
static bool parse(const uint8_t *b, size_t n, bool with_vocab) {
    Checkpoint ck = {0};
    ModelConfig c = {0};
    HfVocab vocab;
    char err[512];
    snprintf(ck.label, sizeof ck.label, "model.gguf");
    if (!gpt2_gguf_parse(&ck, &c, with_vocab ? &vocab : NULL, b, n, err, sizeof err)) {
        check_refusal(err, sizeof err);
        gpt2_checkpoint_close(&ck);
        return false;
    }
    require(gpt2_gguf_is_gguf(b, n));
    check_config(&c, with_vocab);
    check_checkpoint(&ck, b, n);
    gpt2_checkpoint_close(&ck);
    if (!with_vocab) return true;
    /* The tables were built into a Tokenizer by the reader itself; building
     * one again here would double the time of each input that gets this
     * far (a Tokenizer's word cache is megabytes, each an mmap under ASan). */
    const TokenizerData *d = &vocab.data;
    require(c.n_vocab == d->n_vocab && d->eot_id < d->n_vocab);
    for (uint32_t i = 0; i < d->n_vocab; i++) require(d->offsets[i] < d->offsets[i + 1]);
    for (uint32_t i = 0; i < 3 * d->n_merges; i++) require(d->merges[i] < d->n_vocab);
    gpt2_hf_vocab_free(&vocab);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    /* Without the tokenizer the reader stops before it, and fails alike. */
    if (parse(copy, size, false)) parse(copy, size, true);
    free(copy);
    return 0;
}
