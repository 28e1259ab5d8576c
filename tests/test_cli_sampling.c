/* test_cli_sampling.c - the gpt2 command line's sampler settings, token
 * log-probabilities and samples, run on the tiny reference model.
 *
 * The settings (min-p, presence and frequency penalties, no-repeat
 * n-grams, logit bias) are checked for what they must do to a greedy run
 * that loops, and for giving the same tokens from a batch line as from the
 * options; extreme values (a temperature of 1e-38, a model that gives NaN)
 * end predictably.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "test_util.h"

typedef struct {
    char dir[4096];
    char tiny[4200];     /* the converted tiny fixture */
    char nan_row[4200];  /* tiny, with NaN in the embedding (and head row) of LOOP_TOKEN */
    char nan_bias[4200]; /* tiny, with NaN in the final LayerNorm's bias: every logit NaN */
    char gpt2[4200];     /* the binary */
    char shared[4096];
} Env;

static Env env;

#define PROMPT "Hello, my dog is very cute"
/* The greedy continuation of PROMPT on the tiny model settles on this token
 * and repeats it (expected.json, text_7, then on). */
#define LOOP_TOKEN 21333
#define LOOP_TOKEN_TEXT "21333"

/* Runs gpt2 with the NULL-terminated arguments that follow spec. */
static void gpt2(RunResult *r, const RunSpec *spec, ...) {
    va_list ap;
    va_start(ap, spec);
    test_run_va(r, spec, env.gpt2, ap);
    va_end(ap);
}

static const JsonValue *parse_json(JsonDoc *doc, const char *text, size_t len) {
    char err[256];
    if (!gpt2_json_parse(doc, text, len, err, sizeof err)) fail_msg("bad JSON (%s): %.*s", err, (int)len, text);
    return doc->root;
}

static const JsonValue *get(const JsonValue *obj, const char *key) {
    const JsonValue *v = gpt2_json_get(obj, key);
    if (!v) fail_msg("no \"%s\" in the output", key);
    return v;
}

/* The ids of a JSON array of numbers. */
static size_t ids_of(const JsonValue *array, uint32_t *ids, size_t max) {
    assert_int_equal(array->type, JSON_ARRAY);
    size_t n = gpt2_json_count(array);
    assert_true(n <= max);
    JsonIter it = gpt2_json_iter(array);
    for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)gpt2_json_number(gpt2_json_next(&it, NULL));
    return n;
}

/* Runs gpt2 --json with args (NULL-terminated) and reads its completion
 * tokens and, when prompt is not NULL, its prompt tokens. */
static size_t run_ids(const char *const *args, uint32_t *ids, size_t max, uint32_t *prompt, size_t *n_prompt) {
    const char *argv[TEST_MAX_ARGS + 2] = {env.gpt2};
    size_t n = 1;
    for (; *args; args++) argv[n++] = *args;
    argv[n++] = "--json";
    argv[n] = NULL;
    RunResult r;
    test_run(argv, NULL, &r);
    test_expect_ok(&r);
    JsonDoc doc;
    const JsonValue *root = parse_json(&doc, r.out.data, r.out.len);
    size_t count = ids_of(get(root, "completion_tokens"), ids, max);
    if (prompt) *n_prompt = ids_of(get(root, "prompt_tokens"), prompt, max);
    gpt2_json_free(&doc);
    test_run_free(&r);
    return count;
}

/* ---- fixtures ------------------------------------------------------------- */

/* Copies the tiny Hugging Face folder to dir/name, with `count` floats of
 * `tensor` from float index `first` on set to NaN, and converts it to out. */
static void make_damaged(const char *name, const char *tensor, size_t first, size_t count, const char *out) {
    char src[4200], dst[4200], path[4300];
    snprintf(src, sizeof src, "%s/reference/tiny", env.shared);
    snprintf(dst, sizeof dst, "%s/%s", env.dir, name);
    test_mkdtemp(path, sizeof path); /* only for a unique name; replaced below */
    test_rmtree(path);
    assert_int_equal(mkdir(dst, 0700), 0);
    StrBuf config = {0}, weights = {0};
    snprintf(path, sizeof path, "%s/config.json", src);
    test_read_file(path, &config);
    snprintf(path, sizeof path, "%s/config.json", dst);
    test_write_file(path, config.data, config.len);
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    test_read_file(path, &weights);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | (uint8_t)weights.data[i];
    JsonDoc doc;
    const JsonValue *entry = get(parse_json(&doc, weights.data + 8, (size_t)header), tensor);
    const JsonValue *offsets = get(entry, "data_offsets");
    size_t at = 8 + (size_t)header + (size_t)gpt2_json_number(gpt2_json_at(offsets, 0)) + first * 4;
    gpt2_json_free(&doc);
    const float nan = NAN;
    for (size_t i = 0; i < count; i++) memcpy(weights.data + at + i * 4, &nan, 4);
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    test_write_file(path, weights.data, weights.len);
    test_convert(dst, env.shared, "f32", out);
    gpt2_strbuf_free(&config), gpt2_strbuf_free(&weights);
}

