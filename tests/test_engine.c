/* test_engine.c - the forward pass against an independent float64 reference.
 *
 * Converts ../shared/reference/tiny (and small) with the built gpt2-convert,
 * then checks every case of expected.json through the public API with the
 * tolerances of that folder's README: logits, max logit and logsumexp of
 * every position within 1e-3, per-token NLL within 1e-3, mean NLL within
 * 1e-4, argmax exact, and the 20-token greedy continuations, generated
 * through the KV cache, exact.  Every kernel set this CPU runs and several
 * thread counts must pass, and all of them must agree to the bit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "json.h"
#include "test_util.h"

typedef struct {
    char dir[4096];     /* temporary folder holding the converted models */
    char model[4200];   /* the converted model file */
    StrBuf expected_text;
    JsonDoc expected;
} Fixture;

/* ---- expected.json ------------------------------------------------------- */

static const JsonValue *member(const JsonValue *obj, const char *key) {
    const JsonValue *v = json_get(obj, key);
    if (!v) fail_msg("expected.json: no \"%s\"", key);
    return v;
}

static double number_at(const JsonValue *array, size_t i) {
    assert_int_equal(array->type, JSON_ARRAY);
    assert_true(i < array->u.array.count);
    const JsonValue *v = &array->u.array.items[i];
    assert_int_equal(v->type, JSON_NUMBER);
    return v->u.number.value;
}

static int32_t *ids_of(const JsonValue *array, size_t *n) {
    assert_int_equal(array->type, JSON_ARRAY);
    *n = array->u.array.count;
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)number_at(array, i);
    return ids;
}

/* ---- set-up ------------------------------------------------------------- */

/* Converts shared/reference/NAME into a temporary model file with dtype. */
static Fixture *make_fixture(const char *shared, const char *name, const char *dtype) {
    Fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    test_mkdtemp(f->dir, sizeof f->dir);
    snprintf(f->model, sizeof f->model, "%s/%s-%s.bin", f->dir, name, dtype);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s/gpt2-convert' '%s/reference/%s' '%s' --tokenizer '%s/gpt2' --dtype %s -q",
             test_build_dir(), shared, name, f->model, shared, dtype);
    if (system(cmd) != 0) fail_msg("conversion failed: %s", cmd);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/%s/expected.json", shared, name);
    test_read_file(path, &f->expected_text);
    char err[256];
    if (!json_parse(&f->expected, f->expected_text.data, f->expected_text.len, err, sizeof err))
        fail_msg("%s: %s", path, err);
    return f;
}

static void free_fixture(Fixture *f) {
    json_free(&f->expected);
    strbuf_free(&f->expected_text);
    test_rmtree(f->dir);
    free(f);
}

static Gpt2 *open_model(const char *path, const char *kernels, int threads) {
    char err[512];
    Gpt2Options o = {.n_threads = threads, .n_batch = 1, .kernels = kernels};
    Gpt2 *g = gpt2_open(path, &o, err, sizeof err);
    if (!g) fail_msg("gpt2_open: %s", err);
    return g;
}

/* The kernel sets this build and CPU can run. */
static size_t available_kernels(const char *out[3]) {
    static const char *const all[] = {"portable", "avx2", "avx512"};
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        char err[256];
        Gpt2Options o = {.n_threads = 1, .kernels = all[i]};
        (void)o;
        (void)err;
        out[n++] = all[i];
    }
    return n;
}

/* ---- the checks ------------------------------------------------------------ */

typedef struct {
    double logit_tol, nll_tol, mean_nll_tol;
    double margin_floor; /* compare argmax and greedy ids only where the reference margin exceeds this */
    double worst_logit, worst_nll, worst_mean_nll;  /* what was seen */
    size_t argmax_checked, argmax_equal;
} Checks;

static void check_case(Gpt2 *g, const JsonValue *c, Checks *k) {
    const char *name = member(c, "name")->u.string.bytes;
    const Gpt2Info info = gpt2_info(g);
    size_t n;
    int32_t *ids = ids_of(member(c, "ids"), &n);
    float *logits = malloc(n * info.n_vocab * sizeof *logits);
    assert_non_null(logits);
    char err[256];
    if (!gpt2_logits(g, ids, n, logits, err, sizeof err)) fail_msg("%s: %s", name, err);

    const JsonValue *max_logit = member(c, "max_logit"), *lse = member(c, "logsumexp");
    const JsonValue *argmax = member(c, "argmax"), *margin = member(c, "argmax_margin"), *nll = member(c, "nll");
    double nll_sum = 0;
    for (size_t t = 0; t < n; t++) {
        const float *row = logits + t * info.n_vocab;
        size_t best = 0;
        for (size_t v = 1; v < info.n_vocab; v++)
            if (row[v] > row[best]) best = v;
        double sum = 0;
        for (size_t v = 0; v < info.n_vocab; v++) sum += exp((double)row[v] - row[best]);
        double my_lse = row[best] + log(sum);
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
    assert_int_equal(final->u.array.count, info.n_vocab);
    for (size_t v = 0; v < info.n_vocab; v++) {
        double d = fabs(logits[(n - 1) * info.n_vocab + v] - number_at(final, v));
        if (d > k->worst_logit) k->worst_logit = d;
        if (d > k->logit_tol)
            fail_msg("%s: final logit %zu is %.6f, want %.6f", name, v, logits[(n - 1) * info.n_vocab + v],
                     number_at(final, v));
    }
    if (n > 1) {
        double want = member(c, "mean_nll")->u.number.value, mine = nll_sum / (double)(n - 1);
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
        if (comp.tokens[i] != greedy[i]) fail_msg("%s: greedy token %zu is %d, want %d", name, i, comp.tokens[i], greedy[i]);
    gpt2_completion_free(&comp);
    free(greedy);
    free(logits);
    free(ids);
}

static void check_all_cases(const char *model, const Fixture *f, const char *kernels, int threads, Checks *k) {
    Gpt2 *g = open_model(model, kernels, threads);
    const JsonValue *cases = member(&f->expected.root, "cases");
    for (size_t i = 0; i < cases->u.array.count; i++) check_case(g, &cases->u.array.items[i], k);
    gpt2_close(g);
}

static void test_tiny_matches_reference(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    Fixture *f = make_fixture(shared, "tiny", "f32");
    const char *kernels[3];
    size_t nk = available_kernels(kernels);
    for (size_t i = 0; i < nk; i++) {
        for (int threads = 1; threads <= 3; threads++) {
            Checks k = {.logit_tol = 1e-3, .nll_tol = 1e-3, .mean_nll_tol = 1e-4, .margin_floor = 0};
            check_all_cases(f->model, f, kernels[i], threads, &k);
            printf("tiny f32 %s %d threads: worst logit %.2g, nll %.2g, mean nll %.2g; argmax %zu/%zu\n", kernels[i],
                   threads, k.worst_logit, k.worst_nll, k.worst_mean_nll, k.argmax_equal, k.argmax_checked);
        }
    }
    free_fixture(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
