/* test_inspect.c - gpt2_inspect against the independent float64 reference.
 *
 * Converts ../shared/reference/tiny with the built gpt2-convert and checks
 * every prompt of expected_inspect.json: the prompt's ids exactly, the
 * embedding norms, every attention weight [layer][head][query][key], the
 * five likeliest next tokens' probabilities and the entropy within 1e-4,
 * their ids exactly (the fifth where kth_gap leaves it decidable), and the
 * logit lens's ids exactly where the reference's margin exceeds 1e-3.
 * Then the parts of an inspection must agree with each other: a window of
 * the attention, the last row, the mean distances, the rank and probability
 * of the actual next token.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "json.h"
#include "test_util.h"

#define TOL 1e-4

static const JsonValue *member(const JsonValue *obj, const char *key) {
    const JsonValue *v = gpt2_json_get(obj, key);
    if (!v) fail_msg("expected_inspect.json: no \"%s\"", key);
    return v;
}

static const JsonValue *item(const JsonValue *array, size_t i) {
    assert_int_equal(array->type, JSON_ARRAY);
    assert_true(i < gpt2_json_count(array));
    return gpt2_json_at(array, i);
}

static double number(const JsonValue *v) {
    assert_int_equal(v->type, JSON_NUMBER);
    return gpt2_json_number(v);
}

static void expect_near(double got, double want, double tol, const char *what, size_t a, size_t b) {
    if (!(fabs(got - want) <= tol)) fail_msg("%s [%zu][%zu]: %.7g, expected %.7g", what, a, b, got, want);
}

typedef struct {
    char dir[4096];
    char model[4200];
    StrBuf text;
    JsonDoc doc;
    Gpt2 *g;
} Fixture;

static int setup(void **state) {
    const char *shared = test_shared_dir();
    if (!shared) return 0; /* the tests skip */
    Fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    test_mkdtemp(f->dir, sizeof f->dir);
    snprintf(f->model, sizeof f->model, "%s/tiny.bin", f->dir);
    test_convert_reference(shared, "tiny", "f32", f->model);
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/reference/tiny/expected_inspect.json", shared);
    test_read_file(path, &f->text);
    if (!gpt2_json_parse(&f->doc, f->text.data, f->text.len, err, sizeof err)) fail_msg("%s: %s", path, err);
    Gpt2Options o = {.n_threads = 2};
    f->g = gpt2_open(f->model, &o, err, sizeof err);
    if (!f->g) fail_msg("gpt2_open: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    Fixture *f = *state;
    if (!f) return 0;
    gpt2_close(f->g);
    gpt2_json_free(&f->doc);
    gpt2_strbuf_free(&f->text);
    test_rmtree(f->dir);
    free(f);
    return 0;
}

#define REQUIRE_FIXTURE(f)                                                                                             \
    Fixture *f = *state;                                                                                               \
    if (!f) {                                                                                                          \
        skip();                                                                                                        \
        return;                                                                                                        \
    }

/* The case's text tokenized; its ids must be the reference's. */
static int32_t *case_ids(Fixture *f, const JsonValue *c, size_t *n) {
    const JsonValue *text = member(c, "text"), *want = member(c, "ids");
    int32_t *ids;
    char err[256];
    size_t len;
    const char *bytes = gpt2_json_string(text, &len);
    assert_non_null(bytes);
    assert_true(gpt2_tokenize(f->g, bytes, len, false, &ids, n, err, sizeof err));
    assert_int_equal(*n, gpt2_json_count(want));
    for (size_t i = 0; i < *n; i++) assert_int_equal(ids[i], (int32_t)number(item(want, i)));
    return ids;
}

