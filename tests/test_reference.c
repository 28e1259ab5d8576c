/* test_reference.c - see test_reference.h. */
#include "test_reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* ---- expected.json ------------------------------------------------------- */

const JsonValue *member(const JsonValue *obj, const char *key) {
    const JsonValue *v = gpt2_json_get(obj, key);
    if (!v) fail_msg("expected.json: no \"%s\"", key);
    return v;
}

/* Item i of an array of numbers.  gpt2_json_at is a linear scan, so the
 * last place in each of a few arrays is remembered: reading an array in
 * order costs one step per item. */
static struct {
    const JsonValue *array, *item;
    JsonIter it;
    size_t i;
} seen[8];
static size_t next_slot;

void forget_numbers(void) { memset(seen, 0, sizeof seen); }

double number_at(const JsonValue *array, size_t i) {
    assert_int_equal(array->type, JSON_ARRAY);
    assert_true(i < gpt2_json_count(array));
    size_t s = 0;
    while (s < 8 && !(seen[s].array == array && seen[s].i <= i)) s++;
    if (s == 8) {
        s = next_slot++ % 8;
        seen[s].array = array;
        seen[s].it = gpt2_json_iter(array);
        seen[s].item = gpt2_json_next(&seen[s].it, NULL);
        seen[s].i = 0;
    }
    while (seen[s].i < i) seen[s].item = gpt2_json_next(&seen[s].it, NULL), seen[s].i++;
    const JsonValue *v = seen[s].item;
    assert_int_equal(v->type, JSON_NUMBER);
    return gpt2_json_number(v);
}

int32_t *ids_of(const JsonValue *array, size_t *n) {
    assert_int_equal(array->type, JSON_ARRAY);
    *n = gpt2_json_count(array);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)number_at(array, i);
    return ids;
}

/* ---- the checks ------------------------------------------------------------ */

/* The logits of every position of ids, through the public API. */
float *case_logits(Gpt2 *g, const char *name, const int32_t *ids, size_t n) {
    float *logits = malloc(n * gpt2_info(g).n_vocab * sizeof *logits);
    assert_non_null(logits);
    char err[256];
    if (!gpt2_logits(g, ids, n, logits, err, sizeof err)) fail_msg("%s: %s", name, err);
    return logits;
}

size_t row_argmax(const float *row, size_t n_vocab) {
    size_t best = 0;
    for (size_t v = 1; v < n_vocab; v++)
        if (row[v] > row[best]) best = v;
    return best;
}

double row_logsumexp(const float *row, size_t n_vocab, size_t best) {
    double sum = 0;
    for (size_t v = 0; v < n_vocab; v++) sum += exp((double)row[v] - row[best]);
    return row[best] + log(sum);
}

/* Checks one case with k's tolerances; returns its logits (the caller
 * frees them) so that runs can be compared with each other. */
