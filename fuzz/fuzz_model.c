/* fuzz_model.c - libFuzzer target for the model loader (model.h).
 *
 * Each input is a model file, loaded from memory twice: as it is, where
 * the checksums refuse nearly every mutation, and resealed with fresh
 * checksums (gpt2_model_seal), so that mutations reach every check behind them,
 * as a file sealed by a buggy or hostile writer would.  A file that loads
 * gets its tokenizer built on its tables, as gpt2_open does; when that
 * succeeds a short text is encoded and decoded, and, when the shape is
 * small, one token runs through the network.
 *
 * Besides "no crash, no sanitizer report", it checks what callers rely on:
 * a refusal is one non-empty line; a loaded model's weights lie inside the
 * input; decoding the encoding of any bytes gives them back.
 *
 * Seeds (fuzz/corpus/model/) are tiny valid files and some damaged ones.
 * The valid ones come from gpt2_convert_random with seed 1 and a synthetic
 * vocabulary (gpt2-convert --random always uses 50257 tokens, which makes
 * files of megabytes):
 *   f16-2x2x32x8-v300, q8_0-1x1x32x8-v257 (no merges), bf16-1x2x16x4-v260,
 *   q8_0-1x1x16x4-v258 (q8_0 and its f16 fallback side by side),
 *   f32-1x1x16x4-v258.
 * The damaged ones are bf16-1x2x16x4-v260 truncated, with a merge naming an
 * id out of range, with two tensors overlapping, and with vocabulary
 * offsets going backwards, each resealed.
 *
 *   CC=clang cmake -S . -B build-fuzz-model -DGPT2_FUZZ=ON -DGPT2_TESTS=OFF
 *   cmake --build build-fuzz-model --target fuzz_model
 *   cp -r fuzz/corpus/model /tmp/corpus-model
 *   build-fuzz-model/fuzz_model /tmp/corpus-model -max_total_time=600
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "kernels.h"
#include "model.h"
#include "strbuf.h"
#include "tokenizer.h"
#include "transformer.h"

/* Larger inputs only slow the fuzzer down: every check is reached by small
 * files. */
#define MAX_INPUT (4u << 20)

/* Floats the KV cache of a forward pass may take (n_layer x n_ctx x n_embd),
 * to stay well inside the fuzzer's memory limit. */
#define MAX_CACHE_FLOATS (1u << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every weight pointer of a loaded model lies inside the file. */
static void check_inside(const Model *m, const void *p, size_t bytes) {
    const uint8_t *q = p;
    require(q >= m->bytes && bytes <= m->n_bytes && (size_t)(q - m->bytes) <= m->n_bytes - bytes);
}

static void check_weights(const Model *m) {
    const ModelConfig *c = &m->config;
    const size_t C = c->n_embd;
    check_inside(m, m->weights.wte.data, gpt2_panel_matrix_bytes(m->weights.wte.dtype, c->n_vocab, C));
    check_inside(m, m->weights.wpe, (size_t)c->n_ctx * C * sizeof(float));
    for (uint32_t l = 0; l < c->n_layer; l++) {
        const LayerWeights *w = &m->weights.layers[l];
        check_inside(m, w->fc.data, gpt2_panel_matrix_bytes(w->fc.dtype, 4 * C, C));
        check_inside(m, w->mlp.data, gpt2_panel_matrix_bytes(w->mlp.dtype, C, 4 * C));
        check_inside(m, w->qkv_b, 3 * C * sizeof(float));
    }
}

static void encode_decode(Tokenizer *t) {
    static const char text[] = "Hello, world!<|endoftext|> 12\xff\xfe ab  \n\xe2\x82\xac";
    for (int special = 0; special < 2; special++) {
        TokenList ids = {0};
        StrBuf back = {0};
        if (gpt2_tokenizer_encode(t, (const uint8_t *)text, sizeof text - 1, special, &ids) &&
            gpt2_tokenizer_decode(t, ids.ids, ids.n, &back)) {
            require(back.len == sizeof text - 1 && memcmp(back.data, text, back.len) == 0);
        }
        gpt2_strbuf_free(&back);
        gpt2_token_list_free(&ids);
    }
}

static void forward_one_token(const Model *m) {
    const ModelConfig *c = &m->config;
    if ((uint64_t)c->n_layer * c->n_ctx * c->n_embd > MAX_CACHE_FLOATS) return;
    Transformer t;
    char err[256];
    if (!gpt2_transformer_build(&t, m, gpt2_kernels_select(NULL), 1, 1, 1, err, sizeof err)) return;
    float *logits = malloc((size_t)c->n_vocab * sizeof *logits);
    const int32_t token = (int32_t)c->eot_id;
    const uint32_t pos = 0, seq = 0;
    const bool want = true;
    Batch b = {1, &token, &pos, &seq, &want};
    if (logits) require(gpt2_transformer_forward(&t, &b, logits, err, sizeof err));
    free(logits);
    gpt2_transformer_free(&t);
}

static void load(const uint8_t *bytes, size_t n) {
    Model m;
    char err[512];
    if (!gpt2_model_open_memory(&m, bytes, n, err, sizeof err)) {
        check_refusal(err, sizeof err);
        return;
    }
    check_weights(&m);
    Tokenizer *t;
    if (gpt2_tokenizer_build(&t, &m.vocab, err, sizeof err)) {
        encode_decode(t);
        forward_one_token(&m);
        gpt2_tokenizer_free(t);
    } else {
        check_refusal(err, sizeof err);
    }
    gpt2_model_close(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > MAX_INPUT) return 0;
    /* The loader wants the bytes where an mmap would put them: aligned, and
     * exactly as many as the file has, so ASan sees a read past the end. */
    void *p = NULL;
    if (posix_memalign(&p, MODEL_ALIGN, size ? size : 1) != 0) return 0;
    uint8_t *b = p;
    if (size) memcpy(b, data, size);
    load(b, size);
    if (size >= MODEL_HEADER_BYTES) {
        gpt2_model_seal(b, size);
        load(b, size);
    }
    free(b);
    return 0;
}
