/* test_batch.c - `gpt2 --batch` as a stream.
 *
 * A line is answered as soon as it and every line before it are done,
 * also when standard input is a pipe that stays open; after Ctrl-C every
 * line read gets exactly one output line (its result, its error, or
 * cancelled) and the status is 130; a closed output pipe ends the run
 * quietly; memory does not grow with the number of lines; and the GNU
 * parallel recipe of the README gives what one run gives (the last two are
 * slow tests, run when GPT2_SLOW_TESTS=1).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "test_util.h"

static char dir[4096], tiny[4200], gpt2[4200];

static int setup(void **state) {
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) return 0;
    test_mkdtemp(dir, sizeof dir);
    snprintf(tiny, sizeof tiny, "%s/tiny.bin", dir);
    test_convert_reference(shared, "tiny", "f32", tiny);
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

/* The output lines of r, each parsed; fails on anything that is not one
 * JSON object per line. */
typedef struct {
    JsonDoc doc[64];
    size_t n;
} Lines;

static void parse_lines(const StrBuf *out, Lines *l) {
    memset(l, 0, sizeof *l);
    const char *s = out->data, *end = out->data + out->len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) fail_msg("output ends without a newline: %s", s);
        assert_true(l->n < 64);
        char err[256];
        if (!gpt2_json_parse(&l->doc[l->n], s, (size_t)(nl - s), err, sizeof err))
            fail_msg("output line %zu is not JSON (%s): %.*s", l->n + 1, err, (int)(nl - s), s);
        assert_int_equal(l->doc[l->n].root->type, JSON_OBJECT);
        l->n++;
        s = nl + 1;
    }
}

static void free_lines(Lines *l) {
    for (size_t i = 0; i < l->n; i++) gpt2_json_free(&l->doc[i]);
}

/* What output line i says: 'r' a result, 'c' cancelled (with "line": i+1),
 * 'e' an error naming line i+1. */
static char kind_of(const Lines *l, size_t i) {
    const JsonValue *root = l->doc[i].root;
    const JsonValue *error = gpt2_json_get(root, "error");
    if (!error) {
        assert_non_null(gpt2_json_get(root, "completion_tokens"));
        return 'r';
    }
    if (gpt2_json_string_is(error, "cancelled")) {
        const JsonValue *line = gpt2_json_get(root, "line");
        assert_non_null(line);
        assert_int_equal((size_t)gpt2_json_number(line), i + 1);
        return 'c';
    }
    char want[32];
    snprintf(want, sizeof want, "line %zu: ", i + 1);
    const char *msg = gpt2_json_string(error, NULL);
    if (!msg || strncmp(msg, want, strlen(want)) != 0) fail_msg("output line %zu: error \"%s\"", i + 1, msg);
    return 'e';
}

/* ---- a slow pipe ------------------------------------------------------------ */

/* Reads from fd into out until it holds a newline, the end comes, or
 * `seconds` pass; true when a newline came. */
static bool read_until_newline(int fd, StrBuf *out, int seconds) {
    time_t deadline = time(NULL) + seconds;
    while (!memchr(out->data ? out->data : "", '\n', out->len)) {
        if (time(NULL) > deadline) return false;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;
        char buf[4096];
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        assert_true(gpt2_strbuf_append(out, buf, (size_t)got));
    }
    return true;
}

/* `--batch -` answers the first line while standard input stays open and
 * the second line has not been written. */
