/* score.h - the log-probability a model gives each token of a text.
 *
 * Owns scoring: logprob[i] = log p(token i | tokens before it), in natural
 * log, computed from max-subtracted log-sum-exp in double precision.
 * Texts longer than the context are scored through overlapping windows of
 * n_ctx tokens advancing by half a context, so that every token is
 * conditioned on at least n_ctx / 2 tokens before it (or on all of them
 * near the start).
 */
#ifndef GPT2_SCORE_H
#define GPT2_SCORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpt2.h"
#include "transformer.h"

/* Scores ids[0..n) with sequence 0 of t.  logprob[i] gets the
 * log-probability of ids[i]; logprob[0] is NAN, having nothing before it,
 * unless prefix_eot is set, in which case ids is conditioned on a leading
 * <|endoftext|> and logprob[0] is scored too.  When top is not NULL,
 * top[i] gets the same and the top_k likeliest tokens at position i (see
 * Gpt2TokenLogprob); logprob may then be NULL.  Stops early, leaving NANs,
 * when *cancel becomes nonzero.  Returns false with a reason in err. */
bool gpt2_score_tokens(Transformer *t, const int32_t *ids, size_t n, bool prefix_eot, int32_t eot, double *logprob,
                       uint32_t top_k, Gpt2TokenLogprob *top, volatile sig_atomic_t *cancel, char *err, size_t errsz);

/* Fills e from one row of logits: token id's log-probability and the
 * top_k likeliest tokens. */
void gpt2_score_describe(const float *logits, size_t n_vocab, int32_t id, uint32_t top_k, Gpt2TokenLogprob *e);

#endif
