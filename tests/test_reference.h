/* test_reference.h - checking a model against a float64 reference.
 *
 * The checks of expected.json (see ../shared/reference/README.md): for one
 * case, every position's max logit and logsumexp, the final logits, the
 * per-token and mean NLL within tolerances, the argmax exactly and the
 * greedy continuation through the KV cache exactly, where the reference's
 * margin exceeds a floor.
 */
#ifndef GPT2_TEST_REFERENCE_H
#define GPT2_TEST_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "gpt2.h"
#include "json.h"

typedef struct {
    double logit_tol, nll_tol, mean_nll_tol;
    double margin_floor; /* compare argmax and greedy ids only where the reference margin exceeds this */
    double worst_logit, worst_nll, worst_mean_nll; /* what was seen */
    size_t argmax_checked, argmax_equal, greedy_checked;
} Checks;

/* Member key of obj; fails the test when it is absent. */
const JsonValue *member(const JsonValue *obj, const char *key);
/* Item i of an array of numbers; reading an array in order is linear.
 * forget_numbers must be called before a document is freed. */
double number_at(const JsonValue *array, size_t i);
void forget_numbers(void);
/* The integers of a JSON array, malloc'd. */
int32_t *ids_of(const JsonValue *array, size_t *n);
/* The logits of every position of ids, through the public API. */
float *case_logits(Gpt2 *g, const char *name, const int32_t *ids, size_t n);
size_t row_argmax(const float *row, size_t n_vocab);
double row_logsumexp(const float *row, size_t n_vocab, size_t best);

/* Checks one case with k's tolerances; returns its logits (the caller
 * frees them) so that runs can be compared with each other. */
float *check_case(Gpt2 *g, const JsonValue *c, Checks *k);

/* Opens model_path and checks every case of the expected.json at
 * expected_path; the worst differences are left in k. */
void check_model_against(const char *model_path, const char *expected_path, Checks *k);

#endif
