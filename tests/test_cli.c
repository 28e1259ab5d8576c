/* test_cli.c - the gpt2 command line, driven as a user's shell drives it.
 *
 * Each test runs the built binary on the tiny reference model
 * (../shared/reference/tiny, n_ctx 160, so context overflow is cheap) and
 * checks one point of the command-line contract: where the model and the
 * prompt come from, generation settings, stopping, long contexts, output,
 * batches, scoring, tokens, and errors (usage, runtime, closed pipes, full
 * disks, Ctrl-C).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_vocab.h"
#include "json.h"
#include "model_writer.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

typedef struct {
    char dir[4096];
    char tiny[4200]; /* the converted tiny fixture */
    char eos[4200];  /* a model that always predicts <|endoftext|> */
    char gpt2[4200]; /* the binary */
    char shared[4096];
} Env;

static Env env;

/* ---- running gpt2 --------------------------------------------------------- */

/* Runs gpt2 with the NULL-terminated arguments that follow spec. */
static void gpt2(RunResult *r, const RunSpec *spec, ...) {
    va_list ap;
    va_start(ap, spec);
    test_run_va(r, spec, env.gpt2, ap);
    va_end(ap);
}

static RunSpec with_stdin(const char *text) { return (RunSpec){.stdin_bytes = text, .stdin_len = strlen(text)}; }

static size_t count_lines(const StrBuf *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++) n += b->data[i] == '\n';
    return n;
}

/* A usage or runtime refusal: the status, nothing on stdout, one line on
 * stderr starting "gpt2: ". */
static void expect_refusal(const RunResult *r, int status, const char *phrase) {
    test_expect_refusal(r, status, "gpt2: ", phrase);
}

/* ---- JSON output ------------------------------------------------------------ */

typedef struct {
    JsonDoc doc;
} Json;

static const JsonValue *parse_json(Json *j, const char *text, size_t len) {
    char err[256];
    if (!gpt2_json_parse(&j->doc, text, len, err, sizeof err)) fail_msg("bad JSON (%s): %.*s", err, (int)len, text);
    return j->doc.root;
}

static const JsonValue *get(const JsonValue *obj, const char *key) {
    const JsonValue *v = gpt2_json_get(obj, key);
    if (!v) fail_msg("no \"%s\" in the output", key);
    return v;
}

/* The ids of a JSON array as "1 2 3", for comparisons and --ids. */
static void ids_text(const JsonValue *array, size_t from, StrBuf *out) {
    assert_int_equal(array->type, JSON_ARRAY);
    for (size_t i = from; i < gpt2_json_count(array); i++)
        assert_true(gpt2_strbuf_printf(out, "%s%.0f", i > from ? " " : "", gpt2_json_number(gpt2_json_at(array, i))));
}

/* Runs a --json generation and returns the completion_tokens as text. */
static void completion_ids(StrBuf *out, const char *const *args) {
    const char *argv[TEST_MAX_ARGS + 2] = {env.gpt2};
    size_t n = 1;
    for (; *args; args++) argv[n++] = *args;
    argv[n++] = "--json";
    argv[n] = NULL;
    RunResult r;
    test_run(argv, NULL, &r);
    test_expect_ok(&r);
    Json j;
    ids_text(get(parse_json(&j, r.out.data, r.out.len), "completion_tokens"), 0, out);
    gpt2_json_free(&j.doc);
    test_run_free(&r);
}

/* ---- fixtures ------------------------------------------------------------- */

/* A model whose every prediction is <|endoftext|>: all weights zero but the
 * final LayerNorm's bias (1 in dimension 0) and wte[eot] (100 there), so
 * the logits are 100 for <|endoftext|> and 0 for every other token. */
typedef struct {
    uint32_t eot;
} EosModel;

static bool eos_tensor(void *ctx, const TensorSpec *s, float *out, char *err, size_t errsz) {
    (void)err, (void)errsz;
    const EosModel *m = ctx;
    memset(out, 0, (size_t)s->rows * s->cols * sizeof *out);
    if (s->kind == TK_LNF_B) out[0] = 1.0f;
    if (s->kind == TK_WTE) out[(size_t)m->eot * s->cols] = 100.0f;
    return true;
}

static void make_eos_model(const char *path) {
    char vocab[4200], merges[4200], err[512];
    snprintf(vocab, sizeof vocab, "%s/gpt2/vocab.json", env.shared);
    snprintf(merges, sizeof merges, "%s/gpt2/merges.txt", env.shared);
    HfVocab v;
    if (!gpt2_hf_vocab_load(&v, vocab, merges, err, sizeof err)) fail_msg("%s", err);
    ModelConfig c = {.n_vocab = v.data.n_vocab,
                     .n_ctx = 32,
                     .n_embd = 16,
                     .n_layer = 1,
                     .n_head = 2,
                     .dtype = DTYPE_F32,
                     .eot_id = v.data.eot_id,
                     .ln_eps = 1e-5f};
    EosModel m = {v.data.eot_id};
    TensorSource src = {eos_tensor, NULL, &m};
    if (!gpt2_model_write(path, &c, &v.data, &src, err, sizeof err)) fail_msg("%s", err);
    gpt2_hf_vocab_free(&v);
}

static int setup(void **state) {
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) return 0; /* every test skips */
    snprintf(env.shared, sizeof env.shared, "%s", shared);
    test_mkdtemp(env.dir, sizeof env.dir);
    snprintf(env.gpt2, sizeof env.gpt2, "%s/gpt2", test_build_dir());
    snprintf(env.tiny, sizeof env.tiny, "%s/tiny.bin", env.dir);
    snprintf(env.eos, sizeof env.eos, "%s/eos.bin", env.dir);
    test_convert_reference(shared, "tiny", "f32", env.tiny);
    make_eos_model(env.eos);
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

/* A file in the temporary folder with the given content. */
static void write_file(char *path, size_t pathsz, const char *name, const char *content, size_t len) {
    snprintf(path, pathsz, "%s/%s", env.dir, name);
    test_write_file(path, content, len);
}

/* n pseudo-random token ids (none of them <|endoftext|>) as "a b c". */
static void random_ids(StrBuf *out, size_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        assert_true(gpt2_strbuf_printf(out, "%s%u", i ? " " : "", (x >> 8) % 50256));
    }
}

/* ---- help, version and usage errors --------------------------------------- */

