/* test_cli_inspect.c - gpt2 --inspect, driven as a user's shell drives it.
 *
 * On the tiny reference model: the text report fits 80 display cells
 * (wide characters counting 2, measured here independently of the
 * program) for a prompt whose characters the tokenizer splits across
 * tokens, and shows those bytes as such; --json has the shapes of
 * expected_inspect.json and its values end to end; --attention-map writes
 * well-formed XML (checked with xmllint when it is installed) holding
 * n_layer x n_head heatmaps, one per layer past 144 heads, the heads that
 * --heads picks, and at most the last 64 tokens, saying so; misused options
 * are usage errors.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "test_util.h"

typedef struct {
    char dir[4096];
    char tiny[4200]; /* the converted tiny fixture: 2 layers x 2 heads */
    char wide[4200]; /* random weights, 12 layers x 13 heads: past 144 heads */
    char deep[4200]; /* random weights in the 1558M shape of heads: 48 layers x 25 heads */
    char gpt2[4200];
    char shared[4096];
} Env;

static Env env;

#define NEED_FIXTURE()                                                                                                 \
    if (!env.dir[0]) {                                                                                                 \
        skip();                                                                                                        \
        return;                                                                                                        \
    }

#define JAPANESE                                                                                                       \
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88\xE3\x81\xA8 "    \
    "English text."

static void gpt2(RunResult *r, ...) {
    va_list ap;
    va_start(ap, r);
    test_run_va(r, NULL, env.gpt2, ap);
    va_end(ap);
}

static void random_model(const char *shape, char *out, size_t outsz) {
    char convert[4200];
    snprintf(convert, sizeof convert, "%s/gpt2-convert", test_build_dir());
    snprintf(out, outsz, "%s/%s.bin", env.dir, shape);
    char tok[4200];
    snprintf(tok, sizeof tok, "%s/gpt2", env.shared);
    const char *argv[] = {convert, "--random", shape, out, "--tokenizer", tok, "-q", NULL};
    RunResult r;
    test_run(argv, NULL, &r);
    test_expect_ok(&r);
    test_run_free(&r);
}

static int setup(void **state) {
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) return 0;
    snprintf(env.shared, sizeof env.shared, "%s", shared);
    test_mkdtemp(env.dir, sizeof env.dir);
    snprintf(env.gpt2, sizeof env.gpt2, "%s/gpt2", test_build_dir());
    snprintf(env.tiny, sizeof env.tiny, "%s/tiny.bin", env.dir);
    test_convert_reference(shared, "tiny", "f32", env.tiny);
    random_model("12x13x26x128", env.wide, sizeof env.wide);
    random_model("48x25x50x128", env.deep, sizeof env.deep);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (env.dir[0]) test_rmtree(env.dir);
    return 0;
}

/* ---- the text report ------------------------------------------------------- */

/* Display cells of one line, by a table of its own: 2 for the East Asian
 * wide blocks, 1 for any other character, 1 for a byte that is not UTF-8. */
static size_t line_cells(const char *s, size_t n) {
    size_t cells = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (i + len > n) len = 1;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
        bool wide =
            (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
            (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) ||
            (cp >= 0x1F300 && cp <= 0x1F64F) || (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD);
        cells += wide ? 2 : 1;
        i += len;
    }
    return cells;
}

static void expect_fits(const StrBuf *out, size_t width) {
    size_t lines = 0;
    for (const char *p = out->data; p < out->data + out->len;) {
        const char *nl = memchr(p, '\n', (size_t)(out->data + out->len - p));
        assert_non_null(nl);
        size_t cells = line_cells(p, (size_t)(nl - p));
        if (cells > width) fail_msg("a line of %zu cells: %.*s", cells, (int)(nl - p), p);
        if (nl > p && nl[-1] == ' ') fail_msg("a line ends in a space: %.*s", (int)(nl - p), p);
        p = nl + 1;
        lines++;
    }
    assert_true(lines > 20);
}

