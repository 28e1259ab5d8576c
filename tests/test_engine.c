/* test_engine.c - the forward pass against an independent float64 reference.
 *
 * Converts ../shared/reference/tiny (and small) with the built gpt2-convert,
 * then checks every case of expected.json through the public API with the
 * tolerances of that folder's README: logits, max logit and logsumexp of
 * every position within 1e-3, per-token NLL within 1e-3, mean NLL within
 * 1e-4, argmax exact, and the 20-token greedy continuations, generated
 * through the KV cache, exact.  Every kernel set this CPU runs and several
 * thread counts must pass, and all of them must agree to the bit.
 *
 * Reduced-precision weights are held to fixed quality bars on the
 * small fixture (whose rows split into whole q8_0 blocks): against the
 * float64 reference, f16 keeps every case's mean NLL within 0.005 and the
 * argmax at 99% of positions; q8_0 within 0.05 and 95%.  They too give the
 * same bits on every kernel set and thread count.
 *
 * A sequence started from a copy of another's keys and values gives the
 * bits of a whole evaluation, and an inspection's attention, recomputed
 * from the cached keys, is the softmax of the pass's own queries and keys.
 *
 * With no thread count, a model runs one thread per CPU the process may
 * use, as its affinity says.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_setaffinity */
#endif
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "inspect.h"
#include "json.h"
#include "kernels.h"
#include "model.h"
#include "test_reference.h"
#include "test_util.h"
#include "transformer.h"

typedef struct {
    char dir[4096];   /* temporary folder holding the converted models */
    char model[4200]; /* the converted model file */
    StrBuf expected_text;
    JsonDoc expected;
} Fixture;

/* ---- set-up ------------------------------------------------------------- */

/* Converts shared/reference/NAME into a temporary model file with dtype. */
static Fixture *make_fixture(const char *shared, const char *name, const char *dtype) {
    Fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    test_mkdtemp(f->dir, sizeof f->dir);
    snprintf(f->model, sizeof f->model, "%s/%s-%s.bin", f->dir, name, dtype);
    test_convert_reference(shared, name, dtype, f->model);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/%s/expected.json", shared, name);
    test_read_file(path, &f->expected_text);
    char err[256];
    if (!gpt2_json_parse(&f->expected, f->expected_text.data, f->expected_text.len, err, sizeof err))
        fail_msg("%s: %s", path, err);
    return f;
}