static void test_help_documents_every_option(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    gpt2(&r, NULL, "--help", NULL);
    test_expect_ok(&r);
    static const char *const flags[] = {
        "--model",      "--threads",     "--prompt",         "--file",
        "--ids",        "--special",     "--n-predict",      "--temp",
        "--top-k",      "--top-p",       "--repeat-penalty", "--repeat-last-n",
        "--seed",       "--ignore-eos",  "--stop",           "--echo",
        "--json",       "--verbose",     "--batch",          "--batch-size",
        "--score",      "--prepend-eos", "--tokenize",       "--detokenize",
        "--help",       "--version",     "GPT2_MODEL",       "models/gpt2-124M.bin",
        "GPT2_KERNELS", "GPT2_PREFETCH",
    };
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        if (!strstr(r.out.data, flags[i])) fail_msg("--help does not mention %s", flags[i]);
    /* Every setting with a value states its default. */
    static const char *const defaults[] = {"default: 50",         "default: 1.0", "default: 40",
                                           "default: 64",         "default: 16",  "default: from the clock",
                                           "default: one per CPU"};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++)
        if (!strstr(r.out.data, defaults[i])) fail_msg("--help does not say \"%s\"", defaults[i]);
    test_run_free(&r);
    gpt2(&r, NULL, "--version", NULL);
    test_expect_ok(&r);
    assert_true(strncmp(r.out.data, "gpt2 ", 5) == 0);
    test_run_free(&r);
}

static void test_usage_errors_exit_2_with_one_line(void **state) {
    (void)state;
    NEED_FIXTURE();
    static const char *const cases[][6] = {
        {"--bogus"},
        {"-x"},
        {"-n", "-3"},
        {"-n", "abc"},
        {"-n", "1e3"},
        {"-n", "99999999999"},
        {"-n", " 5"},
        {"--temp", "nan"},
        {"--temp", "-1"},
        {"--temp", "inf"},
        {"--temp", "0.5x"},
        {"--top-p", "1.5"},
        {"--top-p", "-0.1"},
        {"--top-k", "-1"},
        {"--repeat-penalty", "0"},
        {"--repeat-last-n", "-2"},
        {"-t", "0"},
        {"-t", "abc"},
        {"--seed", "-1"},
        {"--seed", "1.5"},
        {"--seed", "18446744073709551616"},
        {"--stop", ""},
        {"-p"},
        {"-p", "x", "extra"},
        {"--score", "--tokenize"},
        {"--batch", "x", "-p", "y"},
        {"--echo", "--score"},
        {"--prepend-eos"},
        {"--tokenize", "--ids"},
        {"--batch-size", "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[10] = {env.gpt2, "-m", env.tiny};
        size_t n = 3;
        for (size_t k = 0; k < 6 && cases[i][k]; k++) argv[n++] = cases[i][k];
        argv[n] = NULL;
        RunResult r;
        test_run(argv, NULL, &r);
        expect_refusal(&r, 2, NULL);
        test_run_free(&r);
    }
}

/* ---- the model ------------------------------------------------------------ */

static void test_model_from_option_environment_or_default(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no-such-model.bin", env.dir);
    gpt2(&r, NULL, "-m", missing, "-p", "hi", NULL);
    expect_refusal(&r, 1, missing);
    assert_non_null(strstr(r.err.data, "scripts/download-model.sh"));
    test_run_free(&r);

    /* A checkpoint gpt2-convert reads: the exact command that converts it. */
    char gguf[4200], want[9000];
    snprintf(gguf, sizeof gguf, "%s/my gpt2.gguf", env.dir);
    test_write_file(gguf, "GGUF\3\0\0\0\0\0\0\0\0\0\0\0", 16);
    gpt2(&r, NULL, "-m", gguf, "-p", "hi", NULL);
    expect_refusal(&r, 1, "this is a GGUF (llama.cpp) file");
    snprintf(
        want, sizeof want,
        "make a model file of it with: gpt2-convert '%s' 'models/my gpt2.bin', then run gpt2 -m 'models/my gpt2.bin'",
        gguf);
    if (!strstr(r.err.data, want)) fail_msg("no conversion command in: %s", r.err.data);
    test_run_free(&r);
    gpt2(&r, NULL, "-m", env.dir, "-p", "hi", NULL);
    expect_refusal(&r, 1, "gpt2-convert ");
    test_run_free(&r);

    char var[4300];
    snprintf(var, sizeof var, "GPT2_MODEL=%s", env.tiny);
    const char *const with_model[] = {var, NULL};
    RunSpec spec = {.env = with_model};
    gpt2(&r, &spec, "-p", "Hello", "--tokenize", NULL);
    test_expect_ok(&r);
    assert_string_equal(r.out.data, "15496\n");
    test_run_free(&r);
    gpt2(&r, &spec, "-m", missing, "-p", "Hello", NULL); /* -m wins over the variable */
    assert_int_equal(r.status, 1);
    test_run_free(&r);

    /* GPT2_PREFETCH picks the prefetch hint, which -v names; a bad one is
     * refused in one line. */
    const char *const with_l2[] = {var, "GPT2_PREFETCH=l2", NULL}, *const with_t0[] = {var, "GPT2_PREFETCH=t0", NULL};
    RunSpec l2 = {.env = with_l2}, t0 = {.env = with_t0};
    gpt2(&r, &l2, "-p", "Hello", "-n", "1", "-v", NULL);
    test_expect_ok(&r);
    if (!strstr(r.err.data, "(prefetch l2)")) fail_msg("-v does not name the prefetch hint: %s", r.err.data);
    test_run_free(&r);
    gpt2(&r, &t0, "-p", "Hello", "-n", "1", NULL);
    expect_refusal(&r, 1, "prefetch hint \"t0\" is not \"nta\", \"l2\" or \"none\"");
    test_run_free(&r);

    /* Without either, models/gpt2-124M.bin in the current folder (there is
     * none where the tests run). */
    const char *const argv[] = {"/bin/sh", "-c", "cd / && unset GPT2_MODEL && exec \"$0\" -p hi", env.gpt2, NULL};
    test_run(argv, NULL, &r);
    expect_refusal(&r, 1, "models/gpt2-124M.bin");
    test_run_free(&r);

    gpt2(&r, NULL, "-m", "/etc/hostname", "-p", "hi", NULL);
    expect_refusal(&r, 1, "not a gpt2 model file");
    test_run_free(&r);
}

/* ---- the prompt -------------------------------------------------------------- */

static void test_prompt_sources(void **state) {
    (void)state;
    NEED_FIXTURE();
    char file[4200];
    write_file(file, sizeof file, "notes.txt", "Hello world", 11);
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "--tokenize", "-p", "Hello world", NULL);
    test_expect_ok(&r);
    assert_string_equal(r.out.data, "15496 995\n");
    test_run_free(&r);
    gpt2(&r, NULL, "-m", env.tiny, "--tokenize", "-f", file, NULL);
    assert_string_equal(r.out.data, "15496 995\n");
    test_run_free(&r);
    RunSpec in = with_stdin("Hello world");
    gpt2(&r, &in, "-m", env.tiny, "--tokenize", "-f", "-", NULL);
    assert_string_equal(r.out.data, "15496 995\n");
    test_run_free(&r);
    gpt2(&r, &in, "-m", env.tiny, "--tokenize", NULL); /* neither -p nor -f: standard input */
    assert_string_equal(r.out.data, "15496 995\n");
    test_run_free(&r);

    /* -f and -p: the file, a newline, then the text. */
    RunResult want;
    gpt2(&want, NULL, "-m", env.tiny, "--tokenize", "-p", "Hello world\nTL;DR:", NULL);
    gpt2(&r, NULL, "-m", env.tiny, "--tokenize", "-f", file, "-p", "TL;DR:", NULL);
    test_expect_ok(&r);
    assert_string_equal(r.out.data, want.out.data);
    test_run_free(&r);
    gpt2(&r, &in, "-m", env.tiny, "--tokenize", "-f", "-", "-p", "TL;DR:", NULL);
    assert_string_equal(r.out.data, want.out.data);
    test_run_free(&r);
    test_run_free(&want);

    gpt2(&r, NULL, "-m", env.tiny, "-f", "/no/such/file", NULL);
    expect_refusal(&r, 1, "/no/such/file");
    test_run_free(&r);
}

