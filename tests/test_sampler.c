/* test_sampler.c - choosing the next token: greedy, temperature, top-k,
 * top-p, the repetition penalty, and repeatability. */
#include <math.h>
#include <string.h>

#include "sampler.h"
#include "test_util.h"

enum { V = 1000 };

static Sampler make(float temp, uint32_t top_k, float top_p, float penalty, uint32_t last_n, uint64_t seed) {
    Gpt2Sampling p = {temp, top_k, top_p, penalty, last_n, seed};
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
    return gpt2_sampler_sample(s, logits, history, n);
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
    gpt2_sampler_sample(&on, l, history, 4);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_takes_the_first_maximum),
        cmocka_unit_test(test_top_k_and_top_p_limit_the_candidates),
        cmocka_unit_test(test_frequencies_follow_the_softmax),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_same_seed_same_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