static void free_fixture(Fixture *f) {
    forget_numbers();
    gpt2_json_free(&f->expected);
    gpt2_strbuf_free(&f->expected_text);
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
static size_t available_kernels(const char *out[4]) {
    static const char *const all[] = {"portable", "avx2", "avxvnni", "avx512"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (gpt2_kernels_select(all[i])) out[n++] = all[i];
    return n;
}

/* Checks every case of f on the model with the given kernels and threads.
 * The first run's logits are kept in *first; every later run must give
 * the same bits. */
static void check_all_cases(const Fixture *f, const char *kernels, int threads, Checks *k, float ***first) {
    Gpt2 *g = open_model(f->model, kernels, threads);
    const JsonValue *cases = member(f->expected.root, "cases");
    const size_t n_cases = gpt2_json_count(cases), n_vocab = gpt2_info(g).n_vocab;
    bool keep = *first == NULL;
    if (keep) *first = calloc(n_cases, sizeof **first);
    for (size_t i = 0; i < n_cases; i++) {
        const JsonValue *c = gpt2_json_at(cases, i);
        float *logits = check_case(g, c, k);
        size_t n = gpt2_json_count(member(c, "ids"));
        if (keep) {
            (*first)[i] = logits;
            continue;
        }
        if (memcmp((*first)[i], logits, n * n_vocab * sizeof *logits) != 0)
            fail_msg("%s: the logits with %s kernels on %d threads differ from the first run's",
                     gpt2_json_string(member(c, "name"), NULL), kernels, threads);
        free(logits);
    }
    gpt2_close(g);
}

static void free_first(float **first, const Fixture *f) {
    for (size_t i = 0; first && i < gpt2_json_count(member(f->expected.root, "cases")); i++) free(first[i]);
    free(first);
}

/* tiny: every argmax and greedy step is decisive, so all are checked. */
static void test_tiny_matches_reference(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    Fixture *f = make_fixture(shared, "tiny", "f32");
    const char *kernels[4];
    size_t nk = available_kernels(kernels);
    assert_true(nk >= 1); /* the portable set at least */
    float **first = NULL;
    for (size_t i = 0; i < nk; i++) {
        for (int threads = 1; threads <= 3; threads++) {
            Checks k = {.logit_tol = 1e-3, .nll_tol = 1e-3, .mean_nll_tol = 1e-4, .margin_floor = 0};
            check_all_cases(f, kernels[i], threads, &k, &first);
            printf("tiny f32, %s kernels, %d threads: worst logit %.2g, nll %.2g, mean nll %.2g; argmax %zu/%zu, "
                   "greedy %zu\n",
                   kernels[i], threads, k.worst_logit, k.worst_nll, k.worst_mean_nll, k.argmax_equal, k.argmax_checked,
                   k.greedy_checked);
            assert_int_equal(k.argmax_checked, 200);
            assert_int_equal(k.greedy_checked, 80);
        }
    }
    free_first(first, f);
    free_fixture(f);
}

/* small: the same tolerances; argmax and greedy only where the reference's
 * margin exceeds 1e-3 (its README). */
static void test_small_matches_reference(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    Fixture *f = make_fixture(shared, "small", "f32");
    const char *kernels[4];
    size_t nk = available_kernels(kernels);
    assert_true(nk >= 1); /* the portable set at least */
    float **first = NULL;
    for (size_t i = 0; i < nk; i++) {
        Checks k = {.logit_tol = 1e-3, .nll_tol = 1e-3, .mean_nll_tol = 1e-4, .margin_floor = 1e-3};
        check_all_cases(f, kernels[i], 2, &k, &first);
        printf("small f32, %s kernels: worst logit %.2g, nll %.2g, mean nll %.2g; argmax %zu/%zu, greedy %zu\n",
               kernels[i], k.worst_logit, k.worst_nll, k.worst_mean_nll, k.argmax_equal, k.argmax_checked,
               k.greedy_checked);
        assert_int_equal(k.argmax_checked, 307);
        assert_int_equal(k.greedy_checked, 80);
    }
    free_first(first, f);
    free_fixture(f);
}

/* ---- reduced precision ------------------------------------------------------- */

typedef struct {
    const char *dtype;
    double mean_nll_tol;    /* per case, against the float64 reference */
    double argmax_fraction; /* of all positions, identical to the reference's */
} QualityBar;

static void check_quality(const char *shared, const QualityBar *bar) {
    Fixture *f = make_fixture(shared, "small", bar->dtype);
    Gpt2 *g = open_model(f->model, NULL, 2);
    assert_string_equal(gpt2_info(g).dtype, bar->dtype);
    const size_t n_vocab = gpt2_info(g).n_vocab;
    const JsonValue *cases = member(f->expected.root, "cases");
    size_t positions = 0, equal = 0;
    double worst = 0;
    for (size_t i = 0; i < gpt2_json_count(cases); i++) {
        const JsonValue *c = gpt2_json_at(cases, i);
        const char *name = gpt2_json_string(member(c, "name"), NULL);
        size_t n;
        int32_t *ids = ids_of(member(c, "ids"), &n);
        float *logits = case_logits(g, name, ids, n);
        double nll = 0;
        for (size_t t = 0; t < n; t++) {
            const float *row = logits + t * n_vocab;
            size_t best = row_argmax(row, n_vocab);
            positions++;
            equal += (double)best == number_at(member(c, "argmax"), t);
            if (t + 1 < n) nll += row_logsumexp(row, n_vocab, best) - row[ids[t + 1]];
        }
        if (n > 1) {
            double d = fabs(nll / (double)(n - 1) - gpt2_json_number(member(c, "mean_nll")));
            if (d > worst) worst = d;
        }
        free(logits);
        free(ids);
    }
    double fraction = (double)equal / (double)positions;
    printf("small %s: worst mean NLL error %.4g (bar %g), argmax %zu/%zu = %.1f%% (bar %.0f%%)\n", bar->dtype, worst,
           bar->mean_nll_tol, equal, positions, 100 * fraction, 100 * bar->argmax_fraction);
    if (worst > bar->mean_nll_tol) fail_msg("%s: mean NLL off by %g", bar->dtype, worst);
    if (fraction < bar->argmax_fraction) fail_msg("%s: argmax identical at only %.1f%%", bar->dtype, 100 * fraction);
    gpt2_close(g);
    free_fixture(f);
}

static void test_reduced_precision_quality(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    static const QualityBar bars[] = {
        {"f16", 0.005, 0.99},
        {"bf16", 0.05, 0.95}, /* 8 bits of mantissa: no better than q8_0 */
        {"q8_0", 0.05, 0.95},
    };
    for (size_t i = 0; i < sizeof bars / sizeof *bars; i++) check_quality(shared, &bars[i]);
}

/* FNV-1a over the bits of one row of logits. */
static uint64_t row_hash(const float *row, size_t n) {
    const unsigned char *b = (const unsigned char *)row;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n * sizeof *row; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Runs ids through t as a prompt of the first half, then one token at a
 * time, so that the products of many rows and those of one both run;
 * hashes[t] gets the bits of position t's logits. */
static void run_halves(Transformer *t, const int32_t *ids, size_t n, uint64_t *hashes) {
    const size_t n_vocab = t->model->config.n_vocab, half = n / 2;
    float *logits = malloc((half ? half : 1) * n_vocab * sizeof *logits);
    uint32_t *pos = malloc(n * sizeof *pos), *seq = calloc(n, sizeof *seq);
    bool *want = malloc(n * sizeof *want);
    assert_true(logits && pos && seq && want);
    for (size_t i = 0; i < n; i++) {
        pos[i] = (uint32_t)i;
        want[i] = true;
    }
    char err[256];
    gpt2_transformer_reset(t, 0);
    Batch prompt = {half, ids, pos, seq, want};
    if (half && !gpt2_transformer_forward(t, &prompt, logits, err, sizeof err)) fail_msg("%s", err);
    for (size_t i = 0; i < half; i++) hashes[i] = row_hash(logits + i * n_vocab, n_vocab);
    for (size_t i = half; i < n; i++) {
        Batch step = {1, ids + i, pos + i, seq, NULL};
        if (!gpt2_transformer_forward(t, &step, logits, err, sizeof err)) fail_msg("%s", err);
        hashes[i] = row_hash(logits, n_vocab);
    }
    free(logits);
    free(pos);
    free(seq);
    free(want);
}

/* f16, bf16 and q8_0 weights give the same bits on every kernel set and
 * thread count, in products of many rows and of one (the portable build
 * must give what the SIMD one does). */
static void test_reduced_precision_same_bits(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    static const char *const dtypes[] = {"f16", "bf16", "q8_0"};
    const char *kernels[4];
    size_t nk = available_kernels(kernels);
    for (size_t d = 0; d < sizeof dtypes / sizeof *dtypes; d++) {
        Fixture *f = make_fixture(shared, "small", dtypes[d]);
        Model m;
        char err[256];
        if (!gpt2_model_open(&m, f->model, err, sizeof err)) fail_msg("%s", err);
        const JsonValue *cases = member(f->expected.root, "cases");
        uint64_t *first[8] = {0};
        assert_true(gpt2_json_count(cases) <= 8);
        size_t compared = 0;
        for (size_t k = 0; k < nk; k++) {
            for (int threads = 1; threads <= 3; threads++) {
                Transformer t;
                if (!gpt2_transformer_build(&t, &m, gpt2_kernels_select(kernels[k]), 1, 128, threads, err, sizeof err))
                    fail_msg("%s", err);
                for (size_t i = 0; i < gpt2_json_count(cases); i++) {
                    size_t n;
                    int32_t *ids = ids_of(member(gpt2_json_at(cases, i), "ids"), &n);
                    if (n > 64) { /* the shorter cases hold every tile shape; the time goes elsewhere */
                        free(ids);
                        continue;
                    }
                    uint64_t *hashes = malloc(n * sizeof *hashes);
                    assert_non_null(hashes);
                    run_halves(&t, ids, n, hashes);
                    if (!first[i]) {
                        first[i] = hashes;
                    } else {
                        for (size_t p = 0; p < n; p++)
                            if (hashes[p] != first[i][p])
                                fail_msg("%s, %s: position %zu differs with %s kernels on %d threads", dtypes[d],
                                         gpt2_json_string(member(gpt2_json_at(cases, i), "name"), NULL), p, kernels[k],
                                         threads);
                        compared += n;
                        free(hashes);
                    }
                    free(ids);
                }
                gpt2_transformer_free(&t);
            }
        }
        printf("small %s: %zu positions compared across %zu kernel sets x 3 thread counts, all the same bits\n",
               dtypes[d], compared, nk);
        for (size_t i = 0; i < 8; i++) free(first[i]);
        gpt2_model_close(&m);
        free_fixture(f);
    }
}

/* Evaluates ids[from..n) of sequence seq in batches of up to 64 rows
 * (the transformer's max_rows), every row's logits into
 * logits[n - from][n_vocab]. */
static void forward_rows(Transformer *t, uint32_t seq, const int32_t *ids, size_t from, size_t n, float *logits) {
    uint32_t pos[64], seqs[64];
    bool want[64];
    assert_true(t->max_rows >= 64);
    for (size_t first = from; first < n; first += 64) {
        const size_t rows = n - first < 64 ? n - first : 64;
        for (size_t i = 0; i < rows; i++) {
            pos[i] = (uint32_t)(first + i);
            seqs[i] = seq;
            want[i] = true;
        }
        char err[256];
        Batch b = {rows, ids + first, pos, seqs, want};
        if (!gpt2_transformer_forward(t, &b, logits + (first - from) * t->model->config.n_vocab, err, sizeof err))
            fail_msg("%s", err);
    }
}

/* The tiny fixture's model and a transformer over it for n_seq
 * sequences, 64 rows a call, on 2 threads. */
typedef struct {
    Fixture *f;
    Model m;
    Transformer t;
} TinyEngine;

static void open_tiny_engine(TinyEngine *e, const char *shared, size_t n_seq) {
    char err[256];
    e->f = make_fixture(shared, "tiny", "f32");
    if (!gpt2_model_open(&e->m, e->f->model, err, sizeof err)) fail_msg("%s", err);
    if (!gpt2_transformer_build(&e->t, &e->m, gpt2_kernels_select(NULL), n_seq, 64, 2, err, sizeof err))
        fail_msg("%s", err);
}

static void close_tiny_engine(TinyEngine *e) {
    gpt2_transformer_free(&e->t);
    gpt2_model_close(&e->m);
    free_fixture(e->f);
}

/* n made-up tokens into ids and, unless it is NULL, n other ones into
 * other. */
static void make_tokens(int32_t *ids, int32_t *other, size_t n, size_t n_vocab) {
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)((i * 7919 + 13) % n_vocab);
        if (other) other[i] = (int32_t)((i * 104729 + 5) % n_vocab);
    }
}

/* A sequence that starts from a copy of another's first k positions, then
 * evaluates the rest, gives the bits a whole evaluation gives: at every
 * cut, inside a 16-position key block and on its edge, on either side of
 * a KV_CHUNK, and from a source that went on past the cut with other
 * tokens. */
static void test_copied_prefix_same_bits(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    TinyEngine e;
    open_tiny_engine(&e, shared, 3);
    Transformer *t = &e.t;
    const size_t n = 150, n_vocab = e.m.config.n_vocab;
    assert_true(n <= e.m.config.n_ctx && n > 2 * KV_CHUNK);
    int32_t ids[150], other[150];
    make_tokens(ids, other, n, n_vocab);
    float *whole = malloc(n * n_vocab * sizeof *whole), *part = malloc(n * n_vocab * sizeof *part);
    assert_true(whole && part);
    forward_rows(t, 0, ids, 0, n, whole);
    assert_int_equal(gpt2_transformer_match(t, 0, ids, n), n);
    static const size_t cuts[] = {1, 15, 16, 17, 21, 32, 39, 63, 64, 65, 100, 128, 129, 149};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
        const size_t k = cuts[c];
        /* The source holds ids[0..k) and then other tokens. */
        int32_t src[150];
        memcpy(src, ids, k * sizeof *src);
        memcpy(src + k, other + k, (n - k) * sizeof *src);
        gpt2_transformer_reset(t, 1);
        forward_rows(t, 1, src, 0, n, part);
        assert_int_equal(gpt2_transformer_match(t, 1, ids, n), k);
        assert_false(gpt2_transformer_copy_prefix(t, 2, 1, (uint32_t)n + 1)); /* more than it holds */
        assert_true(gpt2_transformer_copy_prefix(t, 2, 1, (uint32_t)k));
        assert_int_equal(t->caches[2].len, k);
        assert_int_equal(gpt2_transformer_match(t, 2, ids, n), k);
        forward_rows(t, 2, ids, k, n, part);
        if (memcmp(part, whole + k * n_vocab, (n - k) * n_vocab * sizeof *part) != 0)
            fail_msg("from a copy of %zu positions, the logits differ from a whole evaluation", k);
        /* A copy onto itself keeps the prefix and forgets the rest. */
        assert_true(gpt2_transformer_copy_prefix(t, 1, 1, (uint32_t)k));
        forward_rows(t, 1, ids, k, n, part);
        assert_memory_equal(part, whole + k * n_vocab, (n - k) * n_vocab * sizeof *part);
    }
    free(whole);
    free(part);
    close_tiny_engine(&e);
}