/* `while read -r line; do gpt2 -p "$line"; done < prompts.txt` must see
 * every line: with -p, gpt2 never reads standard input. */
static void test_p_never_reads_stdin(void **state) {
    (void)state;
    NEED_FIXTURE();
    char script[8800];
    snprintf(script, sizeof script, "while read -r line; do '%s' -m '%s' -p \"$line\" -n 2 --temp 0; echo; done",
             env.gpt2, env.tiny);
    const char *const argv[] = {"/bin/sh", "-c", script, NULL};
    RunSpec in = with_stdin("one\ntwo\nthree\nfour\n");
    RunResult r;
    test_run(argv, &in, &r);
    test_expect_ok(&r);
    assert_int_equal(count_lines(&r.out), 4);
    test_run_free(&r);
}

static void test_ids_and_empty_prompt(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf text = {0}, ids = {0}, eot = {0};
    const char *const by_text[] = {"-m", env.tiny, "-p", "Hello, my dog", "-n", "8", "--temp", "0", NULL};
    const char *const by_ids[] = {"-m", env.tiny, "--ids",  "-p", " 15496 11\n616\t3290 ",
                                  "-n", "8",      "--temp", "0",  NULL};
    completion_ids(&text, by_text);
    completion_ids(&ids, by_ids);
    assert_string_equal(text.data, ids.data);

    /* An empty prompt conditions on <|endoftext|>. */
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "-p", "", "-n", "8", "--temp", "0", "--json", NULL);
    test_expect_ok(&r);
    Json j;
    const JsonValue *root = parse_json(&j, r.out.data, r.out.len);
    ids_text(get(root, "prompt_tokens"), 0, &eot);
    assert_string_equal(eot.data, "50256");
    StrBuf empty = {0}, explicit_eot = {0};
    ids_text(get(root, "completion_tokens"), 0, &empty);
    const char *const by_eot[] = {"-m", env.tiny, "--ids", "-p", "50256", "-n", "8", "--temp", "0", NULL};
    completion_ids(&explicit_eot, by_eot);
    assert_string_equal(empty.data, explicit_eot.data);
    gpt2_json_free(&j.doc);
    test_run_free(&r);

    gpt2(&r, NULL, "-m", env.tiny, "--ids", "-p", "15496 50257", NULL);
    expect_refusal(&r, 1, "50257");
    test_run_free(&r);
    gpt2(&r, NULL, "-m", env.tiny, "--ids", "-p", "15496 x", NULL);
    expect_refusal(&r, 1, "not a token id");
    test_run_free(&r);
    gpt2_strbuf_free(&text), gpt2_strbuf_free(&ids), gpt2_strbuf_free(&eot), gpt2_strbuf_free(&empty),
        gpt2_strbuf_free(&explicit_eot);
}

/* ---- generation ---------------------------------------------------------------- */

/* Greedy decoding through the command line gives the reference's ids. */
static void test_greedy_matches_reference(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf got = {0};
    const char *const args[] = {"-m", env.tiny,       "-p", "Hello, my dog is very cute", "-n", "20", "--temp",
                                "0",  "--ignore-eos", NULL};
    completion_ids(&got, args);
    /* expected.json, case text_7. */
    assert_string_equal(got.data, "4 12661 34207 13025 3863 13025 17102 13025 22533 13025 47406 20626 47406 20626 "
                                  "48420 35379 37895 20554 38240 9863");
    gpt2_strbuf_free(&got);
}

static void test_defaults_and_sampling_settings(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "-p", "Hi", "--ignore-eos", "--json", NULL);
    test_expect_ok(&r);
    Json j;
    assert_int_equal(gpt2_json_count(get(parse_json(&j, r.out.data, r.out.len), "completion_tokens")), 50);
    gpt2_json_free(&j.doc);
    test_run_free(&r);

    StrBuf greedy = {0}, top1 = {0}, nucleus = {0}, penalised = {0};
    const char *const g[] = {"-m", env.tiny, "-p", "Hello, my dog is very cute", "-n", "20", "--temp", "0", NULL};
    const char *const k1[] = {"-m",     env.tiny, "-p", "Hello, my dog is very cute", "-n", "20", "--top-k", "1",
                              "--seed", "5",      NULL};
    const char *const p0[] = {
        "-m",     env.tiny, "-p", "Hello, my dog is very cute", "-n", "20", "--top-p", "0", "--top-k", "0",
        "--seed", "5",      NULL};
    const char *const rp[] = {
        "-m", env.tiny, "-p", "Hello, my dog is very cute", "-n", "20", "--temp", "0", "--repeat-penalty", "1.2", NULL};
    completion_ids(&greedy, g);
    completion_ids(&top1, k1);
    completion_ids(&nucleus, p0);
    completion_ids(&penalised, rp);
    assert_string_equal(top1.data, greedy.data);    /* top-k 1 is greedy */
    assert_string_equal(nucleus.data, greedy.data); /* so is the smallest nucleus */
    /* The greedy reference repeats " reasonably"; the penalty breaks the loop. */
    assert_string_not_equal(penalised.data, greedy.data);
    gpt2_strbuf_free(&greedy), gpt2_strbuf_free(&top1), gpt2_strbuf_free(&nucleus), gpt2_strbuf_free(&penalised);
}

/* The same seed gives the same bytes whatever the thread count; -v tells
 * the seed that was chosen, so a run can be repeated. */