static void test_report_fits_80_cells(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    gpt2(&r, "-m", env.tiny, "--inspect", "--logit-lens", "--top", "7", "-p", JAPANESE, NULL);
    test_expect_ok(&r);
    expect_fits(&r.out, 80);
    static const char *const must[] = {
        "Tokens (14)",   "Embeddings: WTE 50257 x 16",
        "WPE 160 x 16",  "Attention: 2 layers x 2 heads",
        "mean distance", "Predictions",
        "Logit lens",    "  head  1: ",
        "\\xE6\\x97",    "\\xA5",
        "\xE3\x81\xAE",  "\342\220\243English",
        "bits",          "next: rank",
        "L1 ",
    };
    for (size_t i = 0; i < sizeof must / sizeof *must; i++)
        if (!strstr(r.out.data, must[i])) fail_msg("the report lacks \"%s\":\n%s", must[i], r.out.data);
    test_run_free(&r);

    /* Long tokens, tabs, newlines and a lone continuation byte, and the
     * 80 cells hold; the last token's own line shows it whole. */
    gpt2(&r, "-m", env.tiny, "--inspect", "-p",
         "--------------------------------------------------------------------------------\t\n\x80 "
         "\xF0\x9F\x99\x82\xF0\x9F\x99\x82 \xE5\xAD\x97",
         NULL);
    test_expect_ok(&r);
    expect_fits(&r.out, 80);
    assert_non_null(strstr(r.out.data, "\\t"));
    assert_non_null(strstr(r.out.data, "\\x80"));
    test_run_free(&r);
}

/* ---- JSON -------------------------------------------------------------------- */

static const JsonValue *get(const JsonValue *obj, const char *key) {
    const JsonValue *v = gpt2_json_get(obj, key);
    if (!v) fail_msg("no \"%s\"", key);
    return v;
}

static const JsonValue *at(const JsonValue *a, size_t i) {
    assert_int_equal(a->type, JSON_ARRAY);
    assert_true(i < gpt2_json_count(a));
    return gpt2_json_at(a, i);
}