static int setup(void **state) {
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) return 0; /* every test skips */
    snprintf(env.shared, sizeof env.shared, "%s", shared);
    test_mkdtemp(env.dir, sizeof env.dir);
    snprintf(env.gpt2, sizeof env.gpt2, "%s/gpt2", test_build_dir());
    snprintf(env.tiny, sizeof env.tiny, "%s/tiny.bin", env.dir);
    snprintf(env.nan_row, sizeof env.nan_row, "%s/nan_row.bin", env.dir);
    snprintf(env.nan_bias, sizeof env.nan_bias, "%s/nan_bias.bin", env.dir);
    test_convert_reference(shared, "tiny", "f32", env.tiny);
    make_damaged("nan_row", "wte.weight", (size_t)LOOP_TOKEN * 16, 16, env.nan_row);
    make_damaged("nan_bias", "ln_f.bias", 3, 1, env.nan_bias);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (env.dir[0]) test_rmtree(env.dir);
    return 0;
}

#define NEED_FIXTURE()                                                                                                 \
    do {                                                                                                               \
        if (!env.dir[0]) {                                                                                             \
            skip();                                                                                                    \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

static size_t count_of(const uint32_t *ids, size_t n, uint32_t id) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ids[i] == id;
    return k;
}

/* ---- sampler settings ------------------------------------------------------------ */

/* --help shows every option of this file with its default. */
static void test_help_shows_the_settings(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    gpt2(&r, NULL, "--help", NULL);
    test_expect_ok(&r);
    static const char *const want[] = {
        "--min-p P", "--presence-penalty P", "--frequency-penalty F", "--no-repeat-ngram N", "--logit-bias ID=BIAS",
        "min_p",     "presence_penalty",     "frequency_penalty",     "no_repeat_ngram",     "logit_bias"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(r.out.data, want[i])) fail_msg("--help does not mention %s", want[i]);
    /* Each option's entry ends with its default. */
    static const char *const defaults[][2] = {{"--min-p", "default: 0.0"},
                                              {"--presence-penalty", "default: 0.0"},
                                              {"--frequency-penalty", "default: 0.0"},
                                              {"--no-repeat-ngram", "default: 0"},
                                              {"--logit-bias", "default: none"},
                                              {"--logprobs", "default: off"},
                                              {"--samples", "default: 1"}};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) {
        const char *at = strstr(r.out.data, defaults[i][0]);
        const char *next = strstr(at + 2, "\n  -");
        const char *d = strstr(at, defaults[i][1]);
        if (!d || (next && d > next)) fail_msg("--help does not give %s's default", defaults[i][0]);
    }
    test_run_free(&r);
}

enum { MAX_IDS = 512 };

#define GREEDY "-m", env.tiny, "-p", PROMPT, "-n", "60", "--ignore-eos", "--temp", "0"

static void test_logit_bias(void **state) {
    (void)state;
    NEED_FIXTURE();
    uint32_t greedy[MAX_IDS], got[MAX_IDS];
    const char *const g[] = {GREEDY, NULL};
    size_t n = run_ids(g, greedy, MAX_IDS, NULL, NULL);
    assert_int_equal(n, 60);
    assert_true(count_of(greedy, n, LOOP_TOKEN) > 30);
    /* Banned, the loop token never comes, greedy or sampled. */
    const char *const banned[] = {GREEDY, "--logit-bias", LOOP_TOKEN_TEXT "=-inf", NULL};
    n = run_ids(banned, got, MAX_IDS, NULL, NULL);
    assert_int_equal(n, 60);
    assert_int_equal(count_of(got, n, LOOP_TOKEN), 0);
    for (int seed = 0; seed < 3; seed++) {
        char s[16];
        snprintf(s, sizeof s, "%d", seed);
        const char *const sampled[] = {"-m",
                                       env.tiny,
                                       "-p",
                                       PROMPT,
                                       "-n",
                                       "60",
                                       "--ignore-eos",
                                       "--top-k",
                                       "2",
                                       "--seed",
                                       s,
                                       "--logit-bias",
                                       LOOP_TOKEN_TEXT "=-inf",
                                       NULL};
        n = run_ids(sampled, got, MAX_IDS, NULL, NULL);
        assert_int_equal(count_of(got, n, LOOP_TOKEN), 0);
    }
    /* +100 yields the token at every step, even sampling at temperature 2. */
    const char *const forced[] = {
        "-m", env.tiny,       "-p",        PROMPT,   "-n", "40",           "--temp",       "2",        "--top-k",
        "0",  "--logit-bias", "13025=100", "--seed", "4",  "--ignore-eos", "--logit-bias", "50256=-5", NULL};
    n = run_ids(forced, got, MAX_IDS, NULL, NULL);
    assert_int_equal(n, 40);
    assert_int_equal(count_of(got, n, 13025), 40);
    /* A token id outside the vocabulary ends the run with an error. */
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "-p", PROMPT, "--logit-bias", "50257=1", NULL);
    test_expect_refusal(&r, 1, "gpt2: ", "outside the vocabulary");
    test_run_free(&r);
    static const char *const bad[] = {"5", "=1", "x=1", "5=", "5=inf", "5=nan", "5=1001", "-1=2", "5=1x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gpt2(&r, NULL, "-m", env.tiny, "-p", PROMPT, "--logit-bias", bad[i], NULL);
        test_expect_refusal(&r, 2, "gpt2: ", "--logit-bias");
        test_run_free(&r);
    }
}

