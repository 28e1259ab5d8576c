/* test_forward_shapes.c - the engine on GPT-2s of shapes no fixture has.
 *
 * For each shape below the test writes a random checkpoint in the Hugging
 * Face layout (config.json and model.safetensors, Conv1D weights [in, out]),
 * converts it with gpt2-convert, and compares the engine's logits at every
 * position with a plain float64 forward pass written here from GPT-2's
 * definition.  Greedy decoding through the KV cache must match greedy
 * decoding by full recomputation.  The shapes stress what the fixtures do
 * not: head sizes of 4 and 10, 25 heads (as GPT-2 XL), widths that do not
 * fill the kernels' 16-row panels, several layers, every thread count.
 * Every kernel set the CPU runs, at 1 to 3 threads, must give the same
 * bits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "strbuf.h"
#include "test_util.h"

typedef struct {
    int n_layer, n_head, n_embd, n_ctx;
} Shape;

static const Shape shapes[] = {
    {3, 4, 40, 37},   /* head size 10; 3C = 120 and 4C = 160 leave partial panels */
    {2, 25, 100, 20}, /* 25 heads of 4, as GPT-2 XL has 25 heads (of 64) */
    {1, 1, 64, 70},   /* one head of 64, GPT-2's head size */
};

enum { VOCAB = 50257 };

/* ---- a random checkpoint ------------------------------------------------------- */

typedef struct {
    const char *name;
    int rows, cols; /* cols 0: a vector of rows values */
    double *w;      /* rows * max(cols, 1) values, row-major, as stored */
} Tensor;

typedef struct {
    Shape s;
    Tensor *t;
    size_t n;
    char *names; /* storage for the names */
} Checkpoint;

static uint64_t rng_state;
static double uniform(void) { /* in [-1, 1), reproducible */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 52) - 1.0;
}

/* Values are rounded to float so the engine and the reference start from
 * the same numbers.  The spreads make logits spread by about 10, so that
 * greedy steps are rarely too close to call. */