static void test_seed_repeats_a_run_on_any_thread_count(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult one, two, three, other;
    gpt2(&one, NULL, "-m", env.tiny, "-p", "Once upon a time", "-n", "60", "--seed", "42", "-t", "1", NULL);
    gpt2(&two, NULL, "-m", env.tiny, "-p", "Once upon a time", "-n", "60", "--seed", "42", "-t", "2", NULL);
    gpt2(&three, NULL, "-m", env.tiny, "-p", "Once upon a time", "-n", "60", "--seed", "42", "-t", "3", NULL);
    gpt2(&other, NULL, "-m", env.tiny, "-p", "Once upon a time", "-n", "60", "--seed", "43", "-t", "1", NULL);
    test_expect_ok(&one);
    assert_true(one.out.len > 0);
    assert_int_equal(one.out.len, two.out.len);
    assert_memory_equal(one.out.data, two.out.data, one.out.len);
    assert_int_equal(one.out.len, three.out.len);
    assert_memory_equal(one.out.data, three.out.data, one.out.len);
    assert_false(other.out.len == one.out.len && memcmp(other.out.data, one.out.data, one.out.len) == 0);
    test_run_free(&one), test_run_free(&two), test_run_free(&three), test_run_free(&other);

    RunResult first, again;
    gpt2(&first, NULL, "-m", env.tiny, "-p", "Once upon a time", "-n", "30", "-v", NULL);
    test_expect_ok(&first);
    const char *seed = strstr(first.err.data, "seed ");
    assert_non_null(seed);
    char seed_text[32];
    assert_int_equal(sscanf(seed + 5, "%31[0-9]", seed_text), 1);
    gpt2(&again, NULL, "-m", env.tiny, "-p", "Once upon a time", "-n", "30", "--seed", seed_text, NULL);
    assert_int_equal(first.out.len, again.out.len);
    assert_memory_equal(first.out.data, again.out.data, first.out.len);
    test_run_free(&first), test_run_free(&again);
}

static void test_stops_at_end_of_text_unless_ignored(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    gpt2(&r, NULL, "-m", env.eos, "-p", "Hello", "--json", NULL);
    test_expect_ok(&r);
    Json j;
    const JsonValue *root = parse_json(&j, r.out.data, r.out.len);
    assert_string_equal(gpt2_json_string(get(root, "finish_reason"), NULL), "eos");
    assert_int_equal(gpt2_json_count(get(root, "completion_tokens")), 0);
    gpt2_json_free(&j.doc);
    test_run_free(&r);
    gpt2(&r, NULL, "-m", env.eos, "-p", "Hello", NULL);
    test_expect_ok(&r);
    assert_int_equal(r.out.len, 0);
    test_run_free(&r);
    gpt2(&r, NULL, "-m", env.eos, "-p", "Hello", "-n", "3", "--ignore-eos", NULL);
    test_expect_ok(&r);
    assert_string_equal(r.out.data, "<|endoftext|><|endoftext|><|endoftext|>");
    test_run_free(&r);
}

static void test_stop_strings(void **state) {
    (void)state;
    NEED_FIXTURE();
    /* The greedy continuation of this prompt begins
     * "% intelligent deterrent reasonably maybe reasonably Ace ...". */
    const char *prompt = "Hello, my dog is very cute";
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "-p", prompt, "-n", "20", "--temp", "0", "--stop", "reasonably", NULL);
    test_expect_ok(&r);
    assert_string_equal(r.out.data, "% intelligent deterrent ");
    test_run_free(&r);
    /* A stop string across a token boundary; the earliest of several wins. */
    gpt2(&r, NULL, "-m", env.tiny, "-p", prompt, "-n", "20", "--temp", "0", "--stop", "Ace", "--stop", "rent reas",
         "--json", NULL);
    test_expect_ok(&r);
    Json j;
    const JsonValue *root = parse_json(&j, r.out.data, r.out.len);
    assert_string_equal(gpt2_json_string(get(root, "completion"), NULL), "% intelligent deter");
    assert_string_equal(gpt2_json_string(get(root, "finish_reason"), NULL), "stop");
    gpt2_json_free(&j.doc);
    test_run_free(&r);
    /* A stop string that never comes changes nothing. */
    gpt2(&r, NULL, "-m", env.tiny, "-p", prompt, "-n", "3", "--temp", "0", "--stop", "zzzz", NULL);
    test_expect_ok(&r);
    assert_string_equal(r.out.data, "% intelligent deterrent");
    test_run_free(&r);
}

/* ---- context length ------------------------------------------------------------- */

/* Prompts of n_ctx - 1, n_ctx and n_ctx + 1 tokens; the last keeps its
 * newest n_ctx tokens with a warning. */
static void test_context_edges(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf ids = {0};
    random_ids(&ids, 161, 1);
    const char *tail160 = strchr(ids.data, ' ') + 1;
    RunResult r;
    for (size_t n = 159; n <= 161; n++) {
        /* the first n ids */
        const char *end = ids.data;
        for (size_t k = 0; k < n; k++) end = strchr(end, ' ') ? strchr(end, ' ') + 1 : end + strlen(end);
        char *prompt = strndup(ids.data, (size_t)(end - ids.data));
        gpt2(&r, NULL, "-m", env.tiny, "--ids", "-p", prompt, "-n", "30", "--temp", "0", "--ignore-eos", "--json",
             NULL);
        test_expect_ok(&r);
        Json j;
        const JsonValue *root = parse_json(&j, r.out.data, r.out.len);
        assert_int_equal(gpt2_json_count(get(root, "completion_tokens")), 30);
        assert_int_equal(gpt2_json_number(get(get(root, "timings"), "prompt_tokens")), n > 160 ? 160 : n);
        assert_true((strstr(r.err.data, "warning") != NULL) == (n > 160));
        if (n == 161) {
            StrBuf got = {0}, want = {0};
            ids_text(get(root, "completion_tokens"), 0, &got);
            const char *const args[] = {"-m", env.tiny, "--ids", "-p",           tail160, "-n",
                                        "30", "--temp", "0",     "--ignore-eos", NULL};
            completion_ids(&want, args);
            assert_string_equal(got.data, want.data);
            gpt2_strbuf_free(&got), gpt2_strbuf_free(&want);
        }
        gpt2_json_free(&j.doc);
        test_run_free(&r);
        free(prompt);
    }
    gpt2_strbuf_free(&ids);
}

/* When the context fills, generation goes on from the newest half: after a
 * 159-token prompt, the second generated token fills the context, and the
 * rest is exactly the continuation of the newest 80 tokens. */
