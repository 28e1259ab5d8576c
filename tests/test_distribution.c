/* test_distribution.c - the next-token distribution (distribution.h). */
#include <math.h>

#include "distribution.h"
#include "test_util.h"

static void test_top_k_order_ties_and_nan(void **state) {
    (void)state;
    const float logits[] = {1.0f, 3.0f, NAN, 3.0f, -INFINITY, 2.0f, 0.5f};
    const size_t n = sizeof logits / sizeof *logits;
    double log_z = gpt2_dist_log_z(logits, n);
    double want_z = log(exp(1.0) + exp(3.0) + exp(3.0) + exp(2.0) + exp(0.5));
    assert_true(fabs(log_z - want_z) < 1e-12);
    DistEntry top[8];
    size_t m = gpt2_dist_top_k(logits, n, 3, log_z, top);
    assert_int_equal(m, 3);
    assert_int_equal(top[0].id, 1); /* ties: the lower id first */
    assert_int_equal(top[1].id, 3);
    assert_int_equal(top[2].id, 5);
    assert_true(fabs(top[2].logprob - (2.0 - want_z)) < 1e-12);
    /* Asking for more than there are finite logits gives only those. */
    m = gpt2_dist_top_k(logits, n, 8, log_z, top);
    assert_int_equal(m, 5);
    assert_int_equal(top[4].id, 6);
    assert_true(isinf(gpt2_dist_logprob(logits, 2, log_z)) && gpt2_dist_logprob(logits, 2, log_z) < 0);
    assert_int_equal(gpt2_dist_top_k(logits, n, 0, log_z, top), 0);
}

static void test_probabilities_sum_to_one_and_entropy(void **state) {
    (void)state;
    float logits[1000];
    for (size_t v = 0; v < 1000; v++) logits[v] = (float)((v * 7919) % 101) / 13.0f;
    double log_z = gpt2_dist_log_z(logits, 1000), sum = 0;
    for (int32_t v = 0; v < 1000; v++) sum += exp(gpt2_dist_logprob(logits, v, log_z));
    assert_true(fabs(sum - 1.0) < 1e-12);
    float flat[64] = {0};
    double h = gpt2_dist_entropy_bits(flat, 64, gpt2_dist_log_z(flat, 64));
    assert_true(fabs(h - 6.0) < 1e-12);
    const float none[2] = {NAN, -INFINITY};
    assert_true(isinf(gpt2_dist_log_z(none, 2)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_k_order_ties_and_nan),
        cmocka_unit_test(test_probabilities_sum_to_one_and_entropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
