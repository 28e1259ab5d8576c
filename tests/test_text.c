/* test_text.c - the text foundations: StrBuf, UTF-8, strict numbers. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "numparse.h"
#include "strbuf.h"
#include "test_util.h"
#include "utf8.h"

static void test_strbuf_is_always_a_string(void **state) {
    (void)state;
    StrBuf b = {0};
    assert_true(gpt2_strbuf_reserve(&b, 0));
    assert_non_null(b.data);
    assert_string_equal(b.data, ""); /* a first allocation is terminated */
    assert_true(gpt2_strbuf_append(&b, "a\0b", 3));
    assert_int_equal(b.len, 3);
    assert_int_equal(b.data[3], '\0');
    assert_true(gpt2_strbuf_printf(&b, "%d-%s", 42, "x"));
    assert_memory_equal(b.data, "a\0b42-x", 8);
    gpt2_strbuf_clear(&b);
    assert_string_equal(b.data, "");
    const uint64_t values[] = {0, 9, 10, 50256, 4294967295u, UINT64_MAX};
    const char *texts[] = {"0", "9", "10", "50256", "4294967295", "18446744073709551615"};
    for (size_t i = 0; i < 6; i++) {
        gpt2_strbuf_clear(&b);
        assert_true(gpt2_strbuf_append_u64(&b, values[i]));
        assert_string_equal(b.data, texts[i]);
    }
    gpt2_strbuf_free(&b);
    assert_null(b.data);
}

/* Unicode's table 3-7 and the maximal-subpart rule of Python's "replace". */
static void test_utf8_decoding(void **state) {
    (void)state;
    static const struct {
        const char *bytes;
        size_t len, result; /* decoded length, or 0 */
        uint32_t cp;        /* the code point, or the bad subpart's length */
    } cases[] = {
        {"A", 1, 1, 'A'},
        {"\xc3\xa9", 2, 2, 0xE9},
        {"\xe2\x82\xac", 3, 3, 0x20AC},
        {"\xf0\x9f\x98\x80", 4, 4, 0x1F600},
        {"\xf4\x8f\xbf\xbf", 4, 4, 0x10FFFF},
        {"\xc0\xaf", 2, 0, 1},         /* overlong lead */
        {"\xe0\x80\xaf", 3, 0, 1},     /* overlong: E0 needs A0..BF */
        {"\xed\xa0\x80", 3, 0, 1},     /* surrogate: ED needs 80..9F */
        {"\xf4\x90\x80\x80", 4, 0, 1}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0, 1},
        {"\x80", 1, 0, 1},     /* lone continuation */
        {"\xe2\x82", 2, 0, 2}, /* truncated: the subpart is both bytes */
        {"\xf0\x9f\x98", 3, 0, 3},
        {"\xe2\x82"
         "A",
         3, 0, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint32_t cp = 0;
        size_t got = gpt2_utf8_decode((const uint8_t *)cases[i].bytes, cases[i].len, &cp);
        if (got != cases[i].result || cp != cases[i].cp)
            fail_msg("case %zu: got %zu, %u; want %zu, %u", i, got, cp, cases[i].result, cases[i].cp);
    }
    char out[4];
    assert_int_equal(gpt2_utf8_encode(0x1F600, out), 4);
    assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(gpt2_utf8_incomplete_tail((const uint8_t *)"ab\xf0\x9f", 4), 2);
    assert_int_equal(gpt2_utf8_incomplete_tail((const uint8_t *)"ab\xf0\x9f\x98\x80", 6), 0);
    assert_int_equal(gpt2_utf8_incomplete_tail((const uint8_t *)"ab\x80", 3), 0); /* can never complete */
    assert_int_equal(gpt2_utf8_incomplete_tail((const uint8_t *)"\xe2\x82", 2), 2);

    StrBuf b = {0};
    assert_true(gpt2_utf8_append_repaired(&b,
                                          (const uint8_t *)"a\xe2\x82"
                                                           "b\xff\xc3\xa9\xed\xa0\x80",
                                          10));
    /* a, U+FFFD for E2 82, b, U+FFFD for FF, e-acute, three U+FFFD for ED A0 80 */
    assert_string_equal(b.data, "a\xef\xbf\xbd"
                                "b\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    gpt2_strbuf_free(&b);
    assert_true(gpt2_utf8_valid((const uint8_t *)"h\xc3\xa9llo", 6));
    assert_false(gpt2_utf8_valid((const uint8_t *)"h\xc3", 2));
}

/* Text from a file, shown in a message: controls hidden, cut whole. */
static void test_utf8_shown(void **state) {
    (void)state;
    char out[12];
    assert_string_equal(gpt2_utf8_shown("a\tb\0c\x7f", 6, out, sizeof out), "a?b?c?");
    assert_string_equal(gpt2_utf8_shown("12345678", 8, out, sizeof out), "12345678");
    assert_string_equal(gpt2_utf8_shown("123456789", 9, out, sizeof out), "12345678...");
    /* "\xc3\xa9" (e acute) would be split at byte 8: the whole character goes. */
    assert_string_equal(gpt2_utf8_shown("1234567\xc3\xa9", 9, out, sizeof out), "1234567...");
}

static void test_numbers_are_strict(void **state) {
    (void)state;
    int64_t i;
    uint64_t u;
    double d;
    assert_true(gpt2_parse_int("42", 0, 100, &i) && i == 42);
    assert_true(gpt2_parse_int("-3", -5, 5, &i) && i == -3);
    const char *bad_ints[] = {"", " 5", "5 ", "5x", "1e3", "0x10", "101", "-1", "99999999999999999999", NULL};
    for (const char **s = bad_ints; *s; s++) assert_false(gpt2_parse_int(*s, 0, 100, &i));
    assert_true(gpt2_parse_u64("18446744073709551615", &u) && u == UINT64_MAX);
    const char *bad_u64[] = {"18446744073709551616", "-1", "+1", "1.0", "", NULL};
    for (const char **s = bad_u64; *s; s++) assert_false(gpt2_parse_u64(*s, &u));
    assert_true(gpt2_parse_double("0.5", 0, 1, &d) && d == 0.5);
    assert_true(gpt2_parse_double("1e-3", 0, 1, &d) && d == 1e-3);
    const char *bad_reals[] = {"nan", "inf", "-inf", "1.5", "-0.1", "1e999", "0.5x", " 0.5", "", NULL};
    for (const char **s = bad_reals; *s; s++) assert_false(gpt2_parse_double(*s, 0, 1, &d));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_is_always_a_string),
        cmocka_unit_test(test_utf8_decoding),
        cmocka_unit_test(test_utf8_shown),
        cmocka_unit_test(test_numbers_are_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
