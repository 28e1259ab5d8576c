/* test_json.c - the strict JSON reader and the string writer. */
#include <string.h>

#include "json.h"
#include "test_util.h"

static bool parses(const char *text) {
    JsonDoc doc;
    char err[256];
    bool ok = gpt2_json_parse(&doc, text, strlen(text), err, sizeof err);
    if (ok) gpt2_json_free(&doc);
    return ok;
}

static void test_accepts_valid_documents(void **state) {
    (void)state;
    assert_true(parses("{}"));
    assert_true(parses("  [1, -2.5e3, true, false, null, \"x\"]  "));
    assert_true(parses("{\"a\":{\"b\":[[]]}}   "));
    assert_true(parses("0"));
    assert_true(parses("\"\\ud83d\\ude00\""));
}

static void test_refuses_invalid_documents(void **state) {
    (void)state;
    const char *bad[] = {
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        "-",
        "1e",
        "+1",
        "tru",
        "nul",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"a\x01\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "{} x",
        "[1] [2]",
        "{1:2}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (parses(bad[i])) fail_msg("accepted invalid JSON #%zu: %s", i, bad[i]);
    }
}

static void test_depth_is_bounded(void **state) {
    (void)state;
    char deep[JSON_MAX_DEPTH * 2 + 8];
    size_t n = 0;
    for (int i = 0; i < JSON_MAX_DEPTH; i++) deep[n++] = '[';
    for (int i = 0; i < JSON_MAX_DEPTH; i++) deep[n++] = ']';
    deep[n] = '\0';
    assert_true(parses(deep));
    memmove(deep + 1, deep, n + 1);
    deep[0] = '[';
    deep[n + 1] = ']';
    deep[n + 2] = '\0';
    assert_false(parses(deep));
}

static void test_values_and_escapes(void **state) {
    (void)state;
    const char *text = "{\"s\":\"a\\u0000b\\n\\u00e9\\ud83d\\ude00\",\"n\":12,\"f\":1.5,\"big\":1e400,\"s\":\"last\"}";
    JsonDoc doc;
    char err[256];
    assert_true(gpt2_json_parse(&doc, text, strlen(text), err, sizeof err));
    const JsonValue *s = gpt2_json_get(&doc.root, "s");
    assert_non_null(s);
    assert_int_equal(s->type, JSON_STRING);
    assert_string_equal(s->u.string.bytes, "last"); /* the last duplicate wins */
    const JsonValue *first = &doc.root.u.object.members[0].value;
    assert_int_equal(first->u.string.len, 10);
    assert_memory_equal(first->u.string.bytes, "a\0b\n\xc3\xa9\xf0\x9f\x98\x80", 10);
    int64_t v;
    assert_true(gpt2_json_as_int(gpt2_json_get(&doc.root, "n"), 0, 100, &v));
    assert_int_equal(v, 12);
    assert_false(gpt2_json_as_int(gpt2_json_get(&doc.root, "n"), 0, 11, &v));
    assert_false(gpt2_json_as_int(gpt2_json_get(&doc.root, "f"), 0, 100, &v));
    assert_false(gpt2_json_as_int(gpt2_json_get(&doc.root, "missing"), 0, 100, &v));
    assert_true(gpt2_json_get(&doc.root, "big")->u.number.value > 1e300);
    assert_true(gpt2_json_string_is(gpt2_json_get(&doc.root, "s"), "last"));
    assert_false(gpt2_json_string_is(first, "a")); /* "a\u0000b..." */
    assert_false(gpt2_json_string_is(gpt2_json_get(&doc.root, "n"), "12"));
    gpt2_json_free(&doc);
}

static void test_error_names_position(void **state) {
    (void)state;
    JsonDoc doc;
    char err[256];
    assert_false(gpt2_json_parse(&doc, "[1, 2, x]", 9, err, sizeof err));
    assert_non_null(strstr(err, "byte 7"));
}

static void test_string_writer(void **state) {
    (void)state;
    StrBuf b = {0};
    assert_true(gpt2_json_append_string(&b, "a\"\\\n\x01\x7f\xc3\xa9", 8));
    assert_string_equal(b.data, "\"a\\\"\\\\\\n\\u0001\\u007f\xc3\xa9\"");
    gpt2_strbuf_clear(&b);
    /* Ill-formed UTF-8 becomes U+FFFD per maximal subpart. */
    assert_true(gpt2_json_append_string(&b, "x\xe2\x82y\xff", 5));
    assert_string_equal(b.data, "\"x\xef\xbf\xbdy\xef\xbf\xbd\"");
    gpt2_strbuf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_valid_documents), cmocka_unit_test(test_refuses_invalid_documents),
        cmocka_unit_test(test_depth_is_bounded),        cmocka_unit_test(test_values_and_escapes),
        cmocka_unit_test(test_error_names_position),    cmocka_unit_test(test_string_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
