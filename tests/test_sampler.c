/* test_sampler.c - choosing the next token: greedy, temperature, top-k,
 * top-p, min-p, the logit bias, the penalties (repetition, presence,
 * frequency, no-repeat n-gram), damaged logits, and repeatability. */
#include <math.h>
#include <string.h>

#include "sampler.h"
#include "test_util.h"

enum { V = 1000 };

static Sampler make(float temp, uint32_t top_k, float top_p, float penalty, uint32_t last_n, uint64_t seed) {
    Gpt2Sampling p = {.temperature = temp,
                      .top_k = top_k,
                      .top_p = top_p,
                      .repeat_penalty = penalty,
                      .repeat_last_n = last_n,
                      .seed = seed};
    Sampler s;
    assert_true(gpt2_sampler_build(&s, &p, V));
    return s;
}

/* Logits falling with the id, so the likeliest tokens are 0, 1, 2, ... */
static void falling(float *logits) {
    for (int i = 0; i < V; i++) logits[i] = -0.01f * (float)i;
}

static int32_t draw(Sampler *s, const float *base, const int32_t *history, size_t n) {
    float logits[V];
    memcpy(logits, base, sizeof logits);
    SamplerHistory h = {history, n, NULL, 0};
    return gpt2_sampler_sample(s, logits, &h);
}

static void test_greedy_takes_the_first_maximum(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    logits[700] = 5, logits[300] = 5; /* a tie goes to the lower id */
    Sampler s = make(0, 40, 1, 1, 64, 1);
    assert_int_equal(draw(&s, logits, NULL, 0), 300);
    gpt2_sampler_free(&s);
}

static void test_top_k_and_top_p_limit_the_candidates(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    Sampler k = make(1, 5, 1, 1, 64, 7);
    Sampler p = make(1, 0, 0.05f, 1, 64, 7);
    bool seen_k[V] = {false};
    for (int i = 0; i < 3000; i++) {
        int32_t t = draw(&k, logits, NULL, 0);
        assert_true(t >= 0 && t < 5);
        seen_k[t] = true;
        /* Nearly flat logits: about 5% of the mass is the first few ids;
         * top-p must stop at the smallest prefix reaching 0.05. */
        int32_t u = draw(&p, logits, NULL, 0);
        double mass = 0, total = 0;
        for (int v = 0; v < V; v++) total += exp(logits[v] - logits[0]);
        int limit = 0;
        while (mass < 0.05 * total) mass += exp(logits[limit++] - logits[0]);
        assert_true(u < limit);
    }
    for (int t = 0; t < 5; t++) assert_true(seen_k[t]);
    gpt2_sampler_free(&k);
    gpt2_sampler_free(&p);
}

/* With top-k off and temperature 1, token frequencies follow the softmax;
 * temperature 0.5 sharpens it as p^2. */
static void test_frequencies_follow_the_softmax(void **state) {
    (void)state;
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = -1000;
    logits[10] = 0, logits[20] = (float)log(2.0), logits[30] = (float)log(3.0);
    const int draws = 60000;
    const float temps[] = {1.0f, 0.5f};
    for (int t = 0; t < 2; t++) {
        Sampler s = make(temps[t], 0, 1, 1, 64, 11);
        int count[3] = {0};
        for (int i = 0; i < draws; i++) {
            int32_t id = draw(&s, logits, NULL, 0);
            assert_true(id == 10 || id == 20 || id == 30);
            count[id / 10 - 1]++;
        }
        double w[3] = {1, 2, 3}, z = 0;
        for (int k = 0; k < 3; k++) z += w[k] = pow(w[k], 1.0 / temps[t]);
        for (int k = 0; k < 3; k++) assert_true(fabs((double)count[k] / draws - w[k] / z) < 0.01);
        gpt2_sampler_free(&s);
    }
}

static void test_repeat_penalty(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    logits[0] = 2.0f, logits[1] = 1.9f, logits[2] = -0.5f;
    int32_t history[] = {0, 0, 0, 2};
    Sampler off = make(0, 0, 1, 1, 64, 1);
    Sampler on = make(0, 0, 1, 1.2f, 64, 1);
    Sampler short_memory = make(0, 0, 1, 1.2f, 1, 1); /* sees only the last token, 2 */
    assert_int_equal(draw(&off, logits, history, 4), 0);
    assert_int_equal(draw(&on, logits, history, 4), 1); /* 2.0 / 1.2 < 1.9 */
    assert_int_equal(draw(&short_memory, logits, history, 4), 0);
    /* A negative logit is multiplied, pushing it further down, once however
     * often the token repeats. */
    float l[V];
    memcpy(l, logits, sizeof l);
    SamplerHistory h = {history, 4, NULL, 0};
    gpt2_sampler_sample(&on, l, &h);
    assert_true(fabsf(l[2] - (-0.5f * 1.2f)) < 1e-6f);
    assert_true(fabsf(l[0] - 2.0f / 1.2f) < 1e-6f);
    gpt2_sampler_free(&off), gpt2_sampler_free(&on), gpt2_sampler_free(&short_memory);
}