static void test_answers_each_line_of_a_slow_pipe(void **state) {
    (void)state;
    NEED_FIXTURE();
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execl(gpt2, gpt2, "-m", tiny, "--batch", "-", "-n", "5", "--seed", "1", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    signal(SIGPIPE, SIG_IGN);
    const char first[] = "{\"prompt\": \"Hello\"}\n", second[] = "{\"prompt\": \"World\"}\n";
    assert_int_equal(write(in[1], first, strlen(first)), (ssize_t)strlen(first));
    StrBuf got = {0};
    bool answered = read_until_newline(out[0], &got, 60);
    if (!answered) kill(pid, SIGKILL);
    assert_true(answered); /* while the pipe is open and the second line unwritten */
    assert_int_equal(write(in[1], second, strlen(second)), (ssize_t)strlen(second));
    close(in[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) assert_true(gpt2_strbuf_append(&got, buf, (size_t)n));
    close(out[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    Lines l;
    parse_lines(&got, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(kind_of(&l, 0), 'r');
    assert_int_equal(kind_of(&l, 1), 'r');
    assert_true(gpt2_json_string_is(gpt2_json_get(l.doc[1].root, "prompt"), "World"));
    free_lines(&l);
    gpt2_strbuf_free(&got);
}

/* ---- Ctrl-C ----------------------------------------------------------------- */

/* Lines that finished, lines still running, lines not yet started and
 * malformed lines: after Ctrl-C each has exactly one output line, in order,
 * and the status is 130. */
static void test_ctrl_c_answers_every_line(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf input = {0};
    enum { N = 20 };
    char want[N]; /* 'r' finished, 'c' cancelled, 'e' malformed, '?' finished or cancelled */
    for (size_t i = 1; i <= N; i++) {
        if (i == 4 || i == 12) {
            assert_true(gpt2_strbuf_append_str(&input, "{\"prompt\": oops\n"));
            want[i - 1] = 'e';
        } else if (i == 5 || i == 6) { /* never end by themselves */
            assert_true(
                gpt2_strbuf_printf(&input, "{\"prompt\": \"run %zu\", \"n\": 4000000000, \"ignore_eos\": true}\n", i));
            want[i - 1] = 'c';
        } else {
            assert_true(gpt2_strbuf_printf(&input, "{\"prompt\": \"line %zu\", \"n\": 3}\n", i));
            want[i - 1] = i == 1 ? 'r' : i < 5 ? '?' : 'c';
        }
    }
    RunSpec spec = {.stdin_bytes = input.data, .stdin_len = input.len, .interrupt_after = 1};
    const char *argv[] = {gpt2, "-m", tiny, "--batch", "-", "--batch-size", "2", "--seed", "3", NULL};
    RunResult r;
    test_run(argv, &spec, &r);
    assert_int_equal(r.status, 130);
    assert_null(strstr(r.err.data, "ERROR")); /* no sanitizer report */
    Lines l;
    parse_lines(&r.out, &l);
    assert_int_equal(l.n, N);
    for (size_t i = 0; i < N; i++) {
        char k = kind_of(&l, i);
        if (want[i] == '?' ? k == 'e' : k != want[i]) fail_msg("line %zu: '%c', want '%c'", i + 1, k, want[i]);
    }
    free_lines(&l);
    test_run_free(&r);
    gpt2_strbuf_free(&input);
}

/* ---- a closed output pipe ------------------------------------------------- */

static void test_closed_pipe_ends_quietly(void **state) {
    (void)state;
    NEED_FIXTURE();
    StrBuf input = {0};
    for (size_t i = 0; i < 200; i++)
        assert_true(gpt2_strbuf_printf(&input, "{\"prompt\": \"line %zu\", \"n\": 200}\n", i));
    RunSpec spec = {.stdin_bytes = input.data, .stdin_len = input.len, .close_stdout_after = 1};
    const char *argv[] = {gpt2, "-m", tiny, "--batch", "-", NULL};
    RunResult r;
    test_run(argv, &spec, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.err.len, 0);
    test_run_free(&r);
    gpt2_strbuf_free(&input);
}

/* ---- bounded memory ----------------------------------------------------------- */

static long peak_rss_kib(size_t n_lines) {
    char path[4400];
    snprintf(path, sizeof path, "%s/lines-%zu.jsonl", dir, n_lines);
    /* Prompts of words from a small set, different on every line: the
     * tokenizer's word cache (bounded, about 2 MiB) fills the same in both
     * runs, as it does with real text. */
    static const char *const words[] = {"apple", "river", "stone", "cloud", "seven", "green", "quiet", "table"};
    StrBuf input = {0};
    for (size_t i = 0; i < n_lines; i++)
        assert_true(gpt2_strbuf_printf(&input, "{\"prompt\": \"%s %s %s %s\", \"n\": 2}\n", words[i % 8],
                                       words[i / 8 % 8], words[i / 64 % 8], words[i / 512 % 8]));
    test_write_file(path, input.data, input.len);
    gpt2_strbuf_free(&input);
    const char *argv[] = {gpt2, "-m", tiny, "--batch", path, "-t", "1", NULL};
    RunResult r;
    test_run(argv, NULL, &r);
    assert_int_equal(r.status, 0);
    long rss = r.max_rss_kib;
    size_t count = 0;
    for (size_t i = 0; i < r.out.len; i++) count += r.out.data[i] == '\n';
    assert_int_equal(count, n_lines);
    test_run_free(&r);
    return rss;
}

/* Peak memory for 10,000 lines is within 10% of that for 100 lines. */
static void test_memory_does_not_grow_with_lines(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *slow = getenv("GPT2_SLOW_TESTS");
    if (!slow || strcmp(slow, "1") != 0) {
        printf("skipped: set GPT2_SLOW_TESTS=1 to run the 10,000-line memory test\n");
        skip();
        return;
    }
    long small = peak_rss_kib(100), large = peak_rss_kib(10000);
    printf("peak RSS: 100 lines %ld KiB, 10000 lines %ld KiB\n", small, large);
    if ((double)large > 1.10 * (double)small)
        fail_msg("10000 lines peaked at %ld KiB, more than 10%% over the %ld KiB of 100 lines", large, small);
}

/* ---- GNU parallel --------------------------------------------------------------- */

/* The program's path on $PATH, or false. */
static bool on_path(const char *name, char *out, size_t outsz) {
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        snprintf(out, outsz, "%.*s/%s", (int)len, path, name);
        if (access(out, X_OK) == 0) return true;
        path += len + (end != NULL);
    }
    return false;
}

/* The output with every "timings" member cut out. */
static void without_timings(const StrBuf *in, StrBuf *out) {
    memset(out, 0, sizeof *out);
    const char *s = in->data, *end = in->data + in->len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        assert_non_null(nl);
        const char *t = strstr(s, ",\"timings\":");
        size_t keep = t && t < nl ? (size_t)(t - s) : (size_t)(nl - s);
        assert_true(gpt2_strbuf_append(out, s, keep) && gpt2_strbuf_append_char(out, '\n'));
        s = nl + 1;
    }
}

/* The README's recipe, `parallel --pipe --keep-order -j 2 gpt2 --batch -
 * --seed S`, gives what one run over the whole file gives, but for the
 * timings: with --seed every line without a seed of its own uses S. */
static void test_gnu_parallel_recipe_equals_one_run(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *slow = getenv("GPT2_SLOW_TESTS");
    char parallel[4200];
    if (!slow || strcmp(slow, "1") != 0) {
        printf("skipped: set GPT2_SLOW_TESTS=1 to run the GNU parallel recipe\n");
        skip();
        return;
    }
    if (!on_path("parallel", parallel, sizeof parallel)) {
        printf("skipped: GNU parallel is not installed (apt-get install parallel)\n");
        skip();
        return;
    }
    StrBuf input = {0};
    for (size_t i = 0; i < 23; i++) {
        if (i % 7 == 3)
            assert_true(gpt2_strbuf_printf(&input, "{\"prompt\": \"own seed %zu\", \"seed\": %zu}\n", i, i));
        else if (i == 11) assert_true(gpt2_strbuf_append_str(&input, "not json\n"));
        else assert_true(gpt2_strbuf_printf(&input, "{\"prompt\": \"Line %zu says\", \"n\": %zu}\n", i, 3 + i % 5));
    }
    RunSpec spec = {.stdin_bytes = input.data, .stdin_len = input.len};
    const char *one_argv[] = {gpt2, "-m", tiny, "--batch", "-", "--seed", "7", "-t", "1", NULL};
    const char *par_argv[] = {parallel, "--will-cite", "--pipe", "--keep-order", "-j", "2",  "-N", "5", gpt2, "-m",
                              tiny,     "--batch",     "-",      "--seed",       "7",  "-t", "1",  NULL};
    RunResult one, par;
    test_run(one_argv, &spec, &one);
    test_run(par_argv, &spec, &par);
    assert_int_equal(one.status, 0);
    if (par.status != 0) fail_msg("parallel: exit %d: %s", par.status, par.err.data);
    StrBuf a, b;
    without_timings(&one.out, &a);
    without_timings(&par.out, &b);
    /* Error lines name their line in the chunk, not in the file: compare
     * only results. */
    Lines la, lb;
    parse_lines(&one.out, &la);
    parse_lines(&par.out, &lb);
    assert_int_equal(la.n, 23);
    assert_int_equal(lb.n, 23);
    free_lines(&la), free_lines(&lb);
    const char *x = a.data, *y = b.data;
    for (size_t i = 0; i < 23; i++) {
        const char *xn = strchr(x, '\n'), *yn = strchr(y, '\n');
        bool error = strncmp(x, "{\"error\"", 8) == 0;
        assert_int_equal(error, strncmp(y, "{\"error\"", 8) == 0);
        if (!error && (xn - x != yn - y || memcmp(x, y, (size_t)(xn - x)) != 0))
            fail_msg("line %zu: one run %.*s, parallel %.*s", i + 1, (int)(xn - x), x, (int)(yn - y), y);
        x = xn + 1, y = yn + 1;
    }
    gpt2_strbuf_free(&a), gpt2_strbuf_free(&b), gpt2_strbuf_free(&input);
    test_run_free(&one), test_run_free(&par);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_each_line_of_a_slow_pipe),
        cmocka_unit_test(test_ctrl_c_answers_every_line),
        cmocka_unit_test(test_closed_pipe_ends_quietly),
        cmocka_unit_test(test_memory_does_not_grow_with_lines),
        cmocka_unit_test(test_gnu_parallel_recipe_equals_one_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