static void fill(Tensor *t, double center, double spread) {
    size_t n = (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
    t->w = malloc(n * sizeof *t->w);
    assert_non_null(t->w);
    for (size_t i = 0; i < n; i++) t->w[i] = (double)(float)(center + spread * uniform());
}

static Tensor *tensor(Checkpoint *c, const char *name) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

static void make_checkpoint(Checkpoint *c, Shape s) {
    const int C = s.n_embd;
    c->s = s;
    c->n = 0;
    c->t = calloc(4 + 12 * (size_t)s.n_layer, sizeof *c->t);
    c->names = calloc(4 + 12 * (size_t)s.n_layer, 48);
    assert_true(c->t && c->names);
    struct {
        const char *name;
        int rows, cols;
        double center, spread;
    } global[] =
        {
            {"wte.weight", VOCAB, C, 0, 2.0},
            {"wpe.weight", s.n_ctx, C, 0, 0.3},
            {"ln_f.weight", C, 0, 0, 1.5},
            {"ln_f.bias", C, 0, 0, 0.3},
        },
      layer[] = {
          {"ln_1.weight", C, 0, 1, 0.3},
          {"ln_1.bias", C, 0, 0, 0.2},
          {"attn.c_attn.weight", C, 3 * C, 0, 0.6},
          {"attn.c_attn.bias", 3 * C, 0, 0, 0.3},
          {"attn.c_proj.weight", C, C, 0, 0.3},
          {"attn.c_proj.bias", C, 0, 0, 0.2},
          {"ln_2.weight", C, 0, 1, 0.3},
          {"ln_2.bias", C, 0, 0, 0.2},
          {"mlp.c_fc.weight", C, 4 * C, 0, 0.4},
          {"mlp.c_fc.bias", 4 * C, 0, 0, 0.5},
          {"mlp.c_proj.weight", 4 * C, C, 0, 0.3},
          {"mlp.c_proj.bias", C, 0, 0, 0.2},
      };
    for (size_t i = 0; i < 4; i++) {
        Tensor *t = &c->t[c->n];
        char *name = c->names + 48 * c->n++;
        snprintf(name, 48, "%s", global[i].name);
        *t = (Tensor){name, global[i].rows, global[i].cols, NULL};
        fill(t, global[i].center, global[i].spread);
    }
    for (int l = 0; l < s.n_layer; l++) {
        for (size_t i = 0; i < 12; i++) {
            Tensor *t = &c->t[c->n];
            char *name = c->names + 48 * c->n++;
            snprintf(name, 48, "h.%d.%s", l, layer[i].name);
            *t = (Tensor){name, layer[i].rows, layer[i].cols, NULL};
            fill(t, layer[i].center, layer[i].spread);
        }
    }
}

static void free_checkpoint(Checkpoint *c) {
    for (size_t i = 0; i < c->n; i++) free(c->t[i].w);
    free(c->t);
    free(c->names);
}

/* Writes config.json and model.safetensors (F32) into dir. */
static void write_checkpoint(const Checkpoint *c, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"model_type\": \"gpt2\", \"activation_function\": \"gelu_new\", \"vocab_size\": %d, "
            "\"n_positions\": %d, \"n_ctx\": %d, \"n_embd\": %d, \"n_layer\": %d, \"n_head\": %d, "
            "\"layer_norm_epsilon\": 1e-05}\n",
            VOCAB, c->s.n_ctx, c->s.n_ctx, c->s.n_embd, c->s.n_layer, c->s.n_head);
    assert_int_equal(fclose(f), 0);

    StrBuf header = {0};
    uint64_t offset = 0;
    assert_true(gpt2_strbuf_append_str(&header, "{"));
    for (size_t i = 0; i < c->n; i++) {
        const Tensor *t = &c->t[i];
        uint64_t bytes = (uint64_t)t->rows * (uint64_t)(t->cols ? t->cols : 1) * 4;
        if (t->cols)
            assert_true(gpt2_strbuf_printf(
                &header, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}", i ? "," : "",
                t->name, t->rows, t->cols, (unsigned long long)offset, (unsigned long long)(offset + bytes)));
        else
            assert_true(gpt2_strbuf_printf(
                &header, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%llu,%llu]}", i ? "," : "",
                t->name, t->rows, (unsigned long long)offset, (unsigned long long)(offset + bytes)));
        offset += bytes;
    }
    assert_true(gpt2_strbuf_append_str(&header, "}"));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t len[8];
    for (int k = 0; k < 8; k++) len[k] = (uint8_t)((uint64_t)header.len >> (8 * k));
    assert_int_equal(fwrite(len, 1, 8, f), 8);
    assert_int_equal(fwrite(header.data, 1, header.len, f), header.len);
    for (size_t i = 0; i < c->n; i++) {
        const Tensor *t = &c->t[i];
        size_t n = (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
        for (size_t k = 0; k < n; k++) {
            float v = (float)t->w[k];
            assert_int_equal(fwrite(&v, 4, 1, f), 1);
        }
    }
    assert_int_equal(fclose(f), 0);
    gpt2_strbuf_free(&header);
}

/* ---- the float64 reference ---------------------------------------------------------- */

static void layernorm(double *out, const double *x, const Tensor *w, const Tensor *b, int n) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    for (int i = 0; i < n; i++) out[i] = (x[i] - mean) / sqrt(var + 1e-5) * w->w[i] + b->w[i];
}

/* y[out] = x[in] @ W[in][out] + b */
static void linear(double *y, const double *x, const Tensor *w, const Tensor *b) {
    for (int o = 0; o < w->cols; o++) {
        double s = b->w[o];
        for (int i = 0; i < w->rows; i++) s += x[i] * w->w[(size_t)i * w->cols + o];
        y[o] = s;
    }
}

static double gelu(double u) { return 0.5 * u * (1 + tanh(sqrt(2 / M_PI) * (u + 0.044715 * u * u * u))); }

/* The logits of ids[0..T): of every position, logits[T][VOCAB], or with
 * last_only of the last, logits[VOCAB]. */
