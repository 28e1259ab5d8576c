/* score.c - see score.h. */
#include "score.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "distribution.h"

/* Rows per forward call while scoring: each needs a row of logits, so
 * this bounds the logits buffer (64 x 50257 floats, 13 MB). */
#define SCORE_ROWS 64

void gpt2_score_describe(const float *logits, size_t n_vocab, int32_t id, uint32_t top_k, Gpt2TokenLogprob *e) {
    DistEntry top[GPT2_MAX_TOP_LOGPROBS];
    double log_z = gpt2_dist_log_z(logits, n_vocab);
    if (top_k > GPT2_MAX_TOP_LOGPROBS) top_k = GPT2_MAX_TOP_LOGPROBS;
    e->id = id;
    e->logprob = gpt2_dist_logprob(logits, id, log_z);
    e->n_top = (uint32_t)gpt2_dist_top_k(logits, n_vocab, top_k, log_z, top);
    for (uint32_t i = 0; i < e->n_top; i++) e->top[i] = (Gpt2TopLogprob){top[i].id, top[i].logprob};
}

bool gpt2_score_tokens(Transformer *t, const int32_t *ids, size_t n, bool prefix_eot, int32_t eot, double *logprob,
                       uint32_t top_k, Gpt2TokenLogprob *top, volatile sig_atomic_t *cancel, char *err, size_t errsz) {
    const size_t n_vocab = t->model->config.n_vocab, W = t->model->config.n_ctx;
    const size_t chunk = t->max_rows < SCORE_ROWS ? t->max_rows : SCORE_ROWS;
    const size_t T = n + (prefix_eot ? 1 : 0); /* the scored sequence, seq[j] */
    const size_t shift = prefix_eot ? 1 : 0;   /* seq[j] is ids[j - shift] */
    for (size_t i = 0; i < n; i++) {
        if (logprob) logprob[i] = NAN;
        if (top) top[i] = (Gpt2TokenLogprob){.id = ids[i], .logprob = NAN};
    }
    if (T < 2) return true;
    float *logits = malloc(chunk * n_vocab * sizeof *logits);
    int32_t *token = malloc(chunk * sizeof *token);
    uint32_t *pos = malloc(chunk * sizeof *pos), *seq = calloc(chunk, sizeof *seq);
    bool *want = malloc(chunk * sizeof *want);
    bool ok = logits && token && pos && seq && want;
    if (!ok) snprintf(err, errsz, "out of memory");
    size_t scored = 1; /* seq[scored] is the next token without a log-probability */
    for (size_t start = 0; ok && scored<T; start += W / 2> 0 ? W / 2 : 1) {
        size_t end = start + W < T ? start + W : T;
        gpt2_transformer_reset(t, 0);
        for (size_t r0 = start; ok && r0 < end; r0 += chunk) {
            if (cancel && *cancel) goto done;
            size_t rows = end - r0 < chunk ? end - r0 : chunk;
            for (size_t r = 0; r < rows; r++) {
                size_t j = r0 + r;
                token[r] = j < shift ? eot : ids[j - shift];
                pos[r] = (uint32_t)(j - start);
                want[r] = j + 1 >= scored && j + 1 < end; /* predicts a token not yet scored */
            }
            Batch b = {rows, token, pos, seq, want};
            ok = gpt2_transformer_forward(t, &b, logits, err, errsz);
            size_t k = 0;
            for (size_t r = 0; ok && r < rows; r++) {
                if (!want[r]) continue;
                size_t j = r0 + r + 1; /* the predicted token; j >= 1 >= shift */
                const float *row = logits + k++ * n_vocab;
                if (top) {
                    gpt2_score_describe(row, n_vocab, ids[j - shift], top_k, &top[j - shift]);
                    if (logprob) logprob[j - shift] = top[j - shift].logprob;
                } else {
                    logprob[j - shift] = gpt2_dist_logprob(row, ids[j - shift], gpt2_dist_log_z(row, n_vocab));
                }
            }
        }
        scored = end;
    }
done:
    free(logits);
    free(token);
    free(pos);
    free(seq);
    free(want);
    return ok;
}
