/* test_interactive.c - gpt2 -i: a text written in turns.
 *
 * Without a terminal each line of standard input is a turn, and every turn
 * must give exactly what a single run on the whole text so far gives (the
 * keys and values kept between turns change nothing), evaluating only the
 * new tokens.  In a pseudo-terminal the test types as a person would: it
 * waits for the prompt, types a line, presses Ctrl-C in the middle of a
 * continuation and Ctrl-D at the end (slow: only with GPT2_SLOW_TESTS=1).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "test_util.h"

static char dir[4096], tiny[4200], gpt2_path[4200];

static int setup(void **state) {
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) return 0;
    test_mkdtemp(dir, sizeof dir);
    snprintf(tiny, sizeof tiny, "%s/tiny.bin", dir);
    snprintf(gpt2_path, sizeof gpt2_path, "%s/gpt2", test_build_dir());
    test_convert_reference(shared, "tiny", "f32", tiny);
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

#define PROMPT "Hello, my dog is very cute"

/* Runs gpt2 --json on token ids and appends the completion's ids and text. */
static void single_run(const StrBuf *ids, StrBuf *out_ids, StrBuf *out_text, const char *seed) {
    const char *argv[] = {gpt2_path, "-m", tiny,           "--ids",  "-p",     ids->data, "-n", "12",
                          "--temp",  "0",  "--ignore-eos", "--json", "--seed", seed,      NULL};
    RunResult r;
    test_run(argv, NULL, &r);
    if (r.status != 0) fail_msg("exit %d: %s", r.status, r.err.data);
    JsonDoc doc;
    char err[256];
    if (!gpt2_json_parse(&doc, r.out.data, r.out.len, err, sizeof err)) fail_msg("%s", err);
    const JsonValue *tokens = gpt2_json_get(doc.root, "completion_tokens");
    for (size_t i = 0; i < gpt2_json_count(tokens); i++)
        assert_true(gpt2_strbuf_printf(out_ids, " %.0f", gpt2_json_number(gpt2_json_at(tokens, i))));
    size_t len;
    const char *text = gpt2_json_string(gpt2_json_get(doc.root, "completion"), &len);
    assert_true(gpt2_strbuf_append(out_text, text, len));
    gpt2_json_free(&doc);
    test_run_free(&r);
}

/* The ids of text, appended to ids (" 1 2 3"). */
static void tokenize(const char *text, StrBuf *ids) {
    const char *argv[] = {gpt2_path, "-m", tiny, "--tokenize", NULL};
    RunSpec spec = {.stdin_bytes = text, .stdin_len = strlen(text)};
    RunResult r;
    test_run(argv, &spec, &r);
    assert_int_equal(r.status, 0);
    if (r.out.len && r.out.data[r.out.len - 1] == '\n') r.out.data[--r.out.len] = '\0';
    if (r.out.len) assert_true(gpt2_strbuf_printf(ids, " %s", r.out.data));
    test_run_free(&r);
}

/* Without a terminal: the prompt, then each line with the prefix and
 * suffix, each continuation what a single run on the tokens so far gives,
 * with seed S + turn; standard output is the whole text; only new tokens
 * are evaluated. */
