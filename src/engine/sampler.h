/* sampler.h - choosing the next token from the logits.
 *
 * Owns the sampling pipeline, applied in this order: repetition penalty,
 * then greedy argmax when the temperature is 0, else temperature, top-k,
 * softmax, top-p, and a draw from the sampler's own random generator.
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
} Sampler;

/* False when memory runs out. */
bool gpt2_sampler_build(Sampler *s, const Gpt2Sampling *p, uint32_t n_vocab);
void gpt2_sampler_free(Sampler *s);

/* Picks the next token from logits[n_vocab] (which it may modify), given
 * the tokens so far (history[0..n_history), the newest last). */
int32_t gpt2_sampler_sample(Sampler *s, float *logits, const int32_t *history, size_t n_history);

/* A uniform double in [0, 1) from the sampler's generator. */
double gpt2_sampler_uniform(Sampler *s);

#endif
