/* score.c - see score.h. */
#include "score.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Rows per forward call while scoring: each needs a row of logits, so
 * this bounds the logits buffer (64 x 50257 floats, 13 MB). */
#define SCORE_ROWS 64

/* log p(target) from one row of logits. */
static double log_prob(const float *logits, size_t n_vocab, int32_t target) {
    float max = logits[0];
    for (size_t i = 1; i < n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0;
    for (size_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - max);
    return (double)logits[target] - max - log(sum);
}

bool gpt2_score_tokens(Transformer *t, const int32_t *ids, size_t n, bool prefix_eot, int32_t eot, double *logprob,
                       volatile sig_atomic_t *cancel, char *err, size_t errsz) {
    const size_t n_vocab = t->model->config.n_vocab, W = t->model->config.n_ctx;
    const size_t chunk = t->max_rows < SCORE_ROWS ? t->max_rows : SCORE_ROWS;
    const size_t T = n + (prefix_eot ? 1 : 0); /* the scored sequence, seq[j] */
    const size_t shift = prefix_eot ? 1 : 0;   /* seq[j] is ids[j - shift] */
    for (size_t i = 0; i < n; i++) logprob[i] = NAN;
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
                logprob[j - shift] = log_prob(logits + k++ * n_vocab, n_vocab, ids[j - shift]);
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