static void test_lines_without_a_terminal(void **state) {
    (void)state;
    NEED_FIXTURE();
    const char *input = "first line\nsecond line\n";
    const char *argv[] = {gpt2_path, "-m",          tiny, "-i",           "-p",     PROMPT, "-n",
                          "12",      "--temp",      "0",  "--ignore-eos", "--seed", "5",    "--in-prefix",
                          "Q: ",     "--in-suffix", "A:", "-v",           NULL};
    RunSpec spec = {.stdin_bytes = input, .stdin_len = strlen(input)};
    RunResult r;
    test_run(argv, &spec, &r);
    if (r.status != 0) fail_msg("exit %d: %s", r.status, r.err.data);

    StrBuf ids = {0}, text = {0};
    tokenize(PROMPT, &ids);
    assert_true(gpt2_strbuf_append_str(&text, PROMPT));
    static const char *const lines[] = {"first line\n", "second line\n"};
    static const char *const seeds[] = {"5", "6", "7"};
    for (int turn = 0; turn < 3; turn++) {
        single_run(&ids, &ids, &text, seeds[turn]);
        if (turn == 2) break;
        tokenize("Q: ", &ids);
        tokenize(lines[turn], &ids);
        tokenize("A:", &ids);
        assert_true(gpt2_strbuf_printf(&text, "Q: %sA:", lines[turn]));
    }
    assert_int_equal(r.out.len, text.len);
    assert_memory_equal(r.out.data, text.data, text.len);
    /* Turns after the first evaluate the new tokens only: the last one
     * generated, and the prefix, line and suffix. */
    assert_non_null(strstr(r.err.data, "turn 0: 7 of 7 prompt tokens evaluated"));
    const char *t1 = strstr(r.err.data, "turn 1: "), *t2 = strstr(r.err.data, "turn 2: ");
    assert_non_null(t1), assert_non_null(t2);
    unsigned evaluated, used;
    assert_int_equal(sscanf(t1, "turn 1: %u of %u", &evaluated, &used), 2);
    assert_true(evaluated <= 10 && used > 20);
    assert_int_equal(sscanf(t2, "turn 2: %u of %u", &evaluated, &used), 2);
    assert_true(evaluated <= 10 && used > 35);
    gpt2_strbuf_free(&ids), gpt2_strbuf_free(&text);
    test_run_free(&r);

    /* No prompt: the first line starts the text.  End of input: exit 0. */
    const char *argv2[] = {gpt2_path, "-m", tiny, "-i", "-n", "3", "--seed", "1", NULL};
    RunSpec one = {.stdin_bytes = "x", .stdin_len = 1};
    test_run(argv2, &one, &r);
    assert_int_equal(r.status, 0);
    assert_true(r.out.len > 1 && r.out.data[0] == 'x');
    test_run_free(&r);
    /* --help and the man page show the options with their defaults. */
    const char *help[] = {gpt2_path, "--help", NULL};
    test_run(help, NULL, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "-i, --interactive"));
    assert_non_null(strstr(r.out.data, "--in-prefix TEXT"));
    assert_non_null(strstr(r.out.data, "--in-suffix TEXT"));
    test_run_free(&r);
    /* Usage errors. */
    static const char *const bad[][3] = {
        {"-i", "--json"}, {"-i", "--samples", "2"}, {"--in-prefix", "x"}, {"-i", "-f", "-"}, {"-i", "--score"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *a[] = {gpt2_path, "-m", tiny, bad[i][0], bad[i][1], bad[i][2], NULL};
        test_run(a, NULL, &r);
        test_expect_refusal(&r, 2, "gpt2: ", NULL);
        test_run_free(&r);
    }
}

/* ---- in a pseudo-terminal ------------------------------------------------------------ */

typedef struct {
    int fd;
    pid_t pid;
    StrBuf seen; /* everything the terminal showed */
} Pty;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void pty_start(Pty *p, const char *const argv[]) {
    memset(p, 0, sizeof *p);
    p->pid = forkpty(&p->fd, NULL, NULL, NULL);
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
}

/* Reads what the terminal shows until `want` appears after byte `from` (or,
 * with want NULL, until `bytes` more bytes came); fails after 60 s. */
static size_t pty_wait(Pty *p, size_t from, const char *want, size_t bytes) {
    double deadline = now_s() + 60;
    for (;;) {
        if (p->seen.len > from) {
            if (want) {
                const char *at = strstr(p->seen.data + from, want);
                if (at) return (size_t)(at - p->seen.data) + strlen(want);
            } else if (p->seen.len - from >= bytes) {
                return p->seen.len;
            }
        }
        if (now_s() > deadline)
            fail_msg("waited for \"%s\"; the terminal shows: %s", want ? want : "output", p->seen.data);
        struct pollfd pfd = {p->fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0) continue;
        char buf[4096];
        ssize_t n = read(p->fd, buf, sizeof buf);
        if (n <= 0) fail_msg("the terminal closed; it showed: %s", p->seen.data);
        assert_true(gpt2_strbuf_append(&p->seen, buf, (size_t)n));
    }
}