/* Copied prefixes are borrowed in whole 16-position blocks from the
 * sequence that holds them (transformer.h).  Whatever then overwrites the
 * lender - a reset, a rewind, a copy into it, its own rows - leaves each
 * borrower (and a borrower's borrower) with the bits a whole evaluation
 * gives. */
static void test_borrowed_prefix_outlives_its_lender(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    TinyEngine e;
    open_tiny_engine(&e, shared, 4);
    Transformer *t = &e.t;
    const size_t n = 150, k = 97, n_vocab = e.m.config.n_vocab; /* borrowed: 96 positions, past a KV_CHUNK */
    assert_true(n <= e.m.config.n_ctx && k > KV_CHUNK + 16);
    int32_t ids[150], other[150];
    make_tokens(ids, other, n, n_vocab);
    float *whole = malloc(n * n_vocab * sizeof *whole), *part = malloc(n * n_vocab * sizeof *part);
    assert_true(whole && part);
    forward_rows(t, 0, ids, 0, n, whole);
    for (int mode = 0; mode < 5; mode++) {
        gpt2_transformer_reset(t, 0);
        forward_rows(t, 0, ids, 0, n, part);
        assert_true(gpt2_transformer_copy_prefix(t, 1, 0, (uint32_t)k));
        assert_true(gpt2_transformer_copy_prefix(t, 2, 1, (uint32_t)k)); /* from a borrower */
        /* Both borrow the six whole blocks from sequence 0. */
        assert_int_equal(t->caches[1].base_len, 96), assert_int_equal(t->caches[1].base, 0);
        assert_int_equal(t->caches[2].base_len, 96), assert_int_equal(t->caches[2].base, 0);
        switch (mode) {
        case 0: /* the lender starts afresh with other tokens */
            gpt2_transformer_reset(t, 0);
            forward_rows(t, 0, other, 0, n, part);
            break;
        case 1: /* the lender rewinds to position 5 and goes on differently */
            assert_true(gpt2_transformer_copy_prefix(t, 0, 0, 5));
            forward_rows(t, 0, other, 5, n, part);
            break;
        case 2: /* another sequence's prefix is copied into the lender */
            gpt2_transformer_reset(t, 3);
            forward_rows(t, 3, other, 0, n, part);
            assert_true(gpt2_transformer_copy_prefix(t, 0, 3, 70));
            forward_rows(t, 0, ids, 70, n, part);
            break;
        case 3: /* a borrower takes its own copy first (the prompt cache's writer does) */
            gpt2_transformer_own(t, 2);
            assert_int_equal(t->caches[2].base_len, 0);
            gpt2_transformer_reset(t, 0);
            forward_rows(t, 0, other, 0, n, part);
            break;
        default: /* the lender only goes on past the prefix: nothing is copied */
            assert_true(gpt2_transformer_copy_prefix(t, 0, 0, (uint32_t)k));
            forward_rows(t, 0, other, k, n, part);
            assert_int_equal(t->caches[1].base_len, 96);
            break;
        }
        for (uint32_t seq = 1; seq <= 2; seq++) {
            forward_rows(t, seq, ids, k, n, part);
            if (memcmp(part, whole + k * n_vocab, (n - k) * n_vocab * sizeof *part) != 0)
                fail_msg("mode %d: sequence %u's logits differ from a whole evaluation", mode, seq);
        }
    }
    free(whole);
    free(part);
    close_tiny_engine(&e);
}