static void check_case(Fixture *f, const JsonValue *c) {
    size_t n;
    int32_t *ids = case_ids(f, c, &n);
    Gpt2Inspection x;
    char err[256];
    Gpt2InspectOptions o = {.top_k = 5, .logit_lens = true};
    if (!gpt2_inspect(f->g, ids, n, &o, &x, err, sizeof err)) fail_msg("gpt2_inspect: %s", err);
    assert_int_equal(x.n, n);
    assert_int_equal(x.window, n);

    const JsonValue *norms = member(c, "embedding_norms");
    for (size_t i = 0; i < n; i++) {
        expect_near(x.norm_wte[i], number(member(item(norms, i), "wte")), TOL, "norm wte", i, 0);
        expect_near(x.norm_wpe[i], number(member(item(norms, i), "wpe")), TOL, "norm wpe", i, 0);
        expect_near(x.norm_sum[i], number(member(item(norms, i), "sum")), TOL, "norm sum", i, 0);
    }

    const JsonValue *att = member(c, "attention");
    assert_int_equal(gpt2_json_count(att), x.n_layer);
    for (size_t l = 0; l < x.n_layer; l++)
        for (size_t h = 0; h < x.n_head; h++)
            for (size_t q = 0; q < n; q++)
                for (size_t k = 0; k < n; k++) {
                    double want = number(item(item(item(item(att, l), h), q), k));
                    expect_near(x.attention[((l * x.n_head + h) * n + q) * n + k], want, TOL, "attention",
                                (l * x.n_head + h) * n + q, k);
                }

    const JsonValue *pred = member(c, "predictions");
    for (size_t i = 0; i < n; i++) {
        const JsonValue *p = item(pred, i), *top = member(p, "top");
        expect_near(x.entropy_bits[i], number(member(p, "entropy_bits")), TOL, "entropy_bits", i, 0);
        double kth_gap = number(member(p, "kth_gap"));
        for (size_t j = 0; j < 5; j++) {
            const Gpt2TokenProb *got = &x.top[i * x.top_k + j];
            if (j < 4 || kth_gap > 1e-3) assert_int_equal(got->id, (int32_t)number(item(item(top, j), 0)));
            expect_near(got->prob, number(item(item(top, j), 1)), TOL, "top prob", i, j);
        }
    }

    const JsonValue *lens = member(c, "logit_lens");
    size_t decided = 0;
    for (size_t l = 0; l < x.n_layer; l++)
        for (size_t i = 0; i < n; i++) {
            const JsonValue *e = item(item(lens, l), i);
            if (number(item(e, 1)) <= 1e-3) continue;
            assert_int_equal(x.lens_id[l * n + i], (int32_t)number(item(e, 0)));
            expect_near(x.lens_margin[l * n + i], number(item(e, 1)), 1e-3, "lens margin", l, i);
            decided++;
        }
    assert_true(decided > n); /* most of them are decidable */
    /* The last layer's lens is the prediction itself. */
    for (size_t i = 0; i < n; i++) assert_int_equal(x.lens_id[(x.n_layer - 1) * n + i], x.top[i * x.top_k].id);
    gpt2_inspection_free(&x);
    free(ids);
}

static void test_matches_reference(void **state) {
    REQUIRE_FIXTURE(f);
    const JsonValue *cases = member(f->doc.root, "cases");
    assert_true(gpt2_json_count(cases) >= 4);
    for (size_t i = 0; i < gpt2_json_count(cases); i++) check_case(f, item(cases, i));
}

/* A window, the last row and the distances agree with the full matrix;
 * the actual next token's rank and probability agree with the top list. */