static void test_same_seed_same_tokens(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    Sampler a = make(1, 0, 0.9f, 1, 64, 123), b = make(1, 0, 0.9f, 1, 64, 123), c = make(1, 0, 0.9f, 1, 64, 124);
    bool differs = false;
    for (int i = 0; i < 200; i++) {
        int32_t x = draw(&a, logits, NULL, 0), y = draw(&b, logits, NULL, 0), z = draw(&c, logits, NULL, 0);
        assert_int_equal(x, y);
        differs |= x != z;
    }
    assert_true(differs);
    gpt2_sampler_free(&a), gpt2_sampler_free(&b), gpt2_sampler_free(&c);
}

static Sampler make_with(Gpt2Sampling p) {
    Sampler s;
    assert_true(gpt2_sampler_build(&s, &p, V));
    return s;
}

/* Logits where token 0 leads, 1 comes close, and the rest trail far. */
static void two_leaders(float *logits, float first, float second) {
    for (int i = 0; i < V; i++) logits[i] = -20;
    logits[0] = first, logits[1] = second;
}

static void test_logit_bias_bans_and_forces(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    const Gpt2LogitBias ban[] = {{0, -INFINITY}, {1, -INFINITY}}, force[] = {{500, 100}};
    Sampler g = make_with((Gpt2Sampling){.temperature = 0, .logit_bias = ban, .n_logit_bias = 2});
    assert_int_equal(draw(&g, logits, NULL, 0), 2);
    Sampler t =
        make_with((Gpt2Sampling){.temperature = 1.5f, .top_p = 1, .seed = 3, .logit_bias = ban, .n_logit_bias = 2});
    Sampler f =
        make_with((Gpt2Sampling){.temperature = 1, .top_p = 1, .seed = 3, .logit_bias = force, .n_logit_bias = 1});
    bool saw_2 = false;
    for (int i = 0; i < 2000; i++) {
        int32_t id = draw(&t, logits, NULL, 0);
        assert_true(id != 0 && id != 1);
        saw_2 |= id == 2;
        assert_int_equal(draw(&f, logits, NULL, 0), 500);
    }
    assert_true(saw_2);
    gpt2_sampler_free(&g), gpt2_sampler_free(&t), gpt2_sampler_free(&f);
}

/* Weights 1, 0.5, 0.2 and 0.05 (relative to the likeliest): min-p 0.3 keeps
 * exactly the first two, each drawn as often as its share of them. */
static void test_min_p_keeps_tokens_near_the_likeliest(void **state) {
    (void)state;
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = -1000;
    logits[10] = 0, logits[20] = logf(0.5f), logits[30] = logf(0.2f), logits[40] = logf(0.05f);
    Sampler s = make_with((Gpt2Sampling){.temperature = 1, .top_p = 1, .min_p = 0.3f, .seed = 5});
    int count[5] = {0};
    const int draws = 30000;
    for (int i = 0; i < draws; i++) {
        int32_t id = draw(&s, logits, NULL, 0);
        assert_true(id == 10 || id == 20);
        count[id / 10]++;
    }
    assert_true(fabs((double)count[1] / draws - 1 / 1.5) < 0.01);
    gpt2_sampler_free(&s);
    /* Off, the others are drawn too. */
    Sampler off = make_with((Gpt2Sampling){.temperature = 1, .top_p = 1, .seed = 5});
    bool saw_30 = false;
    for (int i = 0; i < draws && !saw_30; i++) saw_30 = draw(&off, logits, NULL, 0) == 30;
    assert_true(saw_30);
    gpt2_sampler_free(&off);
}

/* Presence and frequency penalties count the completion's tokens (those
 * accepted), not the history the repetition penalty sees. */
static void test_presence_and_frequency_penalties(void **state) {
    (void)state;
    float logits[V];
    two_leaders(logits, 2.0f, 1.5f);
    int32_t prompt[] = {0, 0, 0};
    Sampler presence = make_with((Gpt2Sampling){.temperature = 0, .presence_penalty = 1.0f});
    assert_int_equal(draw(&presence, logits, prompt, 3), 0); /* the prompt does not count */
    gpt2_sampler_accept(&presence, 0);
    assert_int_equal(draw(&presence, logits, prompt, 3), 1); /* 2 - 1 < 1.5 */
    gpt2_sampler_accept(&presence, 0);
    gpt2_sampler_accept(&presence, 1);
    float l[V];
    memcpy(l, logits, sizeof l);
    gpt2_sampler_sample(&presence, l, NULL);
    assert_true(fabsf(l[0] - 1.0f) < 1e-6f); /* once, however often */
    assert_true(fabsf(l[1] - 0.5f) < 1e-6f);
    gpt2_sampler_free(&presence);

    Sampler frequency = make_with((Gpt2Sampling){.temperature = 0, .frequency_penalty = 0.3f});
    gpt2_sampler_accept(&frequency, 0);
    assert_int_equal(draw(&frequency, logits, NULL, 0), 0); /* 2 - 0.3 > 1.5 */
    gpt2_sampler_accept(&frequency, 0);
    assert_int_equal(draw(&frequency, logits, NULL, 0), 1); /* 2 - 0.6 < 1.5 */
    memcpy(l, logits, sizeof l);
    gpt2_sampler_sample(&frequency, l, NULL);
    assert_true(fabsf(l[0] - (2.0f - 0.6f)) < 1e-6f);
    gpt2_sampler_free(&frequency);

    /* A negative penalty encourages repeats. */
    Sampler negative = make_with((Gpt2Sampling){.temperature = 0, .presence_penalty = -1.0f});
    two_leaders(logits, 1.5f, 2.0f);
    gpt2_sampler_accept(&negative, 0);
    assert_int_equal(draw(&negative, logits, NULL, 0), 0);
    gpt2_sampler_free(&negative);
}