static void test_context_shift_keeps_newest_half(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf prompt = {0}, got = {0};
    random_ids(&prompt, 159, 2);
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "--ids", "-p", prompt.data, "-n", "40", "--temp", "0", "--ignore-eos", "--json",
         NULL);
    test_expect_ok(&r);
    Json j;
    const JsonValue *tokens = get(parse_json(&j, r.out.data, r.out.len), "completion_tokens");
    assert_int_equal(gpt2_json_count(tokens), 40);
    /* The kept window: prompt[81..158], then the first two generated. */
    StrBuf window = {0};
    const char *p = prompt.data;
    for (int k = 0; k < 81; k++) p = strchr(p, ' ') + 1;
    assert_true(gpt2_strbuf_append_str(&window, p));
    assert_true(gpt2_strbuf_printf(&window, " %.0f %.0f", gpt2_json_number(gpt2_json_at(tokens, 0)),
                                   gpt2_json_number(gpt2_json_at(tokens, 1))));
    ids_text(tokens, 2, &got);
    StrBuf want = {0};
    const char *const args[] = {"-m", env.tiny, "--ids", "-p",           window.data, "-n",
                                "38", "--temp", "0",     "--ignore-eos", NULL};
    completion_ids(&want, args);
    assert_string_equal(got.data, want.data);
    gpt2_json_free(&j.doc);
    test_run_free(&r);
    gpt2_strbuf_free(&prompt), gpt2_strbuf_free(&got), gpt2_strbuf_free(&window), gpt2_strbuf_free(&want);
}

/* Far past the context, generation goes on, and streaming keeps memory
 * bounded: 20000 tokens take no more memory than 1000. */
static void test_long_generation_in_bounded_memory(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "-p", "x", "-n", "700", "--ignore-eos", "--json", "--seed", "1", NULL);
    test_expect_ok(&r);
    Json j;
    assert_int_equal(gpt2_json_count(get(parse_json(&j, r.out.data, r.out.len), "completion_tokens")), 700);
    gpt2_json_free(&j.doc);
    test_run_free(&r);

    RunResult small, large;
    gpt2(&small, NULL, "-m", env.tiny, "-p", "x", "-n", "1000", "--ignore-eos", "-t", "1", NULL);
    gpt2(&large, NULL, "-m", env.tiny, "-p", "x", "-n", "20000", "--ignore-eos", "-t", "1", NULL);
    test_expect_ok(&small);
    test_expect_ok(&large);
    assert_true(large.out.len > 10 * small.out.len);
    /* ASan's quarantine keeps freed blocks resident, so only an ordinary
     * build can compare the peaks. */
    if (!UNDER_ASAN && large.max_rss_kib > small.max_rss_kib + 1024)
        fail_msg("peak memory grew from %ld KiB (1000 tokens) to %ld KiB (20000 tokens)", small.max_rss_kib,
                 large.max_rss_kib);
    test_run_free(&small), test_run_free(&large);
}

/* ---- output ---------------------------------------------------------------------- */

static void test_output_text_json_echo_verbose(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunResult text, json, echo, verbose;
    const char *prompt = "The answer is";
    gpt2(&text, NULL, "-m", env.tiny, "-p", prompt, "-n", "25", "--seed", "9", NULL);
    gpt2(&json, NULL, "-m", env.tiny, "-p", prompt, "-n", "25", "--seed", "9", "--json", NULL);
    gpt2(&echo, NULL, "-m", env.tiny, "-p", prompt, "-n", "25", "--seed", "9", "--echo", NULL);
    gpt2(&verbose, NULL, "-m", env.tiny, "-p", prompt, "-n", "25", "--seed", "9", "-v", NULL);
    test_expect_ok(&text), test_expect_ok(&json), test_expect_ok(&echo), test_expect_ok(&verbose);
    assert_int_equal(text.err.len, 0);

    Json j;
    const JsonValue *root = parse_json(&j, json.out.data, json.out.len);
    assert_int_equal(root->type, JSON_OBJECT);
    assert_int_equal(gpt2_json_count(root), 5);
    const char *keys[] = {"prompt_tokens", "completion_tokens", "completion", "finish_reason", "timings"};
    for (size_t i = 0; i < 5; i++) get(root, keys[i]);
    const char *timing_keys[] = {"load_ms", "prompt_tokens", "prompt_evaluated", "prompt_ms", "gen_tokens", "gen_ms"};
    for (size_t i = 0; i < 6; i++) assert_int_equal(get(get(root, "timings"), timing_keys[i])->type, JSON_NUMBER);
    assert_string_equal(gpt2_json_string(get(root, "finish_reason"), NULL), "length");
    assert_int_equal(gpt2_json_number(get(get(root, "timings"), "gen_tokens")), 25);
    /* The streamed text is the completion (valid UTF-8 here, so equal). */
    const JsonValue *completion = get(root, "completion");
    assert_int_equal(completion->n, text.out.len);
    assert_memory_equal(gpt2_json_string(completion, NULL), text.out.data, text.out.len);
    gpt2_json_free(&j.doc);

    /* --echo: the prompt, then the same continuation. */
    assert_int_equal(echo.out.len, strlen(prompt) + text.out.len);
    assert_memory_equal(echo.out.data, prompt, strlen(prompt));
    assert_memory_equal(echo.out.data + strlen(prompt), text.out.data, text.out.len);

    /* -v: statistics on stderr, stdout unchanged. */
    assert_int_equal(verbose.out.len, text.out.len);
    assert_memory_equal(verbose.out.data, text.out.data, text.out.len);
    assert_non_null(strstr(verbose.err.data, "tokens/s"));
    assert_non_null(strstr(verbose.err.data, "seed 9"));
    assert_non_null(strstr(verbose.err.data, "loaded in"));
    assert_non_null(strstr(verbose.err.data, "generated 25 tokens in "));
    /* One token comes with the prompt: no step is timed, and no rate of 0 shown. */
    RunResult one;
    gpt2(&one, NULL, "-m", env.tiny, "-p", prompt, "-n", "1", "-v", NULL);
    test_expect_ok(&one);
    assert_non_null(strstr(one.err.data, "gpt2: generated 1 token; finish: length"));
    assert_null(strstr(one.err.data, " 0.0 tokens/s"));
    test_run_free(&one);
    test_run_free(&text), test_run_free(&json), test_run_free(&echo), test_run_free(&verbose);
}

/* ---- batch ------------------------------------------------------------------------- */