/* The first position where a and b differ (n if none). */
static size_t first_difference(const uint32_t *a, const uint32_t *b, size_t n) {
    size_t i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Penalties that count the completion: a positive one first changes the
 * greedy choice where greedy would repeat a token, and breaks the loop; a
 * negative one first changes it to a token that already came. */
static void test_presence_frequency_and_ngram_penalties(void **state) {
    (void)state;
    NEED_FIXTURE();
    uint32_t greedy[MAX_IDS], got[MAX_IDS], prompt[MAX_IDS];
    size_t n_prompt;
    const char *const g[] = {GREEDY, NULL};
    size_t n = run_ids(g, greedy, MAX_IDS, NULL, NULL);
    size_t loops = count_of(greedy, n, LOOP_TOKEN);

    const char *const presence[] = {GREEDY, "--presence-penalty", "2", NULL};
    const char *const frequency[] = {GREEDY, "--frequency-penalty", "0.5", NULL};
    const char *const negative[] = {GREEDY, "--presence-penalty", "-2", NULL};
    const char *const *const runs[] = {presence, frequency, negative};
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(run_ids(runs[k], got, MAX_IDS, NULL, NULL), n);
        size_t i = first_difference(got, greedy, n);
        assert_true(i < n);
        if (k < 2) {
            assert_true(count_of(greedy, i, greedy[i]) > 0);
            assert_true(count_of(got, n, LOOP_TOKEN) < loops / 2);
            for (size_t j = 0; k == 1 && j < n; j++) assert_true(count_of(got, n, got[j]) <= 20);
        } else {
            assert_int_equal(count_of(greedy, i, greedy[i]), 0);
            assert_true(count_of(got, i, got[i]) > 0);
        }
    }

    /* No bigram of prompt and completion together occurs twice. */
    const char *const ngram[] = {GREEDY, "--no-repeat-ngram", "2", NULL};
    n = run_ids(ngram, got, MAX_IDS, prompt, &n_prompt);
    assert_int_equal(n, 60);
    uint32_t all[2 * MAX_IDS];
    memcpy(all, prompt, n_prompt * sizeof *all);
    memcpy(all + n_prompt, got, n * sizeof *all);
    size_t m = n_prompt + n;
    for (size_t i = 0; i + 1 < m; i++)
        for (size_t j = i + 1; j + 1 < m; j++)
            if (all[i] == all[j] && all[i + 1] == all[j + 1]) fail_msg("bigram at %zu repeats at %zu", i, j);
}

/* min-p 1 keeps only the likeliest token, so sampling is greedy; a
 * temperature of 1e-38 is below the floor and greedy too. */
static void test_min_p_and_tiny_temperature(void **state) {
    (void)state;
    NEED_FIXTURE();
    uint32_t greedy[MAX_IDS], got[MAX_IDS], other[MAX_IDS];
    const char *const g[] = {GREEDY, NULL};
    size_t n = run_ids(g, greedy, MAX_IDS, NULL, NULL);
    const char *const min_p[] = {"-m", env.tiny,  "-p", PROMPT,   "-n", "60", "--ignore-eos", "--temp", "3", "--top-k",
                                 "0",  "--min-p", "1",  "--seed", "9",  NULL};
    assert_int_equal(run_ids(min_p, got, MAX_IDS, NULL, NULL), n);
    assert_memory_equal(got, greedy, n * sizeof *got);
    const char *const no_min_p[] = {"-m",     env.tiny, "-p",      PROMPT, "-n",      "60", "--ignore-eos",
                                    "--temp", "3",      "--top-k", "0",    "--min-p", "0",  "--seed",
                                    "9",      NULL};
    run_ids(no_min_p, other, MAX_IDS, NULL, NULL);
    assert_memory_not_equal(other, greedy, n * sizeof *got);
    const char *const tiny_temp[] = {"-m",           env.tiny, "-p",    PROMPT,   "-n", "60",
                                     "--ignore-eos", "--temp", "1e-38", "--seed", "9",  NULL};
    assert_int_equal(run_ids(tiny_temp, got, MAX_IDS, NULL, NULL), n);
    assert_memory_equal(got, greedy, n * sizeof *got);
}