float *check_case(Gpt2 *g, const JsonValue *c, Checks *k) {
    const char *name = gpt2_json_string(member(c, "name"), NULL);
    const Gpt2Info info = gpt2_info(g);
    size_t n;
    int32_t *ids = ids_of(member(c, "ids"), &n);
    float *logits = case_logits(g, name, ids, n);
    char err[256];

    const JsonValue *max_logit = member(c, "max_logit"), *lse = member(c, "logsumexp");
    const JsonValue *argmax = member(c, "argmax"), *margin = member(c, "argmax_margin"), *nll = member(c, "nll");
    double nll_sum = 0;
    for (size_t t = 0; t < n; t++) {
        const float *row = logits + t * info.n_vocab;
        size_t best = row_argmax(row, info.n_vocab);
        double my_lse = row_logsumexp(row, info.n_vocab, best);
        double d1 = fabs(row[best] - number_at(max_logit, t)), d2 = fabs(my_lse - number_at(lse, t));
        if (d1 > k->worst_logit) k->worst_logit = d1;
        if (d2 > k->worst_logit) k->worst_logit = d2;
        if (d1 > k->logit_tol || d2 > k->logit_tol)
            fail_msg("%s position %zu: max logit %.6f (want %.6f), logsumexp %.6f (want %.6f)", name, t, row[best],
                     number_at(max_logit, t), my_lse, number_at(lse, t));
        if (number_at(margin, t) > k->margin_floor) {
            k->argmax_checked++;
            k->argmax_equal += (double)best == number_at(argmax, t);
            if ((double)best != number_at(argmax, t))
                fail_msg("%s position %zu: argmax %zu, want %.0f", name, t, best, number_at(argmax, t));
        }
        if (t + 1 < n) {
            double my_nll = my_lse - row[ids[t + 1]];
            double d = fabs(my_nll - number_at(nll, t));
            if (d > k->worst_nll) k->worst_nll = d;
            if (d > k->nll_tol) fail_msg("%s position %zu: nll %.6f, want %.6f", name, t, my_nll, number_at(nll, t));
            nll_sum += my_nll;
        }
    }
    const JsonValue *final = member(c, "final_logits");
    assert_int_equal(gpt2_json_count(final), info.n_vocab);
    for (size_t v = 0; v < info.n_vocab; v++) {
        double d = fabs(logits[(n - 1) * info.n_vocab + v] - number_at(final, v));
        if (d > k->worst_logit) k->worst_logit = d;
        if (d > k->logit_tol)
            fail_msg("%s: final logit %zu is %.6f, want %.6f", name, v, logits[(n - 1) * info.n_vocab + v],
                     number_at(final, v));
    }
    if (n > 1) {
        double want = gpt2_json_number(member(c, "mean_nll")), mine = nll_sum / (double)(n - 1);
        if (fabs(mine - want) > k->worst_mean_nll) k->worst_mean_nll = fabs(mine - want);
        if (fabs(mine - want) > k->mean_nll_tol) fail_msg("%s: mean nll %.7f, want %.7f", name, mine, want);
    }

    /* Greedy continuation through the KV cache, up to the first step whose
     * reference margin is too thin to decide. */
    size_t n_greedy;
    int32_t *greedy = ids_of(member(c, "greedy_ids"), &n_greedy);
    const JsonValue *greedy_margin = member(c, "greedy_margin");
    size_t decided = 0;
    while (decided < n_greedy && number_at(greedy_margin, decided) > k->margin_floor) decided++;
    Gpt2Completion comp = {.prompt = ids, .n_prompt = n, .params = gpt2_default_params()};
    comp.params.n_predict = (uint32_t)n_greedy;
    comp.params.sampling.temperature = 0;
    comp.params.ignore_eos = true;
    if (!gpt2_generate(g, &comp, 1, NULL, err, sizeof err)) fail_msg("%s: %s", name, err);
    assert_int_equal(comp.n_tokens, n_greedy);
    for (size_t i = 0; i < decided; i++)
        if (comp.tokens[i] != greedy[i])
            fail_msg("%s: greedy token %zu is %d, want %d", name, i, comp.tokens[i], greedy[i]);
    k->greedy_checked += decided;
    gpt2_completion_free(&comp);
    free(greedy);
    free(ids);
    return logits;
}

void check_model_against(const char *model_path, const char *expected_path, Checks *k) {
    StrBuf text = {0};
    JsonDoc doc;
    char err[512];
    forget_numbers();
    test_read_file(expected_path, &text);
    if (!gpt2_json_parse(&doc, text.data, text.len, err, sizeof err)) fail_msg("%s: %s", expected_path, err);
    Gpt2Options o = {.n_threads = 2, .n_batch = 1};
    Gpt2 *g = gpt2_open(model_path, &o, err, sizeof err);
    if (!g) fail_msg("gpt2_open: %s", err);
    JsonIter it = gpt2_json_iter(member(doc.root, "cases"));
    const JsonValue *c;
    while ((c = gpt2_json_next(&it, NULL))) free(check_case(g, c, k));
    gpt2_close(g);
    gpt2_json_free(&doc);
    forget_numbers();
    gpt2_strbuf_free(&text);
}
