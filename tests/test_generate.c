/* test_generate.c - the generation loop through gpt2.h.
 *
 * What the command line cannot see: the chunks of streamed text (never
 * inside a UTF-8 character, never past a stop string), that a completion
 * comes out the same alone or in any batch, that stream_only keeps nothing
 * but streams everything, how cancelling ends completions, and that shared
 * prompt prefixes are evaluated once without changing a result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2.h"
#include "test_util.h"
#include "utf8.h"

static char model_dir[4096];
static char model_path[4200];

static int setup(void **state) {
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) return 0;
    test_mkdtemp(model_dir, sizeof model_dir);
    snprintf(model_path, sizeof model_path, "%s/tiny.bin", model_dir);
    test_convert_reference(shared, "tiny", "f32", model_path);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (model_dir[0]) test_rmtree(model_dir);
    return 0;
}

static Gpt2 *open_tiny(uint32_t n_batch, int threads) {
    if (!model_dir[0]) return NULL;
    char err[512];
    Gpt2Options o = {.n_threads = threads, .n_batch = n_batch};
    Gpt2 *g = gpt2_open(model_path, &o, err, sizeof err);
    if (!g) fail_msg("%s", err);
    return g;
}

#define OPEN_OR_SKIP(g, batch, threads)                                                                                \
    Gpt2 *g = open_tiny(batch, threads);                                                                               \
    if (!g) {                                                                                                          \
        skip();                                                                                                        \
        return;                                                                                                        \
    }

static int32_t *tokenize(Gpt2 *g, const char *text, size_t *n) {
    int32_t *ids;
    char err[256];
    if (!gpt2_tokenize(g, text, strlen(text), false, &ids, n, err, sizeof err)) fail_msg("%s", err);
    return ids;
}

/* ---- streamed chunks ---------------------------------------------------------- */

typedef struct {
    StrBuf text[8]; /* what each completion streamed */
    size_t chunks[8];
    bool done[8];
    bool ends_inside[8]; /* the text so far ends inside a character */
    bool split_char;     /* a chunk came after one that ended inside a character */
    size_t stop_after;   /* on_text returns false after this many chunks (0: never) */
    size_t total_chunks;
} Collector;

static bool collect(void *ctx, size_t index, const char *bytes, size_t n) {
    Collector *c = ctx;
    assert_true(index < 8);
    assert_false(c->done[index]);
    assert_true(n > 0);
    /* Only the very last chunk may end inside a character (the completion
     * ended there); any chunk after such a one means a split. */
    if (c->ends_inside[index]) c->split_char = true;
    assert_true(gpt2_strbuf_append(&c->text[index], bytes, n));
    c->chunks[index]++;
    c->total_chunks++;
    c->ends_inside[index] = gpt2_utf8_incomplete_tail((const uint8_t *)c->text[index].data, c->text[index].len) > 0;
    return !(c->stop_after && c->total_chunks >= c->stop_after);
}

static void collect_done(void *ctx, size_t index) {
    Collector *c = ctx;
    c->done[index] = true;
}

static void free_collector(Collector *c) {
    for (int i = 0; i < 8; i++) gpt2_strbuf_free(&c->text[i]);
}

/* Sampling at a high temperature meets many tokens that are parts of
 * characters (the vocabulary has 344); streaming must hold them back until
 * the character is whole, and the bytes must be exactly the tokens'. */
static void test_stream_never_splits_a_character(void **state) {
    (void)state;
    OPEN_OR_SKIP(g, 1, 1);
    size_t n;
    int32_t *prompt = tokenize(g, "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80", &n);
    size_t split_tokens = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        Collector col = {0};
        Gpt2Completion c = {.prompt = prompt, .n_prompt = n, .params = gpt2_default_params()};
        c.params.n_predict = 200;
        c.params.ignore_eos = true;
        c.params.sampling.temperature = 3.0f;
        c.params.sampling.top_k = 0;
        c.params.sampling.seed = seed;
        Gpt2Callbacks cb = {collect, collect_done, &col, NULL};
        char err[256];
        assert_true(gpt2_generate(g, &c, 1, &cb, err, sizeof err));
        assert_true(col.done[0]);
        /* Streamed bytes equal the completion's text and its tokens' bytes. */
        assert_int_equal(col.text[0].len, c.text_len);
        assert_memory_equal(col.text[0].data, c.text, c.text_len);
        StrBuf joined = {0};
        for (size_t i = 0; i < c.n_tokens; i++) {
            size_t len;
            const char *b = gpt2_token_bytes(g, c.tokens[i], &len);
            assert_true(gpt2_strbuf_append(&joined, b, len));
            uint32_t cp;
            if (len && gpt2_utf8_decode((const uint8_t *)b, len, &cp) == 0) split_tokens++;
        }
        assert_int_equal(joined.len, c.text_len);
        assert_memory_equal(joined.data, c.text, c.text_len);
        assert_false(col.split_char);
        gpt2_strbuf_free(&joined);
        gpt2_completion_free(&c);
        free_collector(&col);
    }
    assert_true(split_tokens > 0); /* the test did meet partial characters */
    free(prompt);
    gpt2_close(g);
}

