/* test_prompt_cache.c - `gpt2 --prompt-cache FILE` and --prompt-cache-ro.
 *
 * A run with the cache gives exactly the output of a run without it (every
 * field but timings), and a later run whose prompt starts with the cached
 * tokens evaluates only the rest.  A damaged, truncated, foreign-model or
 * other-version cache is ignored with one warning line, the output is
 * unchanged, and the file is rewritten; with --prompt-cache-ro it is left
 * as it was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "test_util.h"

static char dir[4096], tiny[4200], small[4200], gpt2[4200];

static int setup(void **state) {
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) return 0;
    test_mkdtemp(dir, sizeof dir);
    snprintf(tiny, sizeof tiny, "%s/tiny.bin", dir);
    snprintf(small, sizeof small, "%s/small.bin", dir);
    test_convert_reference(shared, "tiny", "f32", tiny);
    test_convert_reference(shared, "small", "f32", small);
    snprintf(gpt2, sizeof gpt2, "%s/gpt2", test_build_dir());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (dir[0]) test_rmtree(dir);
    return 0;
}

#define NEED_FIXTURE()                                                                                                 \
    do {                                                                                                               \
        if (!dir[0]) {                                                                                                 \
            skip();                                                                                                    \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

static const char prompt[] = "Once upon a time there was a little prompt that was evaluated again and again";

typedef struct {
    StrBuf out, err;
    double prompt_evaluated;
} Run;

/* Runs a --json generation of text on model, with the cache arguments
 * (NULL-terminated) after it; fails unless it exits 0. */
static void run(Run *r, const char *model, const char *text, const char *const *cache_args) {
    const char *argv[24] = {gpt2, "-m", model, "-p", text, "-n", "12", "--seed", "5", "--json"};
    size_t n = 10;
    for (; cache_args && *cache_args; cache_args++) argv[n++] = *cache_args;
    argv[n] = NULL;
    RunResult rr;
    test_run(argv, NULL, &rr);
    if (rr.status != 0) fail_msg("exit %d: %s", rr.status, rr.err.data);
    r->out = rr.out;
    r->err = rr.err;
    JsonDoc doc;
    char why[256];
    if (!gpt2_json_parse(&doc, r->out.data, r->out.len, why, sizeof why)) fail_msg("not JSON: %s", r->out.data);
    r->prompt_evaluated = gpt2_json_number(gpt2_json_get(gpt2_json_get(doc.root, "timings"), "prompt_evaluated"));
    gpt2_json_free(&doc);
}

static void free_run(Run *r) {
    gpt2_strbuf_free(&r->out);
    gpt2_strbuf_free(&r->err);
}

/* The output without its "timings" (the last member). */
static void expect_same_output(const Run *a, const Run *b) {
    const char *ta = strstr(a->out.data, ",\"timings\""), *tb = strstr(b->out.data, ",\"timings\"");
    assert_non_null(ta);
    assert_non_null(tb);
    if (ta - a->out.data != tb - b->out.data || memcmp(a->out.data, b->out.data, (size_t)(ta - a->out.data)) != 0)
        fail_msg("outputs differ:\n%s%s", a->out.data, b->out.data);
}

static size_t count_lines(const StrBuf *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++) n += b->data[i] == '\n';
    return n;
}

/* One warning line naming the file and containing phrase. */
static void expect_warning(const Run *r, const char *phrase) {
    if (count_lines(&r->err) != 1 || !strstr(r->err.data, "gpt2: warning: prompt cache") ||
        !strstr(r->err.data, phrase))
        fail_msg("want one warning line with \"%s\", got: %s", phrase, r->err.data);
}

static void read_file(const char *path, StrBuf *out) {
    memset(out, 0, sizeof *out);
    test_read_file(path, out);
}

static void cache_path(char *out, size_t outsz, const char *name) { snprintf(out, outsz, "%s/%s", dir, name); }

/* ---- the cache is used, the output unchanged ------------------------------ */