/* The attention weights an inspection reports are recomputed from the
 * cached keys (inspect.c).  Past the first chunks of the cache they must
 * still be the softmax of the last query against the keys the pass made:
 * those are taken here from the pass itself, one position at a time (the
 * last layer's row of state.qkv after each step), so that the check does
 * not depend on where the cache keeps them. */
static void test_inspected_attention_past_a_chunk(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    TinyEngine e;
    open_tiny_engine(&e, shared, 1);
    Transformer *t = &e.t;
    char err[256];
    const ModelConfig *c = &e.m.config;
    const size_t n = 150, C = c->n_embd, H = c->n_head, hd = C / H, L = c->n_layer;
    assert_true(n <= c->n_ctx && n > 2 * KV_CHUNK);
    int32_t ids[150];
    make_tokens(ids, NULL, n, c->n_vocab);
    float *keys = malloc(n * C * sizeof *keys), *query = malloc(C * sizeof *query);
    float *logits = malloc(c->n_vocab * sizeof *logits);
    assert_true(keys && query && logits);
    for (size_t p = 0; p < n; p++) {
        forward_rows(t, 0, ids, p, p + 1, logits);
        memcpy(keys + p * C, t->state.qkv + C, C * sizeof *keys);
    }
    memcpy(query, t->state.qkv, C * sizeof *query);
    Gpt2Inspection x;
    const Gpt2InspectOptions o = {0};
    if (!gpt2_inspect_run(t, ids, n, &o, &x, err, sizeof err)) fail_msg("%s", err);
    double w[150];
    for (size_t h = 0; h < H; h++) {
        double max = -INFINITY, sum = 0;
        for (size_t s = 0; s < n; s++) {
            double dot = 0;
            for (size_t d = 0; d < hd; d++) dot += (double)query[h * hd + d] * keys[s * C + h * hd + d];
            w[s] = dot / sqrt((double)hd);
            if (w[s] > max) max = w[s];
        }
        for (size_t s = 0; s < n; s++) sum += w[s] = exp(w[s] - max);
        for (size_t s = 0; s < n; s++) {
            const double got = x.attention_last[((L - 1) * H + h) * n + s];
            if (!(fabs(got - w[s] / sum) <= 1e-6))
                fail_msg("head %zu, key %zu: inspected weight %.9g, expected %.9g", h, s, got, w[s] / sum);
        }
    }
    gpt2_inspect_free(&x);
    free(keys);
    free(query);
    free(logits);
    close_tiny_engine(&e);
}