/* Hugging Face's no_repeat_ngram_size: in the context 5 6 7 5 6, size 3
 * bans 7 (5 6 7 happened), size 2 bans 7 too (6 7), size 4 bans nothing
 * (7 5 6 was never followed), size 1 bans every token seen. */
static void test_no_repeat_ngram(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    logits[7] = 10, logits[5] = 9, logits[6] = 8, logits[8] = 7;
    int32_t ctx[] = {5, 6, 7, 5, 6};
    const uint32_t sizes[] = {3, 2, 4, 1, 6, 0};
    const int32_t want[] = {5, 5, 7, 8, 7, 7};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        Sampler s = make_with((Gpt2Sampling){.temperature = 0, .no_repeat_ngram = sizes[i]});
        float l[V];
        memcpy(l, logits, sizeof l);
        SamplerHistory h = {NULL, 0, ctx, 5};
        assert_int_equal(gpt2_sampler_sample(&s, l, &h), want[i]);
        gpt2_sampler_free(&s);
    }
}

/* Temperatures below GPT2_MIN_TEMPERATURE choose as greedy does, ties to
 * the lower id, instead of dividing by almost nothing. */
static void test_tiny_temperature_is_greedy(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    logits[700] = 5, logits[300] = 5;
    const float temps[] = {1e-38f, 1e-10f, 0.9e-4f, NAN};
    for (size_t t = 0; t < sizeof temps / sizeof *temps; t++) {
        Sampler s = make(temps[t], 40, 1, 1, 64, 9);
        for (int i = 0; i < 200; i++) assert_int_equal(draw(&s, logits, NULL, 0), 300);
        gpt2_sampler_free(&s);
    }
}

/* NaN (and +inf) logits from a damaged model are never chosen, greedy or
 * not; when no token has a finite logit, there is no choice at all. */
static void test_damaged_logits(void **state) {
    (void)state;
    float logits[V];
    falling(logits);
    logits[0] = NAN, logits[1] = INFINITY, logits[64] = NAN, logits[130] = NAN;
    const float temps[] = {0, 1, 100};
    const uint32_t top_ks[] = {0, 40};
    for (size_t t = 0; t < 3; t++) {
        for (size_t k = 0; k < 2; k++) {
            Sampler s = make(temps[t], top_ks[k], 1, 1, 64, 2);
            for (int i = 0; i < 500; i++) {
                int32_t id = draw(&s, logits, NULL, 0);
                assert_true(id != 0 && id != 1 && id != 64 && id != 130 && id >= 0);
            }
            gpt2_sampler_free(&s);
        }
    }
    float none[V];
    for (int i = 0; i < V; i++) none[i] = i % 2 ? NAN : -INFINITY;
    const Gpt2LogitBias ban[] = {{3, -INFINITY}};
    for (size_t t = 0; t < 3; t++) {
        Sampler s = make(temps[t], 40, 0.9f, 1, 64, 2);
        assert_int_equal(draw(&s, none, NULL, 0), SAMPLER_NONE);
        gpt2_sampler_free(&s);
        /* A bias does not revive a NaN, and a ban of the only finite one leaves nothing. */
        float one[V];
        memcpy(one, none, sizeof one);
        one[3] = 1;
        Sampler b =
            make_with((Gpt2Sampling){.temperature = temps[t], .top_p = 1, .logit_bias = ban, .n_logit_bias = 1});
        assert_int_equal(draw(&b, one, NULL, 0), SAMPLER_NONE);
        gpt2_sampler_free(&b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_takes_the_first_maximum),
        cmocka_unit_test(test_top_k_and_top_p_limit_the_candidates),
        cmocka_unit_test(test_frequencies_follow_the_softmax),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_same_seed_same_tokens),
        cmocka_unit_test(test_logit_bias_bans_and_forces),
        cmocka_unit_test(test_min_p_keeps_tokens_near_the_likeliest),
        cmocka_unit_test(test_presence_and_frequency_penalties),
        cmocka_unit_test(test_no_repeat_ngram),
        cmocka_unit_test(test_tiny_temperature_is_greedy),
        cmocka_unit_test(test_damaged_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