static void test_json_matches_reference(void **state) {
    (void)state;
    NEED_FIXTURE();
    char path[4200], err[256];
    StrBuf text = {0};
    JsonDoc ref, doc;
    snprintf(path, sizeof path, "%s/reference/tiny/expected_inspect.json", env.shared);
    test_read_file(path, &text);
    if (!gpt2_json_parse(&ref, text.data, text.len, err, sizeof err)) fail_msg("%s", err);
    const JsonValue *c = at(get(ref.root, "cases"), 0);
    size_t plen;
    const char *prompt = gpt2_json_string(get(c, "text"), &plen);
    RunResult r;
    gpt2(&r, "-m", env.tiny, "--inspect", "--json", "--attention-json", "--logit-lens", "--top", "5", "-p", prompt,
         NULL);
    test_expect_ok(&r);
    if (!gpt2_json_parse(&doc, r.out.data, r.out.len, err, sizeof err)) fail_msg("%s", err);
    const size_t n = gpt2_json_count(get(c, "ids"));
    assert_int_equal(gpt2_json_count(get(doc.root, "ids")), n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(gpt2_json_number(at(get(doc.root, "ids"), i)), gpt2_json_number(at(get(c, "ids"), i)));
        double a = gpt2_json_number(get(at(get(doc.root, "embedding_norms"), i), "sum"));
        double b = gpt2_json_number(get(at(get(c, "embedding_norms"), i), "sum"));
        assert_true(fabs(a - b) <= 1e-4);
    }
    const JsonValue *att = get(doc.root, "attention"), *want = get(c, "attention");
    for (size_t l = 0; l < 2; l++)
        for (size_t h = 0; h < 2; h++)
            for (size_t q = 0; q < n; q++)
                for (size_t k = 0; k < n; k++) {
                    double a = gpt2_json_number(at(at(at(at(att, l), h), q), k));
                    double b = gpt2_json_number(at(at(at(at(want, l), h), q), k));
                    if (!(fabs(a - b) <= 1e-4))
                        fail_msg("attention %zu %zu %zu %zu: %g, expected %g", l, h, q, k, a, b);
                }
    for (size_t i = 0; i < n; i++) {
        const JsonValue *p = at(get(doc.root, "predictions"), i), *e = at(get(c, "predictions"), i);
        assert_true(fabs(gpt2_json_number(get(p, "entropy_bits")) - gpt2_json_number(get(e, "entropy_bits"))) <= 1e-4);
        assert_int_equal(gpt2_json_count(get(p, "top")), 5);
        for (size_t j = 0; j < 4; j++) {
            assert_int_equal(gpt2_json_number(at(at(get(p, "top"), j), 0)),
                             gpt2_json_number(at(at(get(e, "top"), j), 0)));
            assert_true(fabs(gpt2_json_number(at(at(get(p, "top"), j), 1)) -
                             gpt2_json_number(at(at(get(e, "top"), j), 1))) <= 1e-4);
        }
        assert_true((gpt2_json_get(p, "next") != NULL) == (i + 1 < n));
    }
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < n; i++) {
            const JsonValue *a = at(at(get(doc.root, "logit_lens"), l), i), *b = at(at(get(c, "logit_lens"), l), i);
            if (gpt2_json_number(at(b, 1)) > 1e-3)
                assert_int_equal(gpt2_json_number(at(a, 0)), gpt2_json_number(at(b, 0)));
        }
    assert_int_equal(gpt2_json_count(at(at(get(doc.root, "attention_last"), 1), 1)), n);
    assert_int_equal(gpt2_json_count(at(get(doc.root, "attention_distance"), 1)), 2);
    gpt2_json_free(&doc);
    test_run_free(&r);

    /* Without --attention-json and --logit-lens, neither key. */
    gpt2(&r, "-m", env.tiny, "--inspect", "--json", "--top", "2", "-p", prompt, NULL);
    test_expect_ok(&r);
    if (!gpt2_json_parse(&doc, r.out.data, r.out.len, err, sizeof err)) fail_msg("%s", err);
    assert_null(gpt2_json_get(doc.root, "attention"));
    assert_null(gpt2_json_get(doc.root, "logit_lens"));
    assert_int_equal(gpt2_json_count(get(at(get(doc.root, "predictions"), 0), "top")), 2);
    gpt2_json_free(&doc);
    test_run_free(&r);
    gpt2_json_free(&ref);
    gpt2_strbuf_free(&text);
}

/* ---- the attention map --------------------------------------------------------- */

static size_t count(const StrBuf *b, const char *needle) {
    size_t k = 0;
    for (const char *p = b->data; (p = strstr(p, needle)); p++) k++;
    return k;
}

/* Writes the map of model with the extra arguments, checks it is
 * well-formed XML and returns its number of heatmaps. */