/* A stop string is never streamed, even in part, and the text ends just
 * before it. */
static void test_stop_string_is_held_back(void **state) {
    (void)state;
    OPEN_OR_SKIP(g, 1, 1);
    size_t n;
    int32_t *prompt = tokenize(g, "Hello, my dog is very cute", &n);
    /* Greedy: "% intelligent deterrent reasonably maybe reasonably Ace ..." */
    Gpt2Bytes stops[] = {{"never appears", 13}, {"ably m", 6}};
    Gpt2Completion c = {.prompt = prompt, .n_prompt = n, .params = gpt2_default_params()};
    c.params.n_predict = 20;
    c.params.sampling.temperature = 0;
    c.params.stops = stops;
    c.params.n_stops = 2;
    Collector col = {0};
    Gpt2Callbacks cb = {collect, collect_done, &col, NULL};
    char err[256];
    assert_true(gpt2_generate(g, &c, 1, &cb, err, sizeof err));
    assert_int_equal(c.finish, GPT2_FINISH_STOP);
    assert_string_equal(c.text, "% intelligent deterrent reason");
    assert_string_equal(col.text[0].data, c.text);
    assert_true(col.chunks[0] >= 3); /* it streamed, in pieces */
    gpt2_completion_free(&c);
    free_collector(&col);
    free(prompt);
    gpt2_close(g);
}

/* ---- batches ------------------------------------------------------------------ */

static void fill_requests(Gpt2 *g, Gpt2Completion *c, int32_t **prompts, size_t count) {
    static const char *const texts[] = {"Once upon a time",           "",
                                        "The quick brown fox",        "x",
                                        "Hello, my dog is very cute", "1 2 3 4 5 6 7 8 9 10",
                                        "\xc3\xa9t\xc3\xa9",          "In the beginning"};
    for (size_t i = 0; i < count; i++) {
        size_t n;
        prompts[i] = tokenize(g, texts[i], &n);
        c[i] = (Gpt2Completion){.prompt = prompts[i], .n_prompt = n, .params = gpt2_default_params()};
        c[i].params.n_predict = (uint32_t)(10 + 37 * i % 90);
        c[i].params.sampling.seed = 100 + i;
        c[i].params.sampling.temperature = i % 3 == 0 ? 0.0f : 0.9f;
        c[i].params.sampling.top_p = i % 2 ? 0.9f : 1.0f;
        c[i].params.ignore_eos = true;
    }
}

/* Each completion comes out the same alone, in a batch of 3 or of 8, on
 * one thread or three. */
static void test_batch_composition_never_changes_a_result(void **state) {
    (void)state;
    enum { N = 8 };
    Gpt2Completion alone[N], batched[N];
    int32_t *prompts[N];
    OPEN_OR_SKIP(single, 1, 1);
    fill_requests(single, alone, prompts, N);
    char err[256];
    for (size_t i = 0; i < N; i++) assert_true(gpt2_generate(single, &alone[i], 1, NULL, err, sizeof err));
    gpt2_close(single);
    const struct {
        uint32_t batch;
        int threads;
    } setups[] = {{3, 1}, {8, 3}, {5, 2}};
    for (size_t s = 0; s < 3; s++) {
        Gpt2 *g = open_tiny(setups[s].batch, setups[s].threads);
        int32_t *unused[N];
        fill_requests(g, batched, unused, N);
        assert_true(gpt2_generate(g, batched, N, NULL, err, sizeof err));
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(batched[i].n_tokens, alone[i].n_tokens);
            assert_memory_equal(batched[i].tokens, alone[i].tokens, alone[i].n_tokens * sizeof(int32_t));
            assert_int_equal(batched[i].finish, alone[i].finish);
            gpt2_completion_free(&batched[i]);
            free(unused[i]);
        }
        gpt2_close(g);
    }
    for (size_t i = 0; i < N; i++) {
        gpt2_completion_free(&alone[i]);
        free(prompts[i]);
    }
}