static void pty_type(Pty *p, const char *keys) {
    size_t n = strlen(keys);
    assert_int_equal(write(p->fd, keys, n), (ssize_t)n);
}

/* Reads the rest and returns the exit status; fails if the program has not
 * ended within 30 s. */
static int pty_finish(Pty *p) {
    char buf[4096];
    double deadline = now_s() + 30;
    int status;
    for (;;) {
        pid_t done = waitpid(p->pid, &status, WNOHANG);
        assert_true(done >= 0);
        if (done == p->pid) break;
        if (now_s() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            fail_msg("the program did not end; the terminal shows: %s", p->seen.data);
        }
        struct pollfd pfd = {p->fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0) continue;
        ssize_t n = read(p->fd, buf, sizeof buf);
        if (n > 0) assert_true(gpt2_strbuf_append(&p->seen, buf, (size_t)n));
    }
    close(p->fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool slow_tests(void) {
    const char *v = getenv("GPT2_SLOW_TESTS");
    if (v && strcmp(v, "1") == 0) return true;
    printf("skipping the pseudo-terminal test: set GPT2_SLOW_TESTS=1 to run it\n");
    return false;
}

/* The prompt's continuation, a Ctrl-C in it, three typed turns (each also
 * stopped with Ctrl-C, as nothing else ends them; the last while the
 * terminal, unread for half a second, holds gpt2's write back), then
 * Ctrl-D: exit 0. */
static void test_typing_in_a_terminal(void **state) {
    (void)state;
    NEED_FIXTURE();
    if (!slow_tests()) {
        skip();
        return;
    }
    const char *argv[] = {gpt2_path,   "-m",     tiny, "-i", "-p",           PROMPT, "-n",
                          "100000000", "--temp", "0",  "-v", "--ignore-eos", NULL};
    Pty p;
    pty_start(&p, argv);
    size_t at = pty_wait(&p, 0, PROMPT, 0);
    at = pty_wait(&p, at, NULL, 200); /* the continuation is under way */
    pty_type(&p, "\x03");
    at = pty_wait(&p, at, "finish: cancelled", 0);
    at = pty_wait(&p, at, "> ", 0);
    static const char *const lines[] = {"first line", "second line", "third line"};
    for (int turn = 1; turn <= 3; turn++) {
        pty_type(&p, lines[turn - 1]);
        pty_type(&p, "\n");
        char want[64];
        snprintf(want, sizeof want, "turn %d: ", turn);
        at = pty_wait(&p, at, lines[turn - 1], 0); /* the terminal's echo (its newline is \r\n) */
        at = pty_wait(&p, at, NULL, 200);
        /* A Ctrl-C that cuts a write short ends the turn, not the session. */
        if (turn == 3) usleep(500 * 1000);
        pty_type(&p, "\x03");
        at = pty_wait(&p, at, want, 0);
        at = pty_wait(&p, at, "finish: cancelled", 0);
        at = pty_wait(&p, at, "> ", 0);
    }
    pty_type(&p, "\x04");
    int status = pty_finish(&p);
    if (status != 0) fail_msg("exit %d after Ctrl-D; the terminal showed: %s", status, p.seen.data);
    gpt2_strbuf_free(&p.seen);

    /* Ctrl-C at the prompt ends the program with 130. */
    const char *argv2[] = {gpt2_path, "-m", tiny, "-i", "-n", "5", NULL};
    pty_start(&p, argv2);
    pty_wait(&p, 0, "> ", 0);
    pty_type(&p, "\x03");
    status = pty_finish(&p);
    if (status != 130) fail_msg("exit %d after Ctrl-C at the prompt; the terminal showed: %s", status, p.seen.data);
    gpt2_strbuf_free(&p.seen);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_without_a_terminal),
        cmocka_unit_test(test_typing_in_a_terminal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
