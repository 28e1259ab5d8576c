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

#include "transformer.h"

/* Scores ids[0..n) with sequence 0 of t.  logprob[i] gets the
 * log-probability of ids[i]; logprob[0] is NAN, having nothing before it,
 * unless prefix_eot is set, in which case ids is conditioned on a leading
 * <|endoftext|> and logprob[0] is scored too.  Stops early, leaving NANs,
 * when *cancel becomes nonzero.  Returns false with a reason in err. */
bool gpt2_score_tokens(Transformer *t, const int32_t *ids, size_t n, bool prefix_eot, int32_t eot, double *logprob,
                       volatile sig_atomic_t *cancel, char *err, size_t errsz);

#endif