static void test_second_run_evaluates_only_the_rest(void **state) {
    (void)state;
    NEED_FIXTURE();
    char cache[4200];
    cache_path(cache, sizeof cache, "used.cache");
    const char *args[] = {"--prompt-cache", cache, NULL};
    Run plain, first, again, longer, longer_plain;
    run(&plain, tiny, prompt, NULL);
    run(&first, tiny, prompt, args);
    assert_int_equal(first.err.len, 0);
    expect_same_output(&plain, &first);
    assert_true(first.prompt_evaluated > 10);
    struct stat st;
    assert_int_equal(stat(cache, &st), 0);

    run(&again, tiny, prompt, args); /* the same prompt: only its last token */
    expect_same_output(&plain, &again);
    assert_int_equal(again.prompt_evaluated, 1);

    char text[512];
    snprintf(text, sizeof text, "%s, and then some more", prompt);
    run(&longer_plain, tiny, text, NULL);
    run(&longer, tiny, text, args); /* the cached prompt, then new tokens */
    expect_same_output(&longer_plain, &longer);
    assert_true(longer.prompt_evaluated < longer_plain.prompt_evaluated - 10);
    free_run(&plain), free_run(&first), free_run(&again), free_run(&longer), free_run(&longer_plain);
}

/* A prompt of 130 tokens: its keys and values lie in three chunks of the
 * cache (positions 0-63, 64-127 and 128 on: kv_row in kernels.h), and the
 * file holds them position by position. */
static void test_long_prompt_across_chunks(void **state) {
    (void)state;
    NEED_FIXTURE();
    char cache[4200], text[1024];
    cache_path(cache, sizeof cache, "long.cache");
    snprintf(text, sizeof text,
             "%s, and then it grew: it was read in the morning and in the evening, by the river and under the "
             "trees, in the old house on the hill and in the new one by the sea, until it was longer than two "
             "chunks of the cache, and it went on: it was told to the children at night and to the old men at "
             "noon, to the birds in the spring and to the snow in the winter, to the ships that left the harbour "
             "and to the ones that never came back, and each time it was the same story, word for word",
             prompt);
    const char *args[] = {"--prompt-cache", cache, NULL};
    Run plain, first, again;
    run(&plain, tiny, text, NULL);
    run(&first, tiny, text, args);
    assert_int_equal(first.err.len, 0);
    expect_same_output(&plain, &first);
    assert_true(first.prompt_evaluated > 128);
    run(&again, tiny, text, args); /* read back: only the last token evaluated */
    expect_same_output(&plain, &again);
    assert_int_equal(again.prompt_evaluated, 1);
    free_run(&plain), free_run(&first), free_run(&again);
}

/* ---- unusable caches ---------------------------------------------------------- */

/* Makes a good cache for prompt at path, then lets damage() change it; a
 * run must warn once with phrase, print what a run without the cache
 * prints, and rewrite the file into one the next run uses. */
static void check_unusable(const char *name, void (*damage)(const char *path), const char *phrase) {
    char cache[4200];
    cache_path(cache, sizeof cache, name);
    const char *args[] = {"--prompt-cache", cache, NULL};
    Run plain, make, bad, next;
    run(&plain, tiny, prompt, NULL);
    run(&make, tiny, prompt, args);
    damage(cache);
    run(&bad, tiny, prompt, args);
    expect_warning(&bad, phrase);
    expect_same_output(&plain, &bad);
    assert_true(bad.prompt_evaluated > 10);
    run(&next, tiny, prompt, args); /* rewritten, and used */
    assert_int_equal(next.err.len, 0);
    assert_int_equal(next.prompt_evaluated, 1);
    expect_same_output(&plain, &next);
    free_run(&plain), free_run(&make), free_run(&bad), free_run(&next);
}

static void flip_a_value(const char *path) {
    StrBuf b;
    read_file(path, &b);
    b.data[b.len - 100] ^= 0x40; /* inside the last head's values */
    test_write_file(path, b.data, b.len);
    gpt2_strbuf_free(&b);
}

static void cut_in_half(const char *path) {
    StrBuf b;
    read_file(path, &b);
    test_write_file(path, b.data, b.len / 2);
    gpt2_strbuf_free(&b);
}

static void other_version(const char *path) {
    StrBuf b;
    read_file(path, &b);
    b.data[8] = 99;
    test_write_file(path, b.data, b.len);
    gpt2_strbuf_free(&b);
}

/* A cache the small model made for the same prompt. */
static void from_other_model(const char *path) {
    const char *args[] = {"--prompt-cache", path, NULL};
    remove(path);
    Run r;
    run(&r, small, prompt, args);
    free_run(&r);
}