/* Every setting from a batch line gives what the option gives. */
static void test_batch_keys_equal_options(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *input = "{\"prompt\": \"" PROMPT "\", \"n\": 30, \"temp\": 0, \"ignore_eos\": true, "
                        "\"presence_penalty\": 1.5}\n"
                        "{\"prompt\": \"" PROMPT "\", \"n\": 30, \"temp\": 0, \"ignore_eos\": true, "
                        "\"frequency_penalty\": 0.4}\n"
                        "{\"prompt\": \"" PROMPT "\", \"n\": 30, \"temp\": 0, \"ignore_eos\": true, "
                        "\"no_repeat_ngram\": 1}\n"
                        "{\"prompt\": \"" PROMPT "\", \"n\": 30, \"seed\": 3, \"top_k\": 0, \"temp\": 2, "
                        "\"ignore_eos\": true, \"min_p\": 0.2}\n"
                        "{\"prompt\": \"" PROMPT "\", \"n\": 30, \"temp\": 0, \"ignore_eos\": true, "
                        "\"logit_bias\": {\"" LOOP_TOKEN_TEXT "\": \"-inf\", \"13025\": -3.5}}\n"
                        "{\"prompt\": \"x\", \"logit_bias\": {\"5\": \"inf\"}}\n"
                        "{\"prompt\": \"x\", \"logit_bias\": [5]}\n"
                        "{\"prompt\": \"x\", \"min_p\": 2}\n"
                        "{\"prompt\": \"x\", \"temp\": 0, \"logit_bias\": {\"70000\": 1}}\n";
    const char *const singles[][8] = {
        {"--presence-penalty", "1.5"},
        {"--frequency-penalty", "0.4"},
        {"--no-repeat-ngram", "1"},
        {"--seed", "3", "--top-k", "0", "--temp", "2", "--min-p", "0.2"},
        {"--logit-bias", LOOP_TOKEN_TEXT "=-inf", "--logit-bias", "13025=-3.5"},
    };
    RunResult r;
    RunSpec in = {.stdin_bytes = input, .stdin_len = strlen(input)};
    gpt2(&r, &in, "-m", env.tiny, "--batch", "-", NULL);
    test_expect_ok(&r);
    const char *line = r.out.data;
    for (size_t i = 0; i < 9; i++) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        JsonDoc doc;
        const JsonValue *root = parse_json(&doc, line, (size_t)(nl - line));
        if (i >= 5) {
            assert_int_equal(get(root, "error")->type, JSON_STRING);
            if (i == 8) assert_non_null(strstr(gpt2_json_string(get(root, "error"), NULL), "outside the vocabulary"));
        } else {
            uint32_t got[MAX_IDS], want[MAX_IDS];
            size_t n = ids_of(get(root, "completion_tokens"), got, MAX_IDS);
            const char *args[24] = {"-m", env.tiny, "-p", PROMPT, "-n", "30", "--ignore-eos"};
            size_t k = 7;
            if (i != 3) args[k++] = "--temp", args[k++] = "0";
            for (size_t a = 0; a < 8 && singles[i][a]; a++) args[k++] = singles[i][a];
            args[k] = NULL;
            assert_int_equal(run_ids(args, want, MAX_IDS, NULL, NULL), n);
            if (memcmp(got, want, n * sizeof *got) != 0) fail_msg("batch line %zu differs from its single run", i + 1);
        }
        gpt2_json_free(&doc);
        line = nl + 1;
    }
    test_run_free(&r);
}

/* ---- extremes ------------------------------------------------------------------ */

/* A NaN logit is never chosen, greedy or sampled, however it is biased;
 * with no finite logit at all the completion ends with one line of error. */
static void test_nan_logits(void **state) {
    (void)state;
    NEED_FIXTURE();
    uint32_t got[MAX_IDS];
    const char *const greedy[] = {"-m", env.nan_row, "-p", PROMPT, "-n", "60", "--ignore-eos", "--temp", "0", NULL};
    size_t n = run_ids(greedy, got, MAX_IDS, NULL, NULL);
    assert_int_equal(n, 60);
    assert_int_equal(count_of(got, n, LOOP_TOKEN), 0);
    const char *const forced[] = {"-m",
                                  env.nan_row,
                                  "-p",
                                  PROMPT,
                                  "-n",
                                  "30",
                                  "--ignore-eos",
                                  "--top-k",
                                  "0",
                                  "--seed",
                                  "1",
                                  "--logit-bias",
                                  LOOP_TOKEN_TEXT "=1000",
                                  NULL};
    n = run_ids(forced, got, MAX_IDS, NULL, NULL);
    assert_int_equal(n, 30);
    assert_int_equal(count_of(got, n, LOOP_TOKEN), 0);

    RunResult r;
    const char *temps[] = {"0", "1"};
    for (int t = 0; t < 2; t++) {
        gpt2(&r, NULL, "-m", env.nan_bias, "-p", PROMPT, "--temp", temps[t], NULL);
        test_expect_refusal(&r, 1, "gpt2: ", "no token has a finite logit");
        test_run_free(&r);
        gpt2(&r, NULL, "-m", env.nan_bias, "-p", PROMPT, "--temp", temps[t], "--json", NULL);
        test_expect_refusal(&r, 1, "gpt2: ", "no token has a finite logit");
        test_run_free(&r);
    }
    const char *input = "{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"n\": 0}\n";
    RunSpec in = {.stdin_bytes = input, .stdin_len = strlen(input)};
    gpt2(&r, &in, "-m", env.nan_bias, "--batch", "-", NULL);
    test_expect_ok(&r);
    const char *nl = strchr(r.out.data, '\n');
    assert_non_null(nl);
    JsonDoc doc;
    const JsonValue *first = parse_json(&doc, r.out.data, (size_t)(nl - r.out.data));
    assert_non_null(strstr(gpt2_json_string(get(first, "error"), NULL), "line 1: no token has a finite logit"));
    gpt2_json_free(&doc);
    const JsonValue *second = parse_json(&doc, nl + 1, strlen(nl + 1) - 1);
    assert_true(gpt2_json_string_is(get(second, "finish_reason"), "length"));
    gpt2_json_free(&doc);
    test_run_free(&r);
}