static void reference_forward(Checkpoint *c, const int32_t *ids, int T, bool last_only, double *logits) {
    const int C = c->s.n_embd, H = c->s.n_head, hd = C / H;
    double *x = calloc((size_t)T * C, sizeof *x), *a = malloc((size_t)T * C * sizeof *a);
    double *qkv = malloc((size_t)T * 3 * C * sizeof *qkv), *att = malloc((size_t)T * C * sizeof *att);
    double *h = malloc((size_t)T * 4 * C * sizeof *h), *tmp = malloc((size_t)C * sizeof *tmp);
    const Tensor *wte = tensor(c, "wte.weight"), *wpe = tensor(c, "wpe.weight");
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) x[t * C + i] = wte->w[(size_t)ids[t] * C + i] + wpe->w[t * C + i];
    char name[64];
#define W(suffix) (snprintf(name, sizeof name, "h.%d.%s", l, suffix), tensor(c, name))
    for (int l = 0; l < c->s.n_layer; l++) {
        for (int t = 0; t < T; t++) layernorm(a + t * C, x + t * C, W("ln_1.weight"), W("ln_1.bias"), C);
        for (int t = 0; t < T; t++) linear(qkv + t * 3 * C, a + t * C, W("attn.c_attn.weight"), W("attn.c_attn.bias"));
        for (int t = 0; t < T; t++) {
            for (int hh = 0; hh < H; hh++) {
                const double *q = qkv + t * 3 * C + hh * hd;
                double p[256], max = -INFINITY, sum = 0;
                for (int s = 0; s <= t; s++) {
                    const double *k = qkv + s * 3 * C + C + hh * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += q[i] * k[i];
                    p[s] = d / sqrt((double)hd);
                    if (p[s] > max) max = p[s];
                }
                for (int s = 0; s <= t; s++) sum += p[s] = exp(p[s] - max);
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int s = 0; s <= t; s++) o += p[s] / sum * qkv[s * 3 * C + 2 * C + hh * hd + i];
                    att[t * C + hh * hd + i] = o;
                }
            }
        }
        for (int t = 0; t < T; t++) {
            linear(tmp, att + t * C, W("attn.c_proj.weight"), W("attn.c_proj.bias"));
            for (int i = 0; i < C; i++) x[t * C + i] += tmp[i];
        }
        for (int t = 0; t < T; t++) {
            layernorm(a + t * C, x + t * C, W("ln_2.weight"), W("ln_2.bias"), C);
            linear(h + t * 4 * C, a + t * C, W("mlp.c_fc.weight"), W("mlp.c_fc.bias"));
            for (int i = 0; i < 4 * C; i++) h[t * 4 * C + i] = gelu(h[t * 4 * C + i]);
            linear(tmp, h + t * 4 * C, W("mlp.c_proj.weight"), W("mlp.c_proj.bias"));
            for (int i = 0; i < C; i++) x[t * C + i] += tmp[i];
        }
    }
#undef W
    for (int t = last_only ? T - 1 : 0; t < T; t++) {
        layernorm(a + t * C, x + t * C, tensor(c, "ln_f.weight"), tensor(c, "ln_f.bias"), C);
        double *row = logits + (last_only ? 0 : (size_t)t * VOCAB);
        for (int v = 0; v < VOCAB; v++) {
            double s = 0;
            for (int i = 0; i < C; i++) s += a[t * C + i] * wte->w[(size_t)v * C + i];
            row[v] = s;
        }
    }
    free(x), free(a), free(qkv), free(att), free(h), free(tmp);
}

/* ---- the test -------------------------------------------------------------------- */

static int argmax(const double *row, double *margin) {
    int best = 0, second = -1;
    for (int v = 1; v < VOCAB; v++) {
        if (row[v] > row[best]) second = best, best = v;
        else if (second < 0 || row[v] > row[second]) second = v;
    }
    *margin = row[best] - row[second];
    return best;
}