/* ---- stream_only, n_predict 0, cancelling --------------------------------------- */

static void test_stream_only_keeps_nothing_but_streams_everything(void **state) {
    (void)state;
    OPEN_OR_SKIP(g, 1, 1);
    size_t n;
    int32_t *prompt = tokenize(g, "Once upon a time", &n);
    Gpt2Completion kept = {.prompt = prompt, .n_prompt = n, .params = gpt2_default_params()};
    kept.params.n_predict = 400; /* past the context of 160, twice */
    kept.params.ignore_eos = true;
    kept.params.sampling.seed = 5;
    Gpt2Completion streamed = kept;
    streamed.stream_only = true;
    Collector col = {0};
    Gpt2Callbacks cb = {collect, collect_done, &col, NULL};
    char err[256];
    assert_true(gpt2_generate(g, &kept, 1, NULL, err, sizeof err));
    assert_true(gpt2_generate(g, &streamed, 1, &cb, err, sizeof err));
    assert_null(streamed.tokens);
    assert_null(streamed.text);
    assert_int_equal(streamed.n_tokens, 400);
    assert_int_equal(kept.n_tokens, 400);
    assert_int_equal(col.text[0].len, kept.text_len);
    assert_memory_equal(col.text[0].data, kept.text, kept.text_len);
    gpt2_completion_free(&kept);
    gpt2_completion_free(&streamed);
    free_collector(&col);
    free(prompt);
    gpt2_close(g);
}

static void test_zero_tokens_and_cancelling(void **state) {
    (void)state;
    OPEN_OR_SKIP(g, 2, 1);
    char err[256];
    Gpt2Completion none = {.params = gpt2_default_params()};
    none.params.n_predict = 0;
    assert_true(gpt2_generate(g, &none, 1, NULL, err, sizeof err));
    assert_int_equal(none.finish, GPT2_FINISH_LENGTH);
    assert_int_equal(none.n_tokens, 0);
    assert_string_equal(none.text, "");
    gpt2_completion_free(&none);

    /* on_text refusing ends every running completion as cancelled, and
     * the ones never started are cancelled too. */
    Gpt2Completion c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (Gpt2Completion){.params = gpt2_default_params()};
        c[i].params.n_predict = 1000;
        c[i].params.ignore_eos = true;
        c[i].params.sampling.seed = (uint64_t)i;
    }
    Collector col = {.stop_after = 5};
    Gpt2Callbacks cb = {collect, collect_done, &col, NULL};
    assert_true(gpt2_generate(g, c, 4, &cb, err, sizeof err));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].finish, GPT2_FINISH_CANCELLED);
        assert_true(c[i].n_tokens < 1000);
        gpt2_completion_free(&c[i]);
    }
    free_collector(&col);

    /* The cancel flag does the same. */
    volatile sig_atomic_t cancel = 1;
    Gpt2Completion one = {.params = gpt2_default_params()};
    Gpt2Callbacks flag = {NULL, NULL, NULL, &cancel};
    assert_true(gpt2_generate(g, &one, 1, &flag, err, sizeof err));
    assert_int_equal(one.finish, GPT2_FINISH_CANCELLED);
    gpt2_completion_free(&one);
    gpt2_close(g);
}

/* ---- shared prefixes ------------------------------------------------------------ */

static size_t common_prefix(const Gpt2Completion *a, const Gpt2Completion *b) {
    size_t i = 0;
    while (i < a->n_prompt && i < b->n_prompt && a->prompt[i] == b->prompt[i]) i++;
    return i;
}

/* Completions whose prompts share a prefix (a few-shot header, or the same
 * prompt with other seeds) evaluate it once, in one batch or one after
 * another, and come out exactly as they do alone. */