/* The repetition penalty's window stops at the context length (160 on
 * the tiny model): a longer one changes nothing, and costs no memory. */
static void test_repeat_last_n_capped_at_context(void **state) {
    (void)state;
    NEED_FIXTURE();
    uint32_t capped[MAX_IDS], huge[MAX_IDS];
    const char *const a[] = {"-m",  env.tiny,          "-p",     PROMPT, "-n",
                             "400", "--ignore-eos",    "--seed", "2",    "--repeat-penalty",
                             "1.3", "--repeat-last-n", "160",    NULL};
    const char *const b[] = {"-m",  env.tiny,          "-p",         PROMPT, "-n",
                             "400", "--ignore-eos",    "--seed",     "2",    "--repeat-penalty",
                             "1.3", "--repeat-last-n", "4294967295", NULL};
    size_t n = run_ids(a, capped, MAX_IDS, NULL, NULL);
    assert_int_equal(run_ids(b, huge, MAX_IDS, NULL, NULL), n);
    assert_memory_equal(capped, huge, n * sizeof *capped);
}

/* ---- log-probabilities ------------------------------------------------------------ */

/* A top list [{"id", "logprob", ...}] against the reference's [[id, logprob]]:
 * the same ids (the last only where it is decidable) and log-probabilities
 * within 1e-3. */
static void expect_top(const JsonValue *got, const JsonValue *want, double kth_gap, const char *where, size_t at) {
    size_t n = gpt2_json_count(want);
    if (gpt2_json_count(got) != n) fail_msg("%s %zu: %zu alternatives, want %zu", where, at, gpt2_json_count(got), n);
    for (size_t k = 0; k < n; k++) {
        const JsonValue *g = gpt2_json_at(got, k), *w = gpt2_json_at(want, k);
        double want_id = gpt2_json_number(gpt2_json_at(w, 0)), want_lp = gpt2_json_number(gpt2_json_at(w, 1));
        if ((k + 1 < n || kth_gap >= 1e-3) && gpt2_json_number(get(g, "id")) != want_id)
            fail_msg("%s %zu: alternative %zu is %.0f, want %.0f", where, at, k, gpt2_json_number(get(g, "id")),
                     want_id);
        if (fabs(gpt2_json_number(get(g, "logprob")) - want_lp) > 1e-3)
            fail_msg("%s %zu: alternative %zu has log-probability %.6f, want %.6f", where, at, k,
                     gpt2_json_number(get(g, "logprob")), want_lp);
    }
}

/* An entry's "text" and "bytes" are the token's, U+FFFD where the bytes are
 * not valid UTF-8 on their own. */
static void expect_token_text(const JsonValue *entry) {
    uint32_t bytes[64];
    size_t n = ids_of(get(entry, "bytes"), bytes, 64);
    char id[16];
    snprintf(id, sizeof id, "%.0f", gpt2_json_number(get(entry, "id")));
    RunResult r;
    RunSpec in = {.stdin_bytes = id, .stdin_len = strlen(id)};
    gpt2(&r, &in, "-m", env.tiny, "--detokenize", NULL);
    test_expect_ok(&r);
    assert_int_equal(r.out.len, n);
    for (size_t i = 0; i < n; i++) assert_int_equal((uint8_t)r.out.data[i], bytes[i]);
    test_run_free(&r);
    assert_non_null(gpt2_json_string(get(entry, "text"), NULL));
}

/* --logprobs 5 at every greedy step, --echo's prompt log-probabilities and
 * --score --logprobs 5 at every position equal the float64 reference
 * (expected_top.json) within 1e-3. */