static void check_shape(const char *shared, Shape s) {
    char dir[4096], model[4200], err[512];
    test_mkdtemp(dir, sizeof dir);
    Checkpoint c;
    rng_state = (uint64_t)(s.n_layer * 1000003 + s.n_head * 1009 + s.n_embd);
    make_checkpoint(&c, s);
    write_checkpoint(&c, dir);
    snprintf(model, sizeof model, "%s/model.bin", dir);
    test_convert(dir, shared, "f32", model);

    const int T = s.n_ctx;
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 7919u + 13u * (unsigned)s.n_embd) % VOCAB);
    double *want = malloc((size_t)T * VOCAB * sizeof *want);
    float *got = malloc((size_t)T * VOCAB * sizeof *got);
    reference_forward(&c, ids, T, false, want);

    /* Greedy decoding by full recomputation, from 5 tokens until the
     * context is full or a step is too close to call. */
    const int start = 5, steps = T - start;
    int32_t *greedy = malloc((size_t)T * sizeof *greedy);
    double *row = malloc(VOCAB * sizeof *row);
    memcpy(greedy, ids, (size_t)start * sizeof *greedy);
    int decided = 0;
    for (; decided < steps; decided++) {
        reference_forward(&c, greedy, start + decided, true, row);
        double margin;
        greedy[start + decided] = argmax(row, &margin);
        if (margin < 1e-3) break;
    }

    float *first = malloc((size_t)T * VOCAB * sizeof *first);
    assert_non_null(first);
    for (int threads = 1; threads <= 3; threads++) {
        Gpt2Options o = {.n_threads = threads};
        Gpt2 *g = gpt2_open(model, &o, err, sizeof err);
        if (!g) fail_msg("%s", err);
        assert_true(gpt2_logits(g, ids, (size_t)T, got, err, sizeof err));
        if (threads == 1) memcpy(first, got, (size_t)T * VOCAB * sizeof *got);
        else if (memcmp(first, got, (size_t)T * VOCAB * sizeof *got) != 0)
            fail_msg("the logits on %d threads differ from those on 1", threads);
        double worst = 0;
        for (size_t i = 0; i < (size_t)T * VOCAB; i++) {
            double d = fabs(got[i] - want[i]);
            if (d > worst) worst = d;
        }
        printf("shape %dx%dx%dx%d, %d threads: worst logit error %.2g; %d greedy steps compared\n", s.n_layer, s.n_head,
               s.n_embd, s.n_ctx, threads, worst, decided);
        if (worst > 1e-3) fail_msg("logits differ from the float64 reference by %g", worst);

        /* The same greedy decoding through the KV cache. */
        Gpt2Completion comp = {.prompt = ids, .n_prompt = (size_t)start, .params = gpt2_default_params()};
        comp.params.n_predict = (uint32_t)steps;
        comp.params.sampling.temperature = 0;
        comp.params.ignore_eos = true;
        assert_true(gpt2_generate(g, &comp, 1, NULL, err, sizeof err));
        for (int k = 0; k < decided; k++)
            if (comp.tokens[k] != greedy[start + k])
                fail_msg("greedy step %d: %d, reference %d", k, comp.tokens[k], greedy[start + k]);
        gpt2_completion_free(&comp);
        gpt2_close(g);
    }
    assert_true(decided >= 10); /* enough steps were decisive to mean something */

    /* Every kernel set this CPU runs gives the same bits (kernels.h), the
     * heads of 64 dimensions (GPT-2's) included, which the fixtures lack,
     * with every prefetch hint. */
    static const char *const sets[] = {"portable", "avx2", "avxvnni", "avx512"};
    static const char *const hints[] = {"nta", "l2", "none"};
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        for (int threads = 1; threads <= 2; threads++) {
            Gpt2Options o = {
                .n_threads = threads, .kernels = sets[k], .prefetch = hints[(2 * k + (size_t)threads) % 3]};
            Gpt2 *g = gpt2_open(model, &o, err, sizeof err);
            if (!g) {
                if (strstr(err, "not available")) break; /* not this CPU's, or not in this build */
                fail_msg("%s", err);
            }
            assert_string_equal(gpt2_info(g).prefetch, o.prefetch);
            assert_true(gpt2_logits(g, ids, (size_t)T, got, err, sizeof err));
            if (memcmp(first, got, (size_t)T * VOCAB * sizeof *got) != 0)
                fail_msg("the %s kernels on %d threads (prefetch %s) give other logits than the default set", sets[k],
                         threads, o.prefetch);
            gpt2_close(g);
        }
    }
    free(first);
    free(greedy), free(row);
    free(ids), free(want), free(got);
    free_checkpoint(&c);
    test_rmtree(dir);
}

static void test_random_shapes_match_float64_reference(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) check_shape(shared, shapes[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_shapes_match_float64_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