static void test_parts_agree(void **state) {
    REQUIRE_FIXTURE(f);
    const JsonValue *c = item(member(f->doc.root, "cases"), 1);
    size_t n;
    int32_t *ids = case_ids(f, c, &n);
    char err[256];
    Gpt2Inspection full, part;
    Gpt2InspectOptions all = {.top_k = 20}, windowed = {.top_k = 3, .attention_window = 4};
    assert_true(gpt2_inspect(f->g, ids, n, &all, &full, err, sizeof err));
    assert_true(gpt2_inspect(f->g, ids, n, &windowed, &part, err, sizeof err));
    assert_null(full.lens_id);
    assert_int_equal(part.window, 4);
    const size_t LH = (size_t)full.n_layer * full.n_head, w = 4;
    for (size_t lh = 0; lh < LH; lh++) {
        const float *m = full.attention + lh * n * n;
        double mean = 0;
        for (size_t q = 0; q < n; q++) {
            double rowsum = 0;
            for (size_t k = 0; k < n; k++) {
                rowsum += m[q * n + k];
                mean += m[q * n + k] * (double)(q - k) * (k <= q);
                if (k > q) assert_true(m[q * n + k] == 0.0f);
            }
            expect_near(rowsum, 1.0, 1e-5, "row sum", lh, q);
        }
        expect_near(full.attention_distance[lh], mean / (double)n, 1e-5, "distance", lh, 0);
        expect_near(part.attention_distance[lh], full.attention_distance[lh], 1e-6, "window distance", lh, 0);
        for (size_t k = 0; k < n; k++)
            expect_near(part.attention_last[lh * n + k], m[(n - 1) * n + k], 1e-6, "last row", lh, k);
        for (size_t q = 0; q < w; q++)
            for (size_t k = 0; k < w; k++)
                expect_near(part.attention[(lh * w + q) * w + k], m[(n - w + q) * n + n - w + k], 1e-6, "window", q, k);
    }
    size_t found = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        assert_true(full.next_rank[i] >= 1);
        for (size_t j = 0; j < full.top_k; j++)
            if (full.top[i * full.top_k + j].id == ids[i + 1]) {
                assert_int_equal(full.next_rank[i], j + 1);
                expect_near(full.next_prob[i], full.top[i * full.top_k + j].prob, 1e-9, "next prob", i, j);
                found++;
            }
        if (full.next_rank[i] <= full.top_k)
            assert_int_equal(full.top[i * full.top_k + full.next_rank[i] - 1].id, ids[i + 1]);
        else assert_true(full.next_prob[i] <= full.top[i * full.top_k + full.top_k - 1].prob);
        expect_near(part.next_prob[i], full.next_prob[i], 1e-12, "windowed next prob", i, 0);
    }
    assert_int_equal(full.next_rank[n - 1], 0);
    assert_true(isnan(full.next_prob[n - 1]));
    (void)found;
    gpt2_inspection_free(&full);
    gpt2_inspection_free(&part);
    free(ids);
}

/* An inspection leaves no trace: generation afterwards gives the logits
 * it gave before, and bad requests are refused with a reason. */
static void test_no_trace_and_refusals(void **state) {
    REQUIRE_FIXTURE(f);
    Gpt2Info info = gpt2_info(f->g);
    int32_t ids[3] = {15496, 11, 616};
    float *before = malloc(3 * info.n_vocab * sizeof *before), *after = malloc(3 * info.n_vocab * sizeof *after);
    assert_non_null(before);
    assert_non_null(after);
    char err[256];
    assert_true(gpt2_logits(f->g, ids, 3, before, err, sizeof err));
    Gpt2Inspection x;
    Gpt2InspectOptions lens = {.logit_lens = true};
    assert_true(gpt2_inspect(f->g, ids, 3, &lens, &x, err, sizeof err));
    assert_int_equal(x.top_k, 5);
    gpt2_inspection_free(&x);
    assert_true(gpt2_logits(f->g, ids, 3, after, err, sizeof err));
    assert_memory_equal(before, after, 3 * info.n_vocab * sizeof *before);
    assert_false(gpt2_inspect(f->g, ids, 0, NULL, &x, err, sizeof err));
    assert_non_null(strstr(err, "1 to"));
    Gpt2InspectOptions many = {.top_k = 1000};
    assert_false(gpt2_inspect(f->g, ids, 3, &many, &x, err, sizeof err));
    int32_t bad = (int32_t)info.n_vocab;
    assert_false(gpt2_inspect(f->g, &bad, 1, NULL, &x, err, sizeof err));
    assert_non_null(strstr(err, "vocabulary"));
    free(before);
    free(after);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_parts_agree),
        cmocka_unit_test(test_no_trace_and_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
