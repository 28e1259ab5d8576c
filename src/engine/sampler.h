/* sampler.h - choosing the next token from the logits.
 *
 * Owns the sampling pipeline, in the order gpt2.h documents for
 * Gpt2Sampling: logit bias, penalties (repetition, presence, frequency,
 * no-repeat n-gram), then greedy argmax when the temperature is 0 (below
 * GPT2_MIN_TEMPERATURE), else temperature, top-k, softmax, top-p, min-p,
 * and a draw from the sampler's own random generator.  It also counts the
 * completion's tokens, for the presence and frequency penalties.
 * Given the same logits, settings and seed it always picks the same token,
 * on every machine: ties go to the lower id, probabilities are computed in
 * double precision, and the generator is a fixed algorithm (xoshiro256**).
 */
#ifndef GPT2_SAMPLER_H
#define GPT2_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpt2.h" /* Gpt2Sampling: the settings */

typedef struct {
    int32_t id;
    float logit; /* after penalty and temperature */
    double p;
} Candidate;

typedef struct {
    Gpt2Sampling params;
    uint64_t rng[4]; /* xoshiro256** state */
    uint32_t n_vocab;
    Candidate *candidates; /* [n_vocab] scratch */
    uint8_t *seen;         /* [n_vocab] scratch for the penalty */
    uint32_t *counts;      /* [n_vocab] occurrences in the completion */
    int32_t *occurred;     /* [n_occurred] the distinct tokens of the completion */
    size_t n_occurred;
} Sampler;

/* What the penalties look at, newest token last: `recent` holds at least
 * the last repeat_last_n tokens of prompt and completion, `context` the
 * tokens in the model's context (for no-repeat n-grams). */
typedef struct {
    const int32_t *recent;
    size_t n_recent;
    const int32_t *context;
    size_t n_context;
} SamplerHistory;

/* What gpt2_sampler_sample returns when no token has a finite logit. */
#define SAMPLER_NONE (-1)

/* False when memory runs out. */
bool gpt2_sampler_build(Sampler *s, const Gpt2Sampling *p, uint32_t n_vocab);
void gpt2_sampler_free(Sampler *s);

/* Picks the next token from logits[n_vocab] (which it modifies), given the
 * tokens so far (h may be NULL: none); SAMPLER_NONE when every token's
 * logit is -inf or not a number. */
int32_t gpt2_sampler_sample(Sampler *s, float *logits, const SamplerHistory *h);

/* Counts token as part of the completion (presence and frequency). */
void gpt2_sampler_accept(Sampler *s, int32_t token);

/* A uniform double in [0, 1) from the sampler's generator. */
double gpt2_sampler_uniform(Sampler *s);

#endif
