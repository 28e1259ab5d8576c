/* distribution.h - the next-token distribution that a row of logits means.
 *
 * Owns turning logits into log-probabilities: the normaliser, the K likeliest
 * tokens, one token's log-probability and the entropy.  Everything is
 * computed in double from the float logits, so that what --logprobs,
 * --score and --inspect report is the model's own distribution (before
 * temperature, penalties or truncation) to well within 1e-6.
 *
 * NaN logits (a damaged model) count as -inf: they have probability 0, are
 * never among the K likeliest, and their log-probability is -inf.
 */
#ifndef GPT2_DISTRIBUTION_H
#define GPT2_DISTRIBUTION_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t id;
    double logprob; /* natural log */
} DistEntry;

/* ln sum_v exp(logits[v]) over the n logits; -inf when none is finite or
 * +inf (then every log-probability below is NaN or -inf). */
double gpt2_dist_log_z(const float *logits, size_t n);

/* ln p(id) = logits[id] - log_z; -inf for a NaN logit. */
double gpt2_dist_logprob(const float *logits, int32_t id, double log_z);

/* The min(k, n) likeliest tokens into out[], likeliest first; equal logits
 * in order of id.  Tokens whose logit is NaN or -inf are left out, so fewer
 * than k may come back: returns how many were written. */
size_t gpt2_dist_top_k(const float *logits, size_t n, size_t k, double log_z, DistEntry *out);

/* -sum p log2 p over the tokens, in bits. */
double gpt2_dist_entropy_bits(const float *logits, size_t n, double log_z);

/* The rank of token id among the n, 1 for the likeliest, in the order of
 * gpt2_dist_top_k (higher logit first, then lower id). */
size_t gpt2_dist_rank(const float *logits, size_t n, int32_t id);

#endif