static void test_logprobs_match_the_reference(void **state) {
    (void)state;
    NEED_FIXTURE();
    char path[4200];
    snprintf(path, sizeof path, "%s/reference/tiny/expected_top.json", env.shared);
    StrBuf text = {0};
    test_read_file(path, &text);
    JsonDoc ref;
    const JsonValue *cases = get(parse_json(&ref, text.data, text.len), "cases");
    size_t checked = 0;
    for (size_t c = 0; c < gpt2_json_count(cases); c++) {
        const JsonValue *kase = gpt2_json_at(cases, c);
        const JsonValue *ids = get(kase, "ids"), *prompt_top = get(kase, "prompt_top"), *greedy = get(kase, "greedy");
        StrBuf id_text = {0};
        for (size_t i = 0; i < gpt2_json_count(ids); i++)
            assert_true(gpt2_strbuf_printf(&id_text, "%s%.0f", i ? " " : "", gpt2_json_number(gpt2_json_at(ids, i))));
        char n_text[16];
        snprintf(n_text, sizeof n_text, "%zu", gpt2_json_count(greedy));
        RunResult gen, score;
        gpt2(&gen, NULL, "-m", env.tiny, "--ids", "-p", id_text.data, "-n", n_text, "--temp", "0", "--ignore-eos",
             "--json", "--echo", "--logprobs", "5", NULL);
        gpt2(&score, NULL, "-m", env.tiny, "--ids", "-p", id_text.data, "--score", "--json", "--logprobs", "5", NULL);
        test_expect_ok(&gen), test_expect_ok(&score);
        JsonDoc gd, sd;
        const JsonValue *g = parse_json(&gd, gen.out.data, gen.out.len);
        const JsonValue *sc = parse_json(&sd, score.out.data, score.out.len);
        const JsonValue *lp = get(g, "logprobs"), *tokens = get(g, "completion_tokens");
        assert_int_equal(gpt2_json_count(lp), gpt2_json_count(greedy));
        for (size_t j = 0; j < gpt2_json_count(greedy); j++) {
            const JsonValue *e = gpt2_json_at(lp, j), *w = gpt2_json_at(greedy, j);
            assert_true(gpt2_json_number(get(e, "id")) == gpt2_json_number(gpt2_json_at(tokens, j)));
            assert_true(gpt2_json_number(get(e, "id")) == gpt2_json_number(get(w, "id")));
            assert_true(fabs(gpt2_json_number(get(e, "logprob")) - gpt2_json_number(get(w, "logprob"))) <= 1e-3);
            expect_top(get(e, "top"), get(w, "top"), gpt2_json_number(get(w, "kth_gap")), "greedy step", j);
            checked++;
        }
        expect_token_text(gpt2_json_at(lp, 0));
        /* Position t + 1 of the prompt is predicted by prompt_top[t]; the
         * first token has nothing before it. */
        const JsonValue *plp = get(g, "prompt_logprobs"), *slp = get(sc, "top_logprobs");
        assert_int_equal(gpt2_json_count(plp), gpt2_json_count(ids));
        assert_int_equal(gpt2_json_count(slp), gpt2_json_count(ids));
        assert_int_equal(gpt2_json_at(plp, 0)->type, JSON_NULL);
        assert_int_equal(gpt2_json_at(slp, 0)->type, JSON_NULL);
        for (size_t t = 0; t + 1 < gpt2_json_count(ids); t++) {
            const JsonValue *w = gpt2_json_at(prompt_top, t);
            double gap = gpt2_json_number(get(w, "kth_gap"));
            expect_top(get(gpt2_json_at(plp, t + 1), "top"), get(w, "top"), gap, "prompt position", t + 1);
            expect_top(get(gpt2_json_at(slp, t + 1), "top"), get(w, "top"), gap, "scored position", t + 1);
            assert_true(gpt2_json_number(get(gpt2_json_at(slp, t + 1), "id")) ==
                        gpt2_json_number(gpt2_json_at(ids, t + 1)));
            double score_lp = gpt2_json_number(gpt2_json_at(get(sc, "logprobs"), t + 1));
            assert_true(fabs(gpt2_json_number(get(gpt2_json_at(slp, t + 1), "logprob")) - score_lp) < 1e-9);
            checked++;
        }
        gpt2_json_free(&gd), gpt2_json_free(&sd);
        test_run_free(&gen), test_run_free(&score);
        gpt2_strbuf_free(&id_text);
    }
    assert_true(checked > 200);
    gpt2_json_free(&ref);
    gpt2_strbuf_free(&text);
}

/* K = 0 gives each token's log-probability and an empty top; bytes that
 * are not UTF-8 on their own show as U+FFFD beside their raw values;
 * without --json the option is a usage error. */