/* Checks that every matrix-product tile gives each row what a product of
 * that row alone gives, to the bit, on every kernel set and however the
 * panels are split between threads: 1 to max_x input rows against each of
 * the dtypes, with each epilogue, on a rows x cols matrix.  Some q8_0
 * quants are -128, which a GGUF file may hold and packing never writes.
 * Returns the number of (dtype, epilogue, kernel set, rows) cases. */
#define MAX_WIDEN_PANELS 4 /* the most KernelSet.widen_panels of any set */
static size_t check_tiles_same_bits(const DType *dtypes, size_t n_dtypes, size_t rows, size_t cols, size_t max_x) {
    static const Epilogue epilogues[] = {EPI_STORE, EPI_GELU, EPI_ADD};
    const char *names[4];
    const size_t nk = available_kernels(names);
    float *w = malloc(rows * cols * sizeof *w), *bias = malloc(rows * sizeof *bias);
    float *x = malloc(max_x * cols * sizeof *x), *xt = malloc(16 * cols * sizeof *xt);
    float *y = malloc(max_x * rows * sizeof *y);
    float *want = malloc(max_x * rows * sizeof *want);
    uint8_t *xq = malloc(max_x * Q8_TERMS * cols);
    float *xd = malloc(max_x * (cols / Q8_BLOCK) * sizeof *xd);
    float *widened = malloc(MAX_WIDEN_PANELS * PANEL_ROWS * cols * sizeof *widened);
    assert_true(w && bias && x && xt && y && want && xq && xd && widened);
    uint32_t seed = 12345;
    for (size_t i = 0; i < rows * cols; i++) {
        seed = seed * 1664525u + 1013904223u;
        w[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.2f;
    }
    for (size_t i = 0; i < rows; i++) bias[i] = 0.01f * (float)(i % 7) - 0.03f;
    for (size_t i = 0; i < max_x * cols; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f * 4.0f - 2.0f;
    }
    size_t checked = 0;
    for (size_t d = 0; d < n_dtypes; d++) {
        const uint64_t bytes = gpt2_panel_matrix_bytes(dtypes[d], rows, cols);
        void *panels = malloc(bytes);
        assert_non_null(panels);
        gpt2_panel_pack(dtypes[d], w, rows, cols, panels);
        if (dtypes[d] == DTYPE_Q8_0)
            for (size_t r = 0; r < rows; r += 7) { /* a quant of -128 in every seventh row */
                const size_t c = r * 5 % cols, block = r / PANEL_ROWS * (cols / Q8_BLOCK) + c / Q8_BLOCK;
                ((uint8_t *)panels)[block * Q8_BLOCK_BYTES + q8_quant_offset(r % PANEL_ROWS, c % Q8_BLOCK)] = 0x80;
            }
        const Matrix m = {dtypes[d], rows, cols, panels};
        const size_t n_panels = (rows + PANEL_ROWS - 1) / PANEL_ROWS;
        for (size_t e = 0; e < sizeof epilogues / sizeof *epilogues; e++) {
            /* The reference: the portable set, one row at a time. */
            const KernelSet *portable = gpt2_kernels_select("portable");
            for (size_t r = 0; r < max_x; r++) {
                for (size_t i = 0; i < rows; i++) want[r * rows + i] = 0.5f * (float)i;
                MatmulArgs a = {&m,           bias, x + r * cols, cols, want + r * rows,    rows, 1,
                                epilogues[e], NULL, NULL,         NULL, STREAM_NONTEMPORAL, NULL, 0};
                if (dtypes[d] == DTYPE_Q8_0) {
                    portable->quantize(xq, xd, x + r * cols, cols);
                    a.xq = xq;
                    a.xd = xd;
                }
                portable->matmul(&a, 0, n_panels);
            }
            for (size_t k = 0; k < nk; k++) {
                const KernelSet *ks = gpt2_kernels_select(names[k]);
                for (size_t n_x = 1; n_x <= max_x; n_x++) {
                    for (size_t i = 0; i < n_x * rows; i++) y[i] = 0.5f * (float)(i % rows);
                    /* Every prefetch hint, by turns: a hint never changes a result. */
                    MatmulArgs a = {
                        &m,   bias, x, cols, y, rows, n_x, epilogues[e], NULL, NULL, NULL, (StreamHint)(n_x % 3),
                        NULL, 0};
                    /* With the scratch or without it, by turns: from
                     * widen_rows rows on, 16-bit weights are widened into
                     * it first, and without it converted tile by tile; a
                     * set with q8_scratch takes q8_0 there at any number
                     * of rows (one row with it, and without it). */
                    assert_true(ks->widen_panels <= MAX_WIDEN_PANELS);
                    if ((n_x + (dtypes[d] == DTYPE_Q8_0 && e % 2 == 0)) % 3 != 1) {
                        a.widened = widened;
                        a.widened_cols = cols;
                    }
                    if (dtypes[d] == DTYPE_Q8_0) {
                        for (size_t r = 0; r < n_x; r++)
                            ks->quantize(xq + r * Q8_TERMS * cols, xd + r * (cols / Q8_BLOCK), x + r * cols, cols);
                        a.xq = xq;
                        a.xd = xd;
                    } else if (n_x >= 2 && n_x <= ks->wide_rows) {
                        ks->transpose(xt, x, cols, n_x, 0, cols);
                        a.xt = xt;
                    }
                    /* Chunks as the thread pool cuts them: whole tiles, then a short one. */
                    const size_t chunk = ks->tile_panels * (1 + n_x % 3);
                    for (size_t p = 0; p < n_panels; p += chunk)
                        ks->matmul(&a, p, p + chunk < n_panels ? p + chunk : n_panels);
                    if (memcmp(y, want, n_x * rows * sizeof *y) != 0)
                        fail_msg("%s weights, epilogue %d, %zu rows: the %s kernels differ from one row at a time",
                                 gpt2_dtype_name(dtypes[d]), (int)epilogues[e], n_x, names[k]);
                    checked++;
                }
            }
        }
        free(panels);
    }
    free(w);
    free(bias);
    free(x);
    free(xt);
    free(y);
    free(want);
    free(xq);
    free(xd);
    free(widened);
    return checked;
}

/* The tiles on 1 to 40 input rows (the one-row, wide and many-row tiles,
 * each with every number of rows left over) against every dtype, on a
 * matrix whose last panel is partial. */
static void test_matmul_tiles_same_bits(void **state) {
    (void)state;
    static const DType dtypes[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q8_0};
    size_t checked = check_tiles_same_bits(dtypes, sizeof dtypes / sizeof *dtypes, 200, 96, 40);
    printf("matrix products: %zu shapes x dtypes x epilogues x kernel sets, all the same bits as one row at a time\n",
           checked);
}

/* q8_0 rows longer than a many-row tile's bias table (Q8_TABLE_BLOCKS,
 * 256 blocks: a row of 8192 values) sum the bias in every tile instead;
 * GPT-2's shapes never get there, a model file may.  1 to 9 input rows
 * (the tiles of 1, 2 and 3 rows). */
static void test_matmul_q8_long_rows_same_bits(void **state) {
    (void)state;
    static const DType q8[] = {DTYPE_Q8_0};
    const char *names[4];
    assert_int_equal(check_tiles_same_bits(q8, 1, 32, 257 * Q8_BLOCK, 9), 3 * 9 * available_kernels(names));
}

/* q8_0 input quantization (kernels.h), on every kernel set: each value
 * becomes the integer nearest v * s, s = Q8_QMAX / amax, within half a
 * unit, written as three digits in -127..127 (stored plus 128) in
 * balanced base 255, and each block's unit is amax / Q8_QMAX.  Blocks:
 * random values, ones reaching +-amax, values at half units, all zeros
 * and one below 2^-64 (unit 0, integers 0); one holding a NaN must still
 * give digits in range, the same on every set. */
static void test_quantize_digits(void **state) {
    (void)state;
    enum { BLOCKS = 64, N = BLOCKS * Q8_BLOCK };
    float *x = malloc(N * sizeof *x);
    uint8_t *xq = malloc(Q8_TERMS * N), *first = malloc(Q8_TERMS * N);
    float xd[BLOCKS], first_d[BLOCKS];
    assert_true(x && xq && first);
    uint32_t seed = 777;
    for (size_t i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        const float scale = (float)(1u << (i / Q8_BLOCK % 24)) / 4096.0f; /* blocks from 2^-12 to 2^11 */
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * scale;
    }
    for (size_t i = 0; i < Q8_BLOCK; i++) x[Q8_BLOCK * 40 + i] = i % 2 ? 3.0f : -3.0f;
    for (size_t i = 0; i < Q8_BLOCK; i++) /* k + 1/2 units of 1/Q8_QMAX */
        x[Q8_BLOCK * 41 + i] = i == 0 ? 1.0f : (float)(((double)(2 * i * 40503 + 1)) / (2.0 * Q8_QMAX));
    for (size_t i = 0; i < Q8_BLOCK; i++) x[Q8_BLOCK * 42 + i] = 0.0f;
    for (size_t i = 0; i < Q8_BLOCK; i++) x[Q8_BLOCK * 43 + i] = i == 5 ? 0x1p-65f : 0.0f;
    x[Q8_BLOCK * 44 + 7] = NAN;
    const char *names[4];
    const size_t nk = available_kernels(names);
    for (size_t k = 0; k < nk; k++) {
        gpt2_kernels_select(names[k])->quantize(xq, xd, x, N);
        for (size_t b = 0; b < BLOCKS; b++) {
            float amax = 0;
            bool nan = false;
            for (size_t i = 0; i < Q8_BLOCK; i++) {
                const float v = x[b * Q8_BLOCK + i];
                nan = nan || isnan(v);
                if (fabsf(v) > amax) amax = fabsf(v);
                for (size_t t = 0; t < Q8_TERMS; t++)
                    if (xq[t * N + b * Q8_BLOCK + i] < 1)
                        fail_msg("%s: block %zu value %zu: digit -128", names[k], b, i);
            }
            if (nan) continue; /* its digits were checked above; its value is garbage */
            const bool zero = amax < 0x1p-64f;
            if (xd[b] != (zero ? 0.0f : amax / (float)Q8_QMAX))
                fail_msg("%s: block %zu: unit %g for amax %g", names[k], b, (double)xd[b], (double)amax);
            const double s = zero ? 0.0 : (double)((float)Q8_QMAX / amax);
            for (size_t i = 0; i < Q8_BLOCK; i++) {
                const size_t j = b * Q8_BLOCK + i;
                long q[Q8_TERMS];
                for (size_t t = 0; t < Q8_TERMS; t++) q[t] = (long)xq[t * N + j] - 128;
                const long whole = 255 * 255 * q[0] + 255 * q[1] + q[2];
                if (zero) {
                    if (whole != 0) fail_msg("%s: block %zu: %ld in a block of unit 0", names[k], b, whole);
                    continue;
                }
                const double exact = (double)x[j] * s; /* float times float: exact in double */
                if (fabs((double)whole - exact) > 0.5 + 1e-6 || labs(whole) > Q8_QMAX)
                    fail_msg("%s: block %zu value %zu: %ld for %.17g", names[k], b, i, whole, exact);
            }
        }
        if (k == 0) {
            memcpy(first, xq, Q8_TERMS * N);
            memcpy(first_d, xd, sizeof xd);
        } else if (memcmp(first, xq, Q8_TERMS * N) != 0 || memcmp(first_d, xd, sizeof xd) != 0) {
            fail_msg("%s quantizes differently from %s", names[k], names[0]);
        }
    }
    /* The block reaching +-amax holds +-Q8_QMAX: digits 127, 0, 0. */
    assert_int_equal(xq[Q8_BLOCK * 40 + 1], 128 + 127);
    assert_int_equal(xq[N + Q8_BLOCK * 40 + 1], 128);
    assert_int_equal(xq[2 * N + Q8_BLOCK * 40 + 1], 128);
    printf("q8_0 quantization: %d blocks on %zu kernel sets, every value within half a unit\n", BLOCKS, nk);
    free(x);
    free(xq);
    free(first);
}

/* GPT2_PREFETCH's names force one hint everywhere and name it back; this
 * CPU's choice is one of the nine pairs; anything else is refused. */
static void test_stream_hints(void **state) {
    (void)state;
    static const char *const names[] = {"nta", "l2", "none"};
    for (int i = 0; i < 3; i++) {
        StreamHints h = {STREAM_L2, STREAM_NONTEMPORAL};
        assert_true(gpt2_kernels_stream_hints(names[i], &h));
        assert_int_equal(h.common, i);
        assert_int_equal(h.one_row, i);
        assert_string_equal(gpt2_kernels_stream_hints_name(h), names[i]);
    }
    StreamHints h;
    assert_false(gpt2_kernels_stream_hints("t0", &h));
    assert_false(gpt2_kernels_stream_hints("", &h));
    assert_true(gpt2_kernels_stream_hints(NULL, &h));
    assert_in_range(h.common, STREAM_NONTEMPORAL, STREAM_NONE);
    assert_in_range(h.one_row, STREAM_NONTEMPORAL, STREAM_NONE);
    h = (StreamHints){STREAM_NONTEMPORAL, STREAM_NONE};
    assert_string_equal(gpt2_kernels_stream_hints_name(h), "nta, none for one row");
    h = (StreamHints){STREAM_L2, STREAM_NONTEMPORAL};
    assert_string_equal(gpt2_kernels_stream_hints_name(h), "l2, nta for one row");
}

#ifdef __linux__
/* Limited to one CPU (as taskset or a container's cpuset limits it), a
 * model opened with no thread count runs one thread, not one per CPU of
 * the machine. */
static void test_default_threads_follow_affinity(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    Fixture *f = make_fixture(shared, "tiny", "f32");
    cpu_set_t saved, one;
    assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
    int cpu = 0;
    while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &saved)) cpu++;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    Gpt2 *g = open_model(f->model, NULL, 0);
    const int n = gpt2_info(g).n_threads;
    gpt2_close(g);
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    assert_int_equal(n, 1);
    free_fixture(f);
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_matches_reference),
        cmocka_unit_test(test_small_matches_reference),
        cmocka_unit_test(test_reduced_precision_quality),
        cmocka_unit_test(test_reduced_precision_same_bits),
        cmocka_unit_test(test_copied_prefix_same_bits),
        cmocka_unit_test(test_borrowed_prefix_outlives_its_lender),
        cmocka_unit_test(test_inspected_attention_past_a_chunk),
        cmocka_unit_test(test_matmul_tiles_same_bits),
        cmocka_unit_test(test_matmul_q8_long_rows_same_bits),
        cmocka_unit_test(test_quantize_digits),
        cmocka_unit_test(test_stream_hints),
#ifdef __linux__
        cmocka_unit_test(test_default_threads_follow_affinity),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
