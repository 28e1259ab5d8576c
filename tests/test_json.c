/* test_json.c - the strict JSON reader and the string writer. */
#include <malloc.h>
#include <stdlib.h>
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
    const JsonValue *s = gpt2_json_get(doc.root, "s");
    assert_non_null(s);
    assert_int_equal(s->type, JSON_STRING);
    assert_string_equal(gpt2_json_string(s, NULL), "last"); /* the last duplicate wins */
    JsonIter it = gpt2_json_iter(doc.root);
    const JsonValue *key, *first = gpt2_json_next(&it, &key);
    assert_true(gpt2_json_string_is(key, "s"));
    size_t len;
    assert_memory_equal(gpt2_json_string(first, &len), "a\0b\n\xc3\xa9\xf0\x9f\x98\x80", 10);
    assert_int_equal(len, 10);
    int64_t v;
    assert_true(gpt2_json_as_int(gpt2_json_get(doc.root, "n"), 0, 100, &v));
    assert_int_equal(v, 12);
    assert_false(gpt2_json_as_int(gpt2_json_get(doc.root, "n"), 0, 11, &v));
    assert_false(gpt2_json_as_int(gpt2_json_get(doc.root, "f"), 0, 100, &v));
    assert_false(gpt2_json_as_int(gpt2_json_get(doc.root, "missing"), 0, 100, &v));
    assert_true(gpt2_json_number(gpt2_json_get(doc.root, "big")) > 1e300);
    assert_true(gpt2_json_string_is(gpt2_json_get(doc.root, "s"), "last"));
    assert_false(gpt2_json_string_is(first, "a")); /* "a\u0000b..." */
    assert_false(gpt2_json_string_is(gpt2_json_get(doc.root, "n"), "12"));
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

/* Bytes the allocator hands out right now (glibc; 0 under a sanitizer's
 * allocator, which keeps its own books). */
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* text = head, then unit repeated, then tail, about `size` bytes in all. */
static char *repeat(const char *head, const char *unit, const char *last, const char *tail, size_t size, size_t *len) {
    size_t hn = strlen(head), un = strlen(unit), ln = strlen(last), tn = strlen(tail), n = (size - hn - tn) / un;
    char *text = malloc(hn + n * un + ln + tn);
    assert_non_null(text);
    memcpy(text, head, hn);
    for (size_t i = 0; i < n; i++) memcpy(text + hn + i * un, unit, un);
    memcpy(text + hn + n * un, last, ln);
    memcpy(text + hn + n * un + ln, tail, tn);
    *len = hn + n * un + ln + tn;
    return text;
}

/* The densest documents there are: at most 4 bytes held per byte of text,
 * measured at the allocator. */
static void test_memory_is_at_most_4x_the_text(void **state) {
    (void)state;
    static const char *const shapes[][4] = {
        {"[", "0,", "0", "]"},           {"[", "[],", "[]", "]"},           {"[", "\"\",", "\"\"", "]"},
        {"{", "\"\":0,", "\"\":0", "}"}, {"[", "-0,", "-0", "]"},           {"[", "1.5,", "1.5", "]"},
        {"[", "{},", "{}", "]"},         {"[", "\"\\n\",", "\"\\n\"", "]"}, {"{", "\"a\":[],", "\"a\":[]", "}"},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t len;
        char *text = repeat(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 10u << 20, &len);
        JsonDoc doc;
        char err[256];
        size_t before = heap_in_use();
        if (!gpt2_json_parse(&doc, text, len, err, sizeof err)) fail_msg("%s...: %s", shapes[s][1], err);
        size_t used = heap_in_use() - before;
        if (used > 4 * len + 4096)
            fail_msg("%s...: %zu bytes of JSON take %zu bytes (%.1fx)", shapes[s][1], len, used, (double)used / len);
        assert_true(gpt2_json_doc_bytes(&doc) <= 4 * len + 16);
        gpt2_json_free(&doc);
        free(text);
    }
}

/* Walking a big array takes one step per item, and counts agree. */
static void test_iteration(void **state) {
    (void)state;
    const char *text = "{\"a\":[1,[2,3],{\"x\":[]},\"s\"],\"b\":-7,\"c\":2147483648,\"d\":-0,\"a\":null}";
    JsonDoc doc;
    char err[256], num[32];
    assert_true(gpt2_json_parse(&doc, text, strlen(text), err, sizeof err));
    assert_int_equal(gpt2_json_count(doc.root), 5);
    JsonIter it = gpt2_json_iter(doc.root);
    const JsonValue *key, *v = gpt2_json_next(&it, &key);
    assert_true(gpt2_json_string_is(key, "a"));
    assert_int_equal(gpt2_json_count(v), 4);
    assert_int_equal(gpt2_json_at(v, 1)->type, JSON_ARRAY);
    assert_true(gpt2_json_string_is(gpt2_json_at(v, 3), "s"));
    assert_null(gpt2_json_at(v, 4));
    const char *keys[] = {"b", "c", "d", "a"};
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(v = gpt2_json_next(&it, &key));
        assert_true(gpt2_json_string_is(key, keys[i]));
    }
    assert_null(gpt2_json_next(&it, &key));
    assert_int_equal(gpt2_json_get(doc.root, "a")->type, JSON_NULL); /* the last "a" wins */
    int64_t x;
    uint64_t u;
    assert_true(gpt2_json_as_int(gpt2_json_get(doc.root, "b"), -10, 10, &x) && x == -7);
    assert_false(gpt2_json_as_u64(gpt2_json_get(doc.root, "b"), &u));
    assert_true(gpt2_json_as_u64(gpt2_json_get(doc.root, "c"), &u) && u == 2147483648u);
    assert_true(gpt2_json_number_text(gpt2_json_get(doc.root, "d"), num, sizeof num));
    assert_string_equal(num, "-0");
    assert_true(gpt2_json_number_text(gpt2_json_get(doc.root, "b"), num, sizeof num));
    assert_string_equal(num, "-7");
    gpt2_json_free(&doc);
}

/* Past JSON_MAX_TEXT the text is refused before it is read. */
static void test_size_limit(void **state) {
    (void)state;
    JsonDoc doc;
    char err[256];
    assert_false(gpt2_json_parse(&doc, "0", (size_t)JSON_MAX_TEXT + 1, err, sizeof err));
    assert_non_null(strstr(err, "more than the limit"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_valid_documents),
        cmocka_unit_test(test_refuses_invalid_documents),
        cmocka_unit_test(test_depth_is_bounded),
        cmocka_unit_test(test_values_and_escapes),
        cmocka_unit_test(test_error_names_position),
        cmocka_unit_test(test_string_writer),
        cmocka_unit_test(test_memory_is_at_most_4x_the_text),
        cmocka_unit_test(test_iteration),
        cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