static void test_batch_equals_single_runs(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *input = "{\"prompt\": \"Hello, my dog\", \"n\": 12, \"temp\": 0}\n"
                        "{\"prompt\": \"Once upon a time\", \"n\": 20, \"seed\": 7, \"top_k\": 5}\n"
                        "this is not json\n"
                        "{\"prompt\": \"The answer\", \"n\": 16, \"temp\": 0.8, \"top_p\": 0.9, \"seed\": 3, \"stop\": "
                        "[\"zz\", \"e\"]}\n"
                        "{\"prompt\": \"x\", \"temp\": -1}\n"
                        "{\"prompt\": 5}\n"
                        "{\"n\": 3}\n"
                        "{\"prompt\": \"A\", \"n\": 30, \"ignore_eos\": true, \"seed\": 11, \"repeat_penalty\": 1.3}\n"
                        "{\"prompt\": \"\", \"n\": 5, \"seed\": 1}\n";
    const char *const singles[][16] = {
        {"-p", "Hello, my dog", "-n", "12", "--temp", "0"},
        {"-p", "Once upon a time", "-n", "20", "--seed", "7", "--top-k", "5"},
        {NULL},
        {"-p", "The answer", "-n", "16", "--temp", "0.8", "--top-p", "0.9", "--seed", "3", "--stop", "zz", "--stop",
         "e"},
        {NULL},
        {NULL},
        {NULL},
        {"-p", "A", "-n", "30", "--ignore-eos", "--seed", "11", "--repeat-penalty", "1.3"},
        {"-p", "", "-n", "5", "--seed", "1"},
    };
    const size_t n_lines = sizeof singles / sizeof *singles;
    static const char *const sizes[] = {"1", "3", "16"};
    char file[4200];
    write_file(file, sizeof file, "batch.jsonl", input, strlen(input));
    for (size_t s = 0; s < 3; s++) {
        RunResult r;
        RunSpec in = with_stdin(input);
        if (s == 1) gpt2(&r, &in, "-m", env.tiny, "--batch", "-", "--batch-size", sizes[s], "-t", "1", NULL);
        else gpt2(&r, NULL, "-m", env.tiny, "--batch", file, "--batch-size", sizes[s], NULL);
        test_expect_ok(&r);
        assert_int_equal(count_lines(&r.out), n_lines);
        const char *line = r.out.data;
        for (size_t i = 0; i < n_lines; i++) {
            const char *nl = strchr(line, '\n');
            Json j;
            const JsonValue *root = parse_json(&j, line, (size_t)(nl - line));
            if (!singles[i][0]) {
                assert_int_equal(get(root, "error")->type, JSON_STRING);
            } else {
                StrBuf got = {0}, want = {0};
                ids_text(get(root, "completion_tokens"), 0, &got);
                const char *args[20] = {"-m", env.tiny};
                size_t k = 2;
                for (size_t a = 0; a < 16 && singles[i][a]; a++) args[k++] = singles[i][a];
                args[k] = NULL;
                completion_ids(&want, args);
                if (strcmp(got.data, want.data) != 0)
                    fail_msg("batch line %zu (batch size %s): %s, alone: %s", i + 1, sizes[s], got.data, want.data);
                assert_string_equal(gpt2_json_string(get(root, "prompt"), NULL), singles[i][1]);
                gpt2_strbuf_free(&got), gpt2_strbuf_free(&want);
            }
            gpt2_json_free(&j.doc);
            line = nl + 1;
        }
        test_run_free(&r);
    }

    /* A missing batch file is a runtime error. */
    RunResult r;
    gpt2(&r, NULL, "-m", env.tiny, "--batch", "/no/such/batch.jsonl", NULL);
    expect_refusal(&r, 1, "/no/such/batch.jsonl");
    test_run_free(&r);
}

/* A later duplicate key replaces an earlier one (json.h's rule), and a key
 * with a NUL byte is refused rather than matched on its prefix. */
static void test_batch_duplicate_and_nul_keys(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *input = "{\"prompt\": \"first\", \"n\": 2, \"prompt\": \"Hello\", \"temp\": 0}\n"
                        "{\"prompt\": \"x\", \"n\\u0000\": 3}\n"
                        "{\"prompt\\u0000junk\": \"y\", \"prompt\": \"x\"}\n";
    RunResult r;
    RunSpec in = with_stdin(input);
    gpt2(&r, &in, "-m", env.tiny, "--batch", "-", NULL);
    test_expect_ok(&r);
    assert_int_equal(count_lines(&r.out), 3);
    const char *line = r.out.data;
    for (size_t i = 0; i < 3; i++) {
        const char *nl = strchr(line, '\n');
        Json j;
        const JsonValue *root = parse_json(&j, line, (size_t)(nl - line));
        if (i == 0) {
            assert_string_equal(gpt2_json_string(get(root, "prompt"), NULL), "Hello");
            assert_int_equal(gpt2_json_count(get(root, "completion_tokens")), 2);
        } else {
            assert_non_null(strstr(gpt2_json_string(get(root, "error"), NULL), "NUL"));
        }
        gpt2_json_free(&j.doc);
        line = nl + 1;
    }
    test_run_free(&r);
}

/* Two JSON values are the same (numbers by their text). */
static bool json_same(const JsonValue *a, const JsonValue *b) {
    if (a->type != b->type) return false;
    if (a->type == JSON_STRING) {
        size_t na, nb;
        const char *sa = gpt2_json_string(a, &na), *sb = gpt2_json_string(b, &nb);
        return na == nb && memcmp(sa, sb, na) == 0;
    }
    if (a->type == JSON_NUMBER) {
        char ta[64], tb[64];
        return gpt2_json_number_text(a, ta, sizeof ta) && gpt2_json_number_text(b, tb, sizeof tb) &&
               strcmp(ta, tb) == 0;
    }
    if (a->type == JSON_ARRAY || a->type == JSON_OBJECT) { /* objects in the same key order */
        if (gpt2_json_count(a) != gpt2_json_count(b)) return false;
        JsonIter ia = gpt2_json_iter(a), ib = gpt2_json_iter(b);
        const JsonValue *va, *vb, *ka, *kb;
        while ((va = gpt2_json_next(&ia, &ka)) && (vb = gpt2_json_next(&ib, &kb)))
            if ((ka && !json_same(ka, kb)) || !json_same(va, vb)) return false;
    }
    return true;
}

/* The fields of a result that must equal a single run's: all but timings
 * (and the batch's own "prompt"). */
static void expect_same_result(const JsonValue *got, const JsonValue *want, size_t line) {
    static const char *const keys[] = {"prompt_tokens", "completion_tokens", "completion", "finish_reason"};
    for (size_t k = 0; k < 4; k++)
        if (!json_same(get(got, keys[k]), get(want, keys[k])))
            fail_msg("line %zu: %s differs from a single run", line, keys[k]);
}

/* Lines sharing a prefix, identical prompts and prompts given as token ids
 * give what single runs give; the shared part is evaluated once. */