static void test_damaged_cache(void **state) {
    (void)state;
    NEED_FIXTURE();
    check_unusable("damaged.cache", flip_a_value, "damaged");
}

static void test_truncated_cache(void **state) {
    (void)state;
    NEED_FIXTURE();
    check_unusable("truncated.cache", cut_in_half, "truncated");
}

static void test_other_version_cache(void **state) {
    (void)state;
    NEED_FIXTURE();
    check_unusable("version.cache", other_version, "another version");
}

static void test_foreign_model_cache(void **state) {
    (void)state;
    NEED_FIXTURE();
    check_unusable("foreign.cache", from_other_model, "another model");
}

/* A model file of the same shapes whose weights differ in one byte near
 * the start of a tensor has another identity. */
static void test_same_shapes_other_weights(void **state) {
    (void)state;
    NEED_FIXTURE();
    char twin[4200], cache[4200];
    cache_path(twin, sizeof twin, "twin.bin");
    cache_path(cache, sizeof cache, "twin.cache");
    StrBuf b;
    read_file(tiny, &b);
    uint64_t dir_at = 0, first = 0; /* the header's directory offset, the first entry's tensor offset */
    for (int i = 7; i >= 0; i--) dir_at = dir_at << 8 | (uint8_t)b.data[88 + i];
    for (int i = 7; i >= 0; i--) first = first << 8 | (uint8_t)b.data[dir_at + 16 + i];
    assert_true(first + 8 < b.len);
    b.data[first + 4] ^= 0x01; /* the low bit of the second float of the first tensor */
    test_write_file(twin, b.data, b.len);
    gpt2_strbuf_free(&b);
    const char *args[] = {"--prompt-cache", cache, NULL};
    Run make, other;
    run(&make, tiny, prompt, args);
    run(&other, twin, prompt, args);
    expect_warning(&other, "another model");
    free_run(&make), free_run(&other);
}

/* ---- read-only ---------------------------------------------------------------- */

static void test_read_only_cache(void **state) {
    (void)state;
    NEED_FIXTURE();
    char cache[4200], missing[4200];
    cache_path(cache, sizeof cache, "ro.cache");
    cache_path(missing, sizeof missing, "never.cache");
    const char *make_args[] = {"--prompt-cache", cache, NULL};
    const char *ro_args[] = {"--prompt-cache", cache, "--prompt-cache-ro", NULL};
    const char *ro_missing[] = {"--prompt-cache", missing, "--prompt-cache-ro", NULL};
    Run plain, make, used, longer, bad, none;
    run(&plain, tiny, prompt, NULL);
    run(&make, tiny, prompt, make_args);
    StrBuf before, after;
    read_file(cache, &before);

    run(&used, tiny, prompt, ro_args); /* read, used */
    assert_int_equal(used.prompt_evaluated, 1);
    expect_same_output(&plain, &used);
    char text[512];
    snprintf(text, sizeof text, "%s with more", prompt);
    run(&longer, tiny, text, ro_args); /* another prompt: not written */
    read_file(cache, &after);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.data, before.data, before.len);
    gpt2_strbuf_free(&after);

    flip_a_value(cache); /* damaged: warned about, ignored, left as it is */
    gpt2_strbuf_free(&before);
    read_file(cache, &before);
    run(&bad, tiny, prompt, ro_args);
    expect_warning(&bad, "damaged");
    assert_null(strstr(bad.err.data, "rewritten"));
    expect_same_output(&plain, &bad);
    read_file(cache, &after);
    assert_memory_equal(after.data, before.data, before.len);

    run(&none, tiny, prompt, ro_missing); /* missing: silent, not created */
    assert_int_equal(none.err.len, 0);
    struct stat st;
    assert_int_not_equal(stat(missing, &st), 0);
    gpt2_strbuf_free(&before), gpt2_strbuf_free(&after);
    free_run(&plain), free_run(&make), free_run(&used), free_run(&longer), free_run(&bad), free_run(&none);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_run_evaluates_only_the_rest),
        cmocka_unit_test(test_long_prompt_across_chunks),
        cmocka_unit_test(test_damaged_cache),
        cmocka_unit_test(test_truncated_cache),
        cmocka_unit_test(test_other_version_cache),
        cmocka_unit_test(test_foreign_model_cache),
        cmocka_unit_test(test_same_shapes_other_weights),
        cmocka_unit_test(test_read_only_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