static void test_shared_prefixes_change_nothing(void **state) {
    (void)state;
    enum { N = 7 };
    static const char *const texts[N] = {
        "Q: What is the capital of France? A: Paris. Q: What is two and two? A: four. Q: Who wrote Hamlet? A:",
        "Q: What is the capital of France? A: Paris. Q: What is two and two? A: four. Q: What colour is the sky? A:",
        "Q: What is the capital of France? A: Paris. Q: What is two and two? A: four.",
        "Q: What is the capital of France? A: Paris. Q: What is two and two? A: four.",
        "Q: What is the capital of France? A: Paris. Q: What is two and two? A: four.",
        "An unrelated prompt",
        "Q: What is the capital of France? A: Paris. Q: What is two and two? A: four. Q: Who wrote Hamlet? A:",
    };
    OPEN_OR_SKIP(tok, 1, 1);
    int32_t *prompts[N];
    Gpt2Completion alone[N], batched[N];
    for (size_t i = 0; i < N; i++) {
        size_t n;
        prompts[i] = tokenize(tok, texts[i], &n);
        alone[i] = (Gpt2Completion){.prompt = prompts[i], .n_prompt = n, .params = gpt2_default_params()};
        alone[i].params.n_predict = 12;
        alone[i].params.sampling.seed = 40 + i;
        alone[i].params.ignore_eos = true;
    }
    gpt2_close(tok);
    char err[256];
    for (size_t i = 0; i < N; i++) { /* each on a fresh model: nothing to share */
        Gpt2 *g = open_tiny(1, 1);
        assert_true(gpt2_generate(g, &alone[i], 1, NULL, err, sizeof err));
        assert_int_equal(alone[i].n_prompt_evaluated, alone[i].n_prompt);
        gpt2_close(g);
    }
    const uint32_t batches[] = {N, 3, 1};
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        Gpt2 *g = open_tiny(batches[b], 2);
        for (size_t i = 0; i < N; i++)
            batched[i] =
                (Gpt2Completion){.prompt = alone[i].prompt, .n_prompt = alone[i].n_prompt, .params = alone[i].params};
        assert_true(gpt2_generate(g, batched, N, NULL, err, sizeof err));
        size_t evaluated = 0, total = 0;
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(batched[i].n_tokens, alone[i].n_tokens);
            assert_memory_equal(batched[i].tokens, alone[i].tokens, alone[i].n_tokens * sizeof(int32_t));
            assert_int_equal(batched[i].text_len, alone[i].text_len);
            assert_memory_equal(batched[i].text, alone[i].text, alone[i].text_len);
            assert_int_equal(batched[i].finish, alone[i].finish);
            evaluated += batched[i].n_prompt_evaluated;
            total += batched[i].n_prompt;
            if (batches[b] == N) { /* all start at once: each waits for the longest prefix started before it */
                size_t shared = 0;
                for (size_t j = 0; j < i; j++) {
                    size_t len = common_prefix(&batched[i], &batched[j]);
                    if (len > shared) shared = len;
                }
                if (shared == batched[i].n_prompt) shared--; /* the last token gives the logits */
                assert_int_equal(batched[i].n_prompt_evaluated, batched[i].n_prompt - shared);
            }
        }
        /* The identical prompts 3 and 4 follow 2 (and 6 follows 0): each
         * evaluates its last token only. */
        assert_int_equal(batched[3].n_prompt_evaluated, 1);
        assert_int_equal(batched[4].n_prompt_evaluated, 1);
        assert_true(evaluated < total - 3 * (size_t)(batched[2].n_prompt - 1));
        printf("batch of %u: %zu of %zu prompt tokens evaluated\n", batches[b], evaluated, total);
        for (size_t i = 0; i < N; i++) gpt2_completion_free(&batched[i]);
        /* A later call finds the prefix still there. */
        Gpt2Completion again = {.prompt = alone[6].prompt, .n_prompt = alone[6].n_prompt, .params = alone[6].params};
        assert_true(gpt2_generate(g, &again, 1, NULL, err, sizeof err));
        assert_int_equal(again.n_prompt_evaluated, 1);
        assert_memory_equal(again.tokens, alone[6].tokens, alone[6].n_tokens * sizeof(int32_t));
        gpt2_completion_free(&again);
        gpt2_close(g);
    }
    for (size_t i = 0; i < N; i++) {
        gpt2_completion_free(&alone[i]);
        free(prompts[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_never_splits_a_character),
        cmocka_unit_test(test_stop_string_is_held_back),
        cmocka_unit_test(test_batch_composition_never_changes_a_result),
        cmocka_unit_test(test_stream_only_keeps_nothing_but_streams_everything),
        cmocka_unit_test(test_zero_tokens_and_cancelling),
        cmocka_unit_test(test_shared_prefixes_change_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