static void test_batch_shares_prefixes(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *input = "{\"prompt\": \"A long shared header for every question. Q: one\", \"n\": 8, \"seed\": 1}\n"
                        "{\"prompt\": \"A long shared header for every question. Q: two\", \"n\": 8, \"seed\": 2}\n"
                        "{\"prompt\": [15496, 995, 11, 616, 3290], \"n\": 8, \"seed\": 3}\n"
                        "{\"prompt\": [15496, 995, 11, 616, 3290], \"n\": 8, \"seed\": 4}\n"
                        "{\"prompt\": [50257]}\n"
                        "{\"prompt\": [\"a\"]}\n"
                        "{\"prompt\": [], \"n\": 4, \"seed\": 5}\n";
    const char *const singles[][8] = {
        {"-p", "A long shared header for every question. Q: one", "-n", "8", "--seed", "1"},
        {"-p", "A long shared header for every question. Q: two", "-n", "8", "--seed", "2"},
        {"--ids", "-p", "15496 995 11 616 3290", "-n", "8", "--seed", "3"},
        {"--ids", "-p", "15496 995 11 616 3290", "-n", "8", "--seed", "4"},
        {NULL},
        {NULL},
        {"-p", "", "-n", "4", "--seed", "5"},
    };
    const size_t n_lines = sizeof singles / sizeof *singles;
    RunSpec in = with_stdin(input);
    RunResult r;
    gpt2(&r, &in, "-m", env.tiny, "--batch", "-", NULL);
    test_expect_ok(&r);
    assert_int_equal(count_lines(&r.out), n_lines);
    const char *line = r.out.data;
    double evaluated[8] = {0}, used[8] = {0};
    for (size_t i = 0; i < n_lines; i++) {
        const char *nl = strchr(line, '\n');
        Json j;
        const JsonValue *root = parse_json(&j, line, (size_t)(nl - line));
        if (!singles[i][0]) {
            assert_non_null(strstr(gpt2_json_string(get(root, "error"), NULL), "token id"));
        } else {
            const char *argv[16] = {env.gpt2, "-m", env.tiny, "--json"};
            size_t k = 4;
            for (size_t a = 0; a < 8 && singles[i][a]; a++) argv[k++] = singles[i][a];
            argv[k] = NULL;
            RunResult one;
            test_run(argv, NULL, &one);
            test_expect_ok(&one);
            Json w;
            expect_same_result(root, parse_json(&w, one.out.data, one.out.len), i + 1);
            evaluated[i] = gpt2_json_number(get(get(root, "timings"), "prompt_evaluated"));
            used[i] = gpt2_json_number(get(get(root, "timings"), "prompt_tokens"));
            gpt2_json_free(&w.doc);
            test_run_free(&one);
        }
        if (i == 2) assert_int_equal(get(root, "prompt")->type, JSON_ARRAY); /* the ids, as given */
        gpt2_json_free(&j.doc);
        line = nl + 1;
    }
    assert_true(evaluated[0] == used[0]);
    assert_true(evaluated[1] < used[1] - 5); /* the header came from line 1 */
    assert_true(evaluated[3] == 1);          /* all but the last token came from line 3 */
    test_run_free(&r);
}

/* ---- scoring --------------------------------------------------------------------- */

static void test_score_text_and_json(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *text = "Hello, my dog is very cute";
    RunResult plain, json, prepended;
    gpt2(&plain, NULL, "-m", env.tiny, "-p", text, "--score", NULL);
    gpt2(&json, NULL, "-m", env.tiny, "-p", text, "--score", "--json", NULL);
    gpt2(&prepended, NULL, "-m", env.tiny, "-p", text, "--score", "--json", "--prepend-eos", NULL);
    test_expect_ok(&plain), test_expect_ok(&json), test_expect_ok(&prepended);
    /* One line per token (id, text, log-probability), then the summary. */
    assert_int_equal(count_lines(&plain.out), 8);
    const char *head = "15496\tHello\tnan\n11\t,\t-48.32";
    assert_true(strncmp(plain.out.data, head, strlen(head)) == 0);
    assert_non_null(strstr(plain.out.data, "# 7 tokens, 6 scored, mean NLL 49.55"));

    Json j, k;
    const JsonValue *root = parse_json(&j, json.out.data, json.out.len);
    const JsonValue *lp = get(root, "logprobs");
    assert_int_equal(gpt2_json_count(lp), 7);
    assert_int_equal(gpt2_json_at(lp, 0)->type, JSON_NULL);
    double sum = 0;
    for (size_t i = 1; i < 7; i++) sum -= gpt2_json_number(gpt2_json_at(lp, i));
    assert_true(fabs(gpt2_json_number(get(root, "mean_nll")) - sum / 6) < 1e-6);
    assert_true(fabs(gpt2_json_number(get(root, "perplexity")) - exp(sum / 6)) < 1e-6 * exp(sum / 6));

    /* The same text is expected.json's case text_7: every NLL within 1e-3,
     * the mean within 1e-4 (the reference README's tolerances). */
    char ref_path[4200];
    snprintf(ref_path, sizeof ref_path, "%s/reference/tiny/expected.json", env.shared);
    StrBuf ref_text = {0};
    test_read_file(ref_path, &ref_text);
    Json ref;
    const JsonValue *cases = get(parse_json(&ref, ref_text.data, ref_text.len), "cases"), *text_7 = NULL;
    for (size_t i = 0; i < gpt2_json_count(cases) && !text_7; i++)
        if (strcmp(gpt2_json_string(get(gpt2_json_at(cases, i), "name"), NULL), "text_7") == 0)
            text_7 = gpt2_json_at(cases, i);
    assert_non_null(text_7);
    assert_string_equal(gpt2_json_string(get(text_7, "text"), NULL), text);
    const JsonValue *nll = get(text_7, "nll");
    assert_int_equal(gpt2_json_count(nll), 6);
    for (size_t t = 0; t < 6; t++) {
        double got = -gpt2_json_number(gpt2_json_at(lp, t + 1)), want = gpt2_json_number(gpt2_json_at(nll, t));
        if (!(fabs(got - want) <= 1e-3)) fail_msg("token %zu: NLL %.6f, reference %.6f", t + 1, got, want);
    }
    assert_true(fabs(gpt2_json_number(get(root, "mean_nll")) - gpt2_json_number(get(text_7, "mean_nll"))) <= 1e-4);
    gpt2_json_free(&ref.doc);
    gpt2_strbuf_free(&ref_text);

    /* --prepend-eos scores the first token too, and conditioning on one
     * more token changes the others. */
    const JsonValue *lp2 = get(parse_json(&k, prepended.out.data, prepended.out.len), "logprobs");
    assert_int_equal(gpt2_json_count(lp2), 7);
    size_t changed = 0;
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(gpt2_json_at(lp2, i)->type, JSON_NUMBER);
        changed += i > 0 && gpt2_json_number(gpt2_json_at(lp2, i)) != gpt2_json_number(gpt2_json_at(lp, i));
    }
    assert_true(changed > 0);
    gpt2_json_free(&j.doc), gpt2_json_free(&k.doc);
    test_run_free(&plain), test_run_free(&json), test_run_free(&prepended);
}