static void test_logprobs_forms(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    /* Token 447 is the bytes E2 80, the start of a three-byte character. */
    gpt2(&r, NULL, "-m", env.tiny, "-p", PROMPT, "-n", "3", "--json", "--logprobs", "0", "--logit-bias", "447=100",
         "--seed", "1", NULL);
    test_expect_ok(&r);
    JsonDoc doc;
    const JsonValue *lp = get(parse_json(&doc, r.out.data, r.out.len), "logprobs");
    assert_int_equal(gpt2_json_count(lp), 3);
    const JsonValue *e = gpt2_json_at(lp, 0);
    assert_true(gpt2_json_number(get(e, "id")) == 447);
    assert_int_equal(gpt2_json_count(get(e, "top")), 0);
    assert_true(gpt2_json_number(get(e, "logprob")) < 0);
    assert_true(gpt2_json_string_is(get(e, "text"), "\xef\xbf\xbd"));
    uint32_t bytes[8];
    assert_int_equal(ids_of(get(e, "bytes"), bytes, 8), 2);
    assert_int_equal(bytes[0], 0xE2), assert_int_equal(bytes[1], 0x80);
    assert_non_null(strstr(r.out.data, "\"text\":\"\\ufffd\"") ? strstr(r.out.data, "\"text\":\"\\ufffd\"")
                                                               : strstr(r.out.data, "\"text\":\"\xef\xbf\xbd\""));
    gpt2_json_free(&doc);
    test_run_free(&r);
    /* Without --logprobs there is no such key. */
    gpt2(&r, NULL, "-m", env.tiny, "-p", PROMPT, "-n", "3", "--json", NULL);
    test_expect_ok(&r);
    assert_null(strstr(r.out.data, "logprobs"));
    test_run_free(&r);
    /* A batch line asks with "logprobs". */
    const char *input =
        "{\"prompt\": \"" PROMPT "\", \"n\": 2, \"logprobs\": 3}\n{\"prompt\": \"x\", \"logprobs\": 21}\n";
    RunSpec in = {.stdin_bytes = input, .stdin_len = strlen(input)};
    gpt2(&r, &in, "-m", env.tiny, "--batch", "-", NULL);
    test_expect_ok(&r);
    const char *nl = strchr(r.out.data, '\n');
    lp = get(parse_json(&doc, r.out.data, (size_t)(nl - r.out.data)), "logprobs");
    assert_int_equal(gpt2_json_count(lp), 2);
    assert_int_equal(gpt2_json_count(get(gpt2_json_at(lp, 1), "top")), 3);
    gpt2_json_free(&doc);
    assert_non_null(strstr(nl, "logprobs\\\" must be a whole number from 0 to 20"));
    test_run_free(&r);
    static const char *const bad[][4] = {{"--logprobs", "5"},
                                         {"--logprobs", "21", "--json"},
                                         {"--logprobs", "-1", "--json"},
                                         {"--logprobs", "2", "--tokenize"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gpt2(&r, NULL, "-m", env.tiny, "-p", "x", bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL);
        test_expect_refusal(&r, 2, "gpt2: ", "--logprobs");
        test_run_free(&r);
    }
}

/* ---- samples ------------------------------------------------------------------- */

/* A JSON line without the members that may differ between a sample and its
 * single run: "timings" (and what precedes "prompt_tokens": "index",
 * "seed"). */
static void comparable(const char *line, size_t len, StrBuf *out) {
    const char *from = strstr(line, "\"prompt_tokens\"");
    const char *timings = strstr(line, ",\"timings\":{");
    assert_true(from && timings && from < line + len && timings < line + len);
    assert_true(gpt2_strbuf_append(out, from, (size_t)(timings - from)));
}

/* --samples 4 --seed 7 gives what --seed 7, 8, 9 and 10 give alone: in
 * JSON every field but timings, index and seed; in text, each sample after
 * its header line and followed by a newline. */
static void test_samples_equal_single_runs(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult json, text, bigger, meta;
    gpt2(&json, NULL, "-m", env.tiny, "-p", PROMPT, "-n", "30", "--samples", "4", "--seed", "7", "--json", "--logprobs",
         "2", NULL);
    gpt2(&text, NULL, "-m", env.tiny, "-p", PROMPT, "-n", "30", "--samples", "4", "--seed", "7", "--echo", NULL);
    /* Fewer at once than samples (--batch-size 3) changes nothing either. */
    gpt2(&bigger, NULL, "-m", env.tiny, "-p", PROMPT, "-n", "30", "--samples", "4", "--seed", "7", "--json",
         "--logprobs", "2", "--batch-size", "3", NULL);
    test_expect_ok(&json), test_expect_ok(&text), test_expect_ok(&bigger);
    StrBuf want_text = {0};
    const char *line = json.out.data, *line2 = bigger.out.data;
    for (int i = 0; i < 4; i++) {
        char seed[16];
        snprintf(seed, sizeof seed, "%d", 7 + i);
        RunResult one, one_text;
        gpt2(&one, NULL, "-m", env.tiny, "-p", PROMPT, "-n", "30", "--seed", seed, "--json", "--logprobs", "2", NULL);
        gpt2(&one_text, NULL, "-m", env.tiny, "-p", PROMPT, "-n", "30", "--seed", seed, NULL);
        test_expect_ok(&one), test_expect_ok(&one_text);
        const char *nl = strchr(line, '\n'), *nl2 = strchr(line2, '\n');
        assert_non_null(nl), assert_non_null(nl2);
        char head[64];
        snprintf(head, sizeof head, "{\"index\":%d,\"seed\":%d,", i, 7 + i);
        assert_memory_equal(line, head, strlen(head));
        StrBuf got = {0}, got2 = {0}, want = {0};
        comparable(line, (size_t)(nl - line), &got);
        comparable(line2, (size_t)(nl2 - line2), &got2);
        comparable(one.out.data, one.out.len, &want);
        assert_string_equal(got.data, want.data);
        assert_string_equal(got2.data, want.data);
        assert_true(gpt2_strbuf_printf(&want_text, "=== sample %d (seed %d) ===\n%s", i, 7 + i, PROMPT));
        assert_true(gpt2_strbuf_append(&want_text, one_text.out.data, one_text.out.len));
        assert_true(gpt2_strbuf_append_char(&want_text, '\n'));
        gpt2_strbuf_free(&got), gpt2_strbuf_free(&got2), gpt2_strbuf_free(&want);
        test_run_free(&one), test_run_free(&one_text);
        line = nl + 1, line2 = nl2 + 1;
    }
    assert_int_equal(*line, '\0');
    /* The prompt was evaluated once: by one sample; the others copied its
     * keys and values and evaluated at most the last prompt token again,
     * for their own logits. */
    size_t evaluated = 0, used = 0;
    line = json.out.data;
    for (int i = 0; i < 4; i++) {
        const char *nl = strchr(line, '\n');
        JsonDoc doc;
        const JsonValue *timings = get(parse_json(&doc, line, (size_t)(nl - line)), "timings");
        size_t mine = (size_t)gpt2_json_number(get(timings, "prompt_evaluated"));
        if (i > 0) assert_true(mine <= 1);
        evaluated += mine;
        used = (size_t)gpt2_json_number(get(timings, "prompt_tokens"));
        gpt2_json_free(&doc);
        line = nl + 1;
    }
    assert_int_equal(used, 7);
    assert_true(evaluated >= used && evaluated <= used + 3);
    assert_int_equal(text.out.len, want_text.len);
    assert_memory_equal(text.out.data, want_text.data, want_text.len);
    gpt2_strbuf_free(&want_text);
    test_run_free(&json), test_run_free(&text), test_run_free(&bigger);
    gpt2(&meta, NULL, "-m", env.tiny, "--batch", "-", "--samples", "2", NULL);
    test_expect_refusal(&meta, 2, "gpt2: ", "--samples");
    test_run_free(&meta);
}

/* A batch line with "samples" gives one output line holding them all. */
static void test_batch_line_samples(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *input = "{\"prompt\": \"" PROMPT "\", \"n\": 12, \"samples\": 3, \"seed\": 20}\n"
                        "{\"prompt\": \"x\", \"n\": 2, \"seed\": 1}\n"
                        "{\"prompt\": \"x\", \"samples\": 0}\n";
    RunResult r;
    RunSpec in = {.stdin_bytes = input, .stdin_len = strlen(input)};
    gpt2(&r, &in, "-m", env.tiny, "--batch", "-", "--batch-size", "2", NULL);
    test_expect_ok(&r);
    const char *nl = strchr(r.out.data, '\n');
    assert_non_null(nl);
    JsonDoc doc;
    const JsonValue *root = parse_json(&doc, r.out.data, (size_t)(nl - r.out.data));
    assert_true(gpt2_json_string_is(get(root, "prompt"), PROMPT));
    const JsonValue *samples = get(root, "samples");
    assert_int_equal(gpt2_json_count(samples), 3);
    for (size_t i = 0; i < 3; i++) {
        const JsonValue *sample = gpt2_json_at(samples, i);
        assert_true(gpt2_json_number(get(sample, "index")) == (double)i);
        assert_true(gpt2_json_number(get(sample, "seed")) == 20.0 + (double)i);
        char seed[16];
        snprintf(seed, sizeof seed, "%zu", 20 + i);
        uint32_t got[MAX_IDS], want[MAX_IDS];
        size_t n = ids_of(get(sample, "completion_tokens"), got, MAX_IDS);
        const char *const one[] = {"-m", env.tiny, "-p", PROMPT, "-n", "12", "--seed", seed, NULL};
        assert_int_equal(run_ids(one, want, MAX_IDS, NULL, NULL), n);
        assert_memory_equal(got, want, n * sizeof *got);
    }
    gpt2_json_free(&doc);
    const char *second = nl + 1, *third = strchr(second, '\n') + 1;
    assert_non_null(strstr(second, "\"completion_tokens\""));
    assert_null(strstr(second, "\"samples\""));
    assert_non_null(strstr(third, "\"samples\\\" must be a whole number from 1 to 1000"));
    test_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_shows_the_settings),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_presence_frequency_and_ngram_penalties),
        cmocka_unit_test(test_min_p_and_tiny_temperature),
        cmocka_unit_test(test_batch_keys_equal_options),
        cmocka_unit_test(test_nan_logits),
        cmocka_unit_test(test_repeat_last_n_capped_at_context),
        cmocka_unit_test(test_logprobs_match_the_reference),
        cmocka_unit_test(test_logprobs_forms),
        cmocka_unit_test(test_samples_equal_single_runs),
        cmocka_unit_test(test_batch_line_samples),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