static size_t map_count(const char *model, const char *prompt, const char *heads, StrBuf *svg) {
    char path[4300];
    snprintf(path, sizeof path, "%s/attention.svg", env.dir);
    remove(path);
    RunResult r;
    if (heads) gpt2(&r, "-m", model, "--inspect", "--attention-map", path, "--heads", heads, "-p", prompt, NULL);
    else gpt2(&r, "-m", model, "--inspect", "--attention-map", path, "-p", prompt, NULL);
    test_expect_ok(&r);
    assert_true(r.out.len > 0); /* the text report still comes */
    test_run_free(&r);
    gpt2_strbuf_clear(svg);
    test_read_file(path, svg);
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
        if (system(cmd) != 0) fail_msg("xmllint refuses %s", path);
    } else {
        printf("# xmllint is missing (apt-get install libxml2-utils): well-formedness not checked\n");
    }
    assert_non_null(strstr(svg->data, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_null(strstr(svg->data, "<script"));
    assert_null(strstr(svg->data, "href"));
    return count(svg, "<g class=\"map\">");
}

static void test_attention_map(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf svg = {0};
    assert_int_equal(map_count(env.tiny, "Tom & <Jerry> \"quote\" " JAPANESE, NULL, &svg), 2 * 2);
    assert_non_null(strstr(svg.data, "&amp;"));
    assert_non_null(strstr(svg.data, "\\xE6\\x9C")); /* the split bytes label their rows */
    assert_non_null(strstr(svg.data, "All 23 tokens"));
    assert_non_null(strstr(svg.data, "attention weight")); /* the legend */
    assert_int_equal(map_count(env.tiny, "Hello, my name is", "mean", &svg), 2);
    assert_int_equal(map_count(env.tiny, "Hello, my name is", "1", &svg), 2);
    assert_int_equal(map_count(env.tiny, "Hello, my name is", "0,1,0", &svg), 6);

    /* Past 144 heads, one map per layer; --heads all still gives them all. */
    assert_int_equal(map_count(env.wide, "Hello, my name is", NULL, &svg), 12);
    assert_non_null(strstr(svg.data, "mean of 13 heads"));
    assert_int_equal(map_count(env.wide, "Hello, my name is", "all", &svg), 12 * 13);
    assert_int_equal(map_count(env.wide, "Hello, my name is", "12", &svg), 12);

    /* The 1558M shape of heads, a prompt longer than the map: the last 64
     * tokens, said in the picture; the file stays small. */
    StrBuf prompt = {0};
    for (int i = 0; i < 100; i++) assert_true(gpt2_strbuf_printf(&prompt, "word%d ", i));
    assert_int_equal(map_count(env.deep, prompt.data, NULL, &svg), 48);
    assert_non_null(strstr(svg.data, "The last 64 of the prompt's"));
    assert_true(svg.len < 5u << 20);
    assert_int_equal(map_count(env.deep, prompt.data, "all", &svg), 48 * 25);
    gpt2_strbuf_free(&prompt);
    gpt2_strbuf_free(&svg);
}

/* ---- usage ------------------------------------------------------------------------ */

static void test_usage_errors(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    char path[4300];
    snprintf(path, sizeof path, "%s/never.svg", env.dir);
    gpt2(&r, "-m", env.tiny, "--top", "3", "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "need --inspect");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--attention-map", path, "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "need --inspect");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--inspect", "--attention-json", "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "--attention-json needs --json");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--inspect", "--top", "0", "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "--top must be");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--inspect", "--heads", "1,x", "--attention-map", path, "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "--heads must be");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--inspect", "--heads", "2", "--attention-map", path, "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "heads 0 to 1");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--inspect", "--heads", "1", "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "--heads needs --attention-map");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--inspect", "--score", "-p", "x", NULL);
    test_expect_refusal(&r, 2, "gpt2: ", "cannot be used together");
    test_run_free(&r);
    gpt2(&r, "-m", env.tiny, "--inspect", "-p", "", NULL);
    test_expect_refusal(&r, 1, "gpt2: ", "at least one token");
    test_run_free(&r);
    gpt2(&r, "--help", NULL);
    test_expect_ok(&r);
    static const char *const documented[] = {"--inspect",       "--top K", "--logit-lens", "--attention-json",
                                             "--attention-map", "--heads", "default: 5"};
    for (size_t i = 0; i < sizeof documented / sizeof *documented; i++)
        if (!strstr(r.out.data, documented[i])) fail_msg("--help does not mention %s", documented[i]);
    test_run_free(&r);
    snprintf(path, sizeof path, "%s/no/such/dir/map.svg", env.dir);
    gpt2(&r, "-m", env.tiny, "--inspect", "--attention-map", path, "-p", "x", NULL);
    test_expect_refusal(&r, 1, "gpt2: ", "cannot write");
    test_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_fits_80_cells),
        cmocka_unit_test(test_json_matches_reference),
        cmocka_unit_test(test_attention_map),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