/* Beyond the context, windows of 160 advancing by 80: token j in
 * [160, 240) is scored in the window [80, 240), so it gets exactly the
 * log-probability it gets when ids[80..240) are scored alone. */
static void test_score_long_text_with_sliding_windows(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf ids = {0};
    random_ids(&ids, 300, 3);
    RunResult all, window;
    gpt2(&all, NULL, "-m", env.tiny, "--ids", "-p", ids.data, "--score", "--json", NULL);
    test_expect_ok(&all);
    const char *from80 = ids.data;
    for (int k = 0; k < 80; k++) from80 = strchr(from80, ' ') + 1;
    const char *to240 = from80;
    for (int k = 0; k < 160; k++) to240 = strchr(to240, ' ') + 1;
    char *sub = strndup(from80, (size_t)(to240 - from80 - 1));
    gpt2(&window, NULL, "-m", env.tiny, "--ids", "-p", sub, "--score", "--json", NULL);
    test_expect_ok(&window);
    Json a, w;
    const JsonValue *lp = get(parse_json(&a, all.out.data, all.out.len), "logprobs");
    const JsonValue *lw = get(parse_json(&w, window.out.data, window.out.len), "logprobs");
    assert_int_equal(gpt2_json_count(lp), 300);
    for (size_t i = 1; i < 300; i++) assert_int_equal(gpt2_json_at(lp, i)->type, JSON_NUMBER);
    for (size_t j = 160; j < 240; j++)
        assert_true(gpt2_json_number(gpt2_json_at(lp, j)) == gpt2_json_number(gpt2_json_at(lw, j - 80)));
    gpt2_json_free(&a.doc), gpt2_json_free(&w.doc);
    test_run_free(&all), test_run_free(&window);
    free(sub);
    gpt2_strbuf_free(&ids);
}

/* ---- tokens ---------------------------------------------------------------------- */

static void test_tokenize_detokenize_round_trip_any_bytes(void **state) {
    (void)state;
    NEED_FIXTURE();
    char bytes[3000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof bytes; i++) {
        x = x * 1103515245u + 12345u;
        static const char words[] = "The caf\xc3\xa9 na\xc3\xafve \xe2\x82\xac 42\n";
        bytes[i] = i % 3 ? (char)((x >> 16) & 0xFF) : words[i % 20];
    }
    RunSpec in = {.stdin_bytes = bytes, .stdin_len = sizeof bytes};
    RunResult ids, back;
    gpt2(&ids, &in, "-m", env.tiny, "--tokenize", NULL);
    test_expect_ok(&ids);
    assert_int_equal(count_lines(&ids.out), 1);
    RunSpec again = {.stdin_bytes = ids.out.data, .stdin_len = ids.out.len};
    gpt2(&back, &again, "-m", env.tiny, "--detokenize", NULL);
    test_expect_ok(&back);
    assert_int_equal(back.out.len, sizeof bytes);
    assert_memory_equal(back.out.data, bytes, sizeof bytes);
    test_run_free(&ids), test_run_free(&back);

    /* <|endoftext|> is text unless --special. */
    RunResult plain, special;
    gpt2(&plain, NULL, "-m", env.tiny, "--tokenize", "-p", "a<|endoftext|>b", NULL);
    gpt2(&special, NULL, "-m", env.tiny, "--tokenize", "--special", "-p", "a<|endoftext|>b", NULL);
    assert_string_equal(plain.out.data, "64 27 91 437 1659 5239 91 29 65\n");
    assert_string_equal(special.out.data, "64 50256 65\n");
    test_run_free(&plain), test_run_free(&special);
}

/* ---- the errors of a filter -------------------------------------------------------- */

static void test_closed_pipe_ends_quietly(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunSpec spec = {.close_stdout_after = 1};
    RunResult r;
    gpt2(&r, &spec, "-m", env.tiny, "-p", "x", "-n", "100000", "--ignore-eos", NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.err.len, 0);
    test_run_free(&r);
}

static void test_full_disk_is_an_error(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunSpec spec = {.stdout_path = "/dev/full"};
    RunResult r;
    gpt2(&r, &spec, "-m", env.tiny, "-p", "x", "-n", "20", NULL);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err.data, "No space left"));
    test_run_free(&r);
    gpt2(&r, &spec, "-m", env.tiny, "-p", "x", "-n", "5", "--json", NULL);
    assert_int_equal(r.status, 1);
    test_run_free(&r);
    gpt2(&r, &spec, "-m", env.tiny, "--help", NULL);
    assert_int_equal(r.status, 1);
    test_run_free(&r);
}

static void test_ctrl_c_stops_cleanly(void **state) {
    (void)state;
    NEED_FIXTURE();
    RunSpec spec = {.interrupt_after = 20};
    RunResult r;
    gpt2(&r, &spec, "-m", env.tiny, "-p", "x", "-n", "1000000", "--ignore-eos", NULL);
    assert_int_equal(r.status, 130);
    assert_true(r.out.len >= 20);
    assert_null(strstr(r.err.data, "ERROR")); /* no sanitizer report */
    test_run_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_documents_every_option),
        cmocka_unit_test(test_usage_errors_exit_2_with_one_line),
        cmocka_unit_test(test_model_from_option_environment_or_default),
        cmocka_unit_test(test_prompt_sources),
        cmocka_unit_test(test_p_never_reads_stdin),
        cmocka_unit_test(test_ids_and_empty_prompt),
        cmocka_unit_test(test_greedy_matches_reference),
        cmocka_unit_test(test_defaults_and_sampling_settings),
        cmocka_unit_test(test_seed_repeats_a_run_on_any_thread_count),
        cmocka_unit_test(test_stops_at_end_of_text_unless_ignored),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_context_edges),
        cmocka_unit_test(test_context_shift_keeps_newest_half),
        cmocka_unit_test(test_long_generation_in_bounded_memory),
        cmocka_unit_test(test_output_text_json_echo_verbose),
        cmocka_unit_test(test_batch_equals_single_runs),
        cmocka_unit_test(test_batch_shares_prefixes),
        cmocka_unit_test(test_batch_duplicate_and_nul_keys),
        cmocka_unit_test(test_score_text_and_json),
        cmocka_unit_test(test_score_long_text_with_sliding_windows),
        cmocka_unit_test(test_tokenize_detokenize_round_trip_any_bytes),
        cmocka_unit_test(test_closed_pipe_ends_quietly),
        cmocka_unit_test(test_full_disk_is_an_error),
        cmocka_unit_test(test_ctrl_c_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
