/* test_cli_hostile.c - the gpt2 program under hostile conditions: signals
 * that interrupt blocked I/O, a model file that shrinks while in use, a
 * context or a model file too large for the machine, and huge inputs under
 * a small address space.
 *
 * These drive the program with a harness of their own (not test_run) so
 * that they can wait until the child really is blocked, as the kernel
 * reports it in /proc, before acting: no test here depends on timing.
 */
#define _GNU_SOURCE /* F_GETPIPE_SZ */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "gpt2.h"
#include "model_format.h"
#include "test_util.h"

typedef struct {
    char dir[4096];
    char model[4200]; /* a small random model with a synthetic vocabulary */
    char gpt2[4200];  /* the binary */
    char stderr_path[4200];
} Env;

static Env env;

static int setup(void **state) {
    (void)state;
    test_mkdtemp(env.dir, sizeof env.dir);
    snprintf(env.gpt2, sizeof env.gpt2, "%s/gpt2", test_build_dir());
    test_path(env.model, sizeof env.model, env.dir, "model.bin");
    test_path(env.stderr_path, sizeof env.stderr_path, env.dir, "stderr.txt");
    ModelConfig c = {
        .n_vocab = 500, .n_ctx = 64, .n_embd = 32, .n_layer = 2, .n_head = 2, .dtype = DTYPE_F32, .ln_eps = 1e-5f};
    char err[512];
    if (!gpt2_convert_random(&c, 3, NULL, env.model, NULL, err, sizeof err)) fail_msg("gpt2_convert_random: %s", err);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    test_rmtree(env.dir);
    return 0;
}

/* ---- a child we can watch ------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int in;  /* its standard input's write end, or -1 (then it reads /dev/null) */
    int out; /* its standard output's read end */
} Child;

/* The child's address space limit in bytes (RLIMIT_AS), 0 for none. */
static size_t child_as_limit;

/* Starts argv with stdout a pipe and stderr env.stderr_path; stdin a pipe
 * when want_stdin, else /dev/null.  extra_env: "NAME=value" or NULL. */
static Child spawn(const char *const argv[], bool want_stdin, const char *extra_env) {
    int in[2] = {-1, -1}, out[2];
    if (want_stdin) assert_int_equal(pipe(in), 0);
    else in[0] = open("/dev/null", O_RDONLY);
    assert_int_equal(pipe(out), 0);
    int err = open(env.stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(in[0] >= 0 && err >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        if (in[1] >= 0) close(in[1]);
        close(out[0]);
        if (extra_env) putenv((char *)extra_env);
        if (child_as_limit) {
            struct rlimit rl = {child_as_limit, child_as_limit};
            setrlimit(RLIMIT_AS, &rl);
        }
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err);
    return (Child){pid, in[1], out[0]};
}

/* The exit status, or -signal when it was killed.  A child still running
 * after two minutes is killed and the test fails. */
static int wait_child(Child *c) {
    int status;
    for (int i = 0;; i++) {
        pid_t got = waitpid(c->pid, &status, WNOHANG);
        if (got == c->pid) break;
        if (got < 0 && errno != EINTR) fail_msg("waitpid failed");
        if (i == 12000) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            fail_msg("the child did not end within two minutes");
        }
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    if (c->in >= 0) close(c->in);
    close(c->out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static void read_stderr(StrBuf *out) {
    gpt2_strbuf_clear(out);
    test_read_file(env.stderr_path, out);
}

/* Line `key` of /proc/PID/status, or "" */
static void proc_status_line(pid_t pid, const char *key, char *out, size_t outsz) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) snprintf(out, outsz, "%s", line + strlen(key));
    fclose(f);
}

/* Whether the child's main thread sleeps in the kernel (state S) with a
 * handler installed for SIGINT: it is then blocked in a system call, and a
 * SIGINT interrupts that call.  Under an emulator (qemu-user runs the
 * 32-bit build in CI) the emulator catches every signal from its start, so
 * SigCgt says nothing of the program's own handler: a test must also wait
 * for something the program does only after installing it. */
static bool blocked_catching_sigint(pid_t pid) {
    char state[64], caught[64];
    proc_status_line(pid, "State:", state, sizeof state);
    proc_status_line(pid, "SigCgt:", caught, sizeof caught);
    unsigned long long mask = strtoull(caught, NULL, 16);
    return strchr(state, 'S') && (mask >> (SIGINT - 1) & 1);
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (up to a minute) until cond(child) holds. */
static void wait_until(Child *c, bool (*cond)(Child *), const char *what) {
    for (int i = 0; i < 6000; i++) {
        if (cond(c)) return;
        pause_ms(10);
    }
    kill(c->pid, SIGKILL);
    fail_msg("the child never got %s", what);
}

static bool stdout_pipe_full(Child *c) {
    int queued = 0, size = fcntl(c->out, F_GETPIPE_SZ);
    return ioctl(c->out, FIONREAD, &queued) == 0 && size > 0 && queued >= size && blocked_catching_sigint(c->pid);
}

static bool blocked(Child *c) { return blocked_catching_sigint(c->pid); }

/* Reads the child's standard output until a whole line came (up to a
 * minute); fails the test when it ends first. */
static void wait_for_output_line(Child *c) {
    char buf[4096];
    for (int i = 0; i < 6000; i++) {
        int queued = 0;
        if (ioctl(c->out, FIONREAD, &queued) == 0 && queued > 0) {
            ssize_t n = read(c->out, buf, sizeof buf);
            if (n <= 0) break;
            if (memchr(buf, '\n', (size_t)n)) return;
            continue;
        }
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid) fail_msg("the child ended before its first output line");
        pause_ms(10);
    }
    kill(c->pid, SIGKILL);
    fail_msg("the child printed no output line");
}

/* ---- signals ------------------------------------------------------------------------ */

/* Ctrl-C while the output pipe is full and nobody reads it: the write is
 * interrupted, and the run ends as interrupted (130), not as a failed
 * write (1). */
static void test_sigint_while_blocked_on_a_full_pipe(void **state) {
    (void)state;
    char text[4200];
    test_path(text, sizeof text, env.dir, "big.txt");
    StrBuf big = {0};
    while (big.len < (1u << 20)) assert_true(gpt2_strbuf_append_str(&big, "hello world, this is some text. "));
    test_write_file(text, big.data, big.len);
    gpt2_strbuf_free(&big);

    const char *argv[] = {env.gpt2, "-m", env.model, "--tokenize", "-f", text, NULL};
    Child c = spawn(argv, false, NULL);
    wait_until(&c, stdout_pipe_full, "blocked on a full standard output");
    kill(c.pid, SIGINT);
    int status = wait_child(&c);
    StrBuf err = {0};
    read_stderr(&err);
    if (status != 130) fail_msg("exit %d, want 130; stderr: %s", status, err.data);
    assert_null(strstr(err.data, "error writing"));
    gpt2_strbuf_free(&err);
}

/* Ctrl-C while --batch - waits for its input: no read error, exit 130.
 * The first line's answer comes after the handler is in place; then the
 * program waits for the next line. */
static void test_sigint_while_batch_reads_stdin(void **state) {
    (void)state;
    const char *argv[] = {env.gpt2, "-m", env.model, "--batch", "-", NULL};
    Child c = spawn(argv, true, NULL);
    assert_int_equal(write(c.in, "{\"prompt\": \"a\", \"n\": 2}\n", 24), 24); /* and the pipe stays open */
    wait_for_output_line(&c);
    wait_until(&c, blocked, "blocked reading standard input");
    kill(c.pid, SIGINT);
    int status = wait_child(&c);
    StrBuf err = {0};
    read_stderr(&err);
    if (status != 130) fail_msg("exit %d, want 130; stderr: %s", status, err.data);
    assert_null(strstr(err.data, "read error"));
    gpt2_strbuf_free(&err);
}

/* ---- files that change underfoot ----------------------------------------------- */

static void copy_file(const char *from, const char *to) {
    StrBuf b = {0};
    test_read_file(from, &b);
    test_write_file(to, b.data, b.len);
    gpt2_strbuf_free(&b);
}

/* The model file is truncated while --batch runs over many lines: the
 * run ends with one line on stderr and status 1, and every output line it
 * printed is whole. */
static void test_model_file_shrinks_during_batch(void **state) {
    (void)state;
    char model[4200], batch[4200];
    test_path(model, sizeof model, env.dir, "shrinking.bin");
    test_path(batch, sizeof batch, env.dir, "many.jsonl");
    copy_file(env.model, model);
    StrBuf lines = {0};
    for (int i = 0; i < 20000; i++) assert_true(gpt2_strbuf_printf(&lines, "{\"prompt\": \"line %d\", \"n\": 8}\n", i));
    test_write_file(batch, lines.data, lines.len);
    gpt2_strbuf_free(&lines);

    const char *argv[] = {env.gpt2, "-m", model, "--batch", batch, "-t", "1", NULL};
    Child c = spawn(argv, false, NULL);
    StrBuf out = {0};
    bool truncated = false;
    char buf[65536];
    ssize_t got;
    while ((got = read(c.out, buf, sizeof buf)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            fail_msg("read: %s", strerror(errno));
        }
        assert_true(gpt2_strbuf_append(&out, buf, (size_t)got));
        if (!truncated && memchr(out.data, '\n', out.len)) { /* a first line is out: the weights are in use */
            assert_int_equal(truncate(model, 0), 0);
            truncated = true;
        }
    }
    int status = wait_child(&c);
    StrBuf err = {0};
    read_stderr(&err);
    if (status != 1) fail_msg("exit %d, want 1; stderr: %s", status, err.data);
    assert_string_equal(err.data, "gpt2: the model file changed or shrank while in use\n");
    /* Whole lines only: each ends with a newline and is a JSON object. */
    assert_true(out.len > 0 && out.data[out.len - 1] == '\n');
    size_t n_lines = 0;
    for (const char *p = out.data; p < out.data + out.len; n_lines++) {
        const char *nl = memchr(p, '\n', (size_t)(out.data + out.len - p));
        assert_true(nl[-1] == '}' && p[0] == '{');
        p = nl + 1;
    }
    assert_true(n_lines < 20000);
    gpt2_strbuf_free(&out);
    gpt2_strbuf_free(&err);
}

/* The tokenizer's tables are a private copy: rewriting them in the file
 * after the model is open changes nothing the tokenizer reads. */
static void test_tables_rewritten_in_place(void **state) {
    (void)state;
    char model[4200], msg[512];
    test_path(model, sizeof model, env.dir, "rewritten.bin");
    copy_file(env.model, model);
    Gpt2Options o = {.n_threads = 1};
    Gpt2 *g = gpt2_open(model, &o, msg, sizeof msg);
    if (!g) fail_msg("gpt2_open: %s", msg);
    const char *text = "hello world, rewritten underfoot";
    int32_t *before, *after;
    size_t n_before, n_after;
    assert_true(gpt2_tokenize(g, text, strlen(text), false, &before, &n_before, msg, sizeof msg));

    /* Every byte of the vocabulary and merge sections becomes 0xFF: offsets
     * far past the end, merges naming tokens that do not exist. */
    StrBuf file = {0};
    test_read_file(model, &file);
    int fd = open(model, O_WRONLY);
    assert_true(fd >= 0);
    for (Section s = SECTION_VOCAB; s <= SECTION_MERGES; s++) {
        uint64_t off, len;
        gpt2_model_section((const uint8_t *)file.data, s, &off, &len);
        char *junk = malloc(len ? len : 1);
        memset(junk, 0xFF, len);
        assert_int_equal(pwrite(fd, junk, len, (off_t)off), (ssize_t)len);
        free(junk);
    }
    close(fd);
    gpt2_strbuf_free(&file);

    assert_true(gpt2_tokenize(g, text, strlen(text), false, &after, &n_after, msg, sizeof msg));
    assert_int_equal(n_after, n_before);
    assert_memory_equal(after, before, n_before * sizeof *before);
    for (uint32_t id = 0; id < gpt2_info(g).n_vocab; id++) {
        size_t len;
        const char *bytes = gpt2_token_bytes(g, (int32_t)id, &len);
        assert_true(bytes && len >= 1 && len <= 64);
    }
    free(before);
    free(after);
    gpt2_close(g);
}

/* ---- sizes ------------------------------------------------------------------------------ */

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

/* Whether an address-space limit set in a child holds there: a child
 * limited to 256 MiB tries to map 512 MiB.  It does not under a user-mode
 * emulator (qemu ignores a guest's RLIMIT_AS, which would bind qemu
 * itself), where CI runs the 32-bit build; the tests that need the limit
 * say so and skip. */
static bool rlimit_as_holds(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {(rlim_t)256 << 20, (rlim_t)256 << 20};
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(1);
        void *p = mmap(NULL, (size_t)512 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        _exit(p == MAP_FAILED ? 0 : 1);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    printf("skipped: an address-space limit (RLIMIT_AS) does not hold here (an emulator?)\n");
    return false;
}

/* Whether a test of a refusal under an address-space limit can run here:
 * not under AddressSanitizer, which reserves terabytes of address space,
 * nor where the limit does not hold.  Says why when it cannot. */
static bool address_limit_testable(void) {
    if (UNDER_ASAN) {
        printf("skipped: AddressSanitizer cannot run under ulimit -v\n");
        return false;
    }
    return rlimit_as_holds();
}

/* Runs gpt2 -m model -p hi under limit bytes of address space: it must
 * end with status 1 and one line on stderr that holds want. */
static void expect_refused_under_limit(const char *model, size_t limit, const char *want) {
    const char *argv[] = {env.gpt2, "-m", model, "-p", "hi", "-n", "2", "-t", "1", NULL};
    child_as_limit = limit;
    Child ch = spawn(argv, false, NULL);
    child_as_limit = 0;
    int status = wait_child(&ch);
    StrBuf err = {0};
    read_stderr(&err);
    if (status != 1) fail_msg("exit %d, want 1; stderr: %s", status, err.data);
    if (!strstr(err.data, want)) fail_msg("stderr: %s", err.data);
    assert_int_equal(strchr(err.data, '\n') - err.data + 1, (long)err.len); /* one line */
    gpt2_strbuf_free(&err);
}

/* A valid model whose context (65536 positions, 64 layers) needs 1 GiB of
 * key/value cache per sequence, run where only 768 MiB may be reserved:
 * refused before anything is reserved, with the size in the message. */
static void test_cache_larger_than_memory(void **state) {
    (void)state;
    if (!address_limit_testable()) {
        skip();
        return;
    }
    char model[4200], msg[512];
    test_path(model, sizeof model, env.dir, "long-context.bin");
    ModelConfig c = {
        .n_vocab = 300, .n_ctx = 65536, .n_embd = 32, .n_layer = 64, .n_head = 1, .dtype = DTYPE_Q8_0, .ln_eps = 1e-5f};
    if (!gpt2_convert_random(&c, 5, NULL, model, NULL, msg, sizeof msg)) fail_msg("gpt2_convert_random: %s", msg);
    expect_refused_under_limit(model, (size_t)768 << 20,
                               "needs 1.0 GiB of key/value cache per sequence, more than this process may use");
    unlink(model);
}

/* A model file of 1 GiB (the small model, then holes) where only 512 MiB
 * may be reserved: one line that says the file cannot be mapped and why. */
static void test_file_larger_than_address_space(void **state) {
    (void)state;
    if (!address_limit_testable()) {
        skip();
        return;
    }
    char model[4200];
    test_path(model, sizeof model, env.dir, "holes.bin");
    copy_file(env.model, model);
    assert_int_equal(truncate(model, (off_t)1 << 30), 0);
    expect_refused_under_limit(model, (size_t)512 << 20,
                               "the file (1.0 GiB) is too large to map in this process's address space");
    unlink(model);
}

/* A valid model whose key/value cache is 8 GiB per sequence (n_ctx 65536,
 * 64 layers of 256): a 32-bit size_t cannot hold that, and the size must
 * be refused, not wrapped into a small allocation that the forward pass
 * then overruns.  A 64-bit build runs it (its cache is reserved, not
 * touched), or refuses it when the machine has less memory.  CI runs this
 * file in its 32-bit build. */
static void test_cache_size_wraps_32_bit(void **state) {
    (void)state;
    char model[4200], msg[512];
    test_path(model, sizeof model, env.dir, "wide-long-context.bin");
    ModelConfig c = {.n_vocab = 300,
                     .n_ctx = 65536,
                     .n_embd = 256,
                     .n_layer = 64,
                     .n_head = 4,
                     .dtype = DTYPE_Q8_0,
                     .ln_eps = 1e-5f};
    if (!gpt2_convert_random(&c, 5, NULL, model, NULL, msg, sizeof msg)) fail_msg("gpt2_convert_random: %s", msg);
    const char *argv[] = {env.gpt2, "-m", model, "-p", "hi", "-n", "1", "-t", "1", NULL};
    Child ch = spawn(argv, false, NULL);
    int status = wait_child(&ch);
    StrBuf err = {0};
    read_stderr(&err);
    printf("size_t of %zu bits: exit %d, stderr: %s\n", sizeof(size_t) * 8, status, err.data);
    if (sizeof(size_t) < 8) {
        if (status != 1 || !strstr(err.data, "needs 8.0 GiB of key/value cache per sequence, more than this machine "
                                             "can address"))
            fail_msg("exit %d, stderr: %s", status, err.data);
    } else if (status != 0 && !(status == 1 && strstr(err.data, "more than this machine has"))) {
        fail_msg("exit %d, stderr: %s", status, err.data);
    }
    gpt2_strbuf_free(&err);
    unlink(model);
}

/* ---- huge inputs under ulimit -v 512 MiB ------------------------------------------------ */

/* Slow (each writes and reads 50 to 100 MB), so only with GPT2_SLOW_TESTS=1;
 * and not under AddressSanitizer, which reserves terabytes of address
 * space and cannot run under an address-space limit. */
static bool huge_inputs_wanted(void) {
    const char *slow = getenv("GPT2_SLOW_TESTS");
    if (!slow || strcmp(slow, "1") != 0) {
        printf("skipped: huge inputs under ulimit -v run with GPT2_SLOW_TESTS=1\n");
        return false;
    }
    return address_limit_testable();
}

/* Runs argv under 512 MiB of address space with one thread's worth of
 * malloc arenas.  It must end by itself, not by a signal: with status 0,
 * or with status 1 and exactly one line on stderr. */
static int run_constrained(const char *const argv[], StrBuf *err) {
    child_as_limit = (size_t)512 << 20;
    Child c = spawn(argv, false, "MALLOC_ARENA_MAX=2");
    child_as_limit = 0;
    StrBuf out = {0};
    char buf[65536];
    ssize_t got;
    while ((got = read(c.out, buf, sizeof buf)) != 0)
        if (got > 0) assert_true(gpt2_strbuf_append(&out, buf, (size_t)got));
        else if (errno != EINTR) break;
    int status = wait_child(&c);
    read_stderr(err);
    printf("%s: exit %d, stderr: %s%s", argv[3], status, err->data, err->len ? "" : "\n");
    if (status < 0) fail_msg("%s %s: killed by signal %d; stderr: %s", argv[1], argv[3], -status, err->data);
    if (status != 0 && status != 1) fail_msg("exit %d; stderr: %s", status, err->data);
    if (status == 1) {
        const char *nl = strchr(err->data, '\n');
        if (!nl || (size_t)(nl - err->data) + 1 != err->len) fail_msg("not one line on stderr: %s", err->data);
    }
    gpt2_strbuf_free(&out);
    return status;
}

static void write_repeated(const char *path, const char *head, const char *unit, size_t total, const char *tail) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(head, f);
    size_t n = strlen(unit);
    for (size_t done = 0; done < total; done += n) fputs(unit, f);
    fputs(tail, f);
    assert_int_equal(fclose(f), 0);
}

/* A safetensors file whose header claims (and has) 100 MB. */
static void test_huge_safetensors_header(void **state) {
    (void)state;
    if (!huge_inputs_wanted()) return;
    REQUIRE_SHARED(shared);
    char dir[4200], path[4400], from[4400], out[4400];
    test_path(dir, sizeof dir, env.dir, "hf");
    assert_int_equal(mkdir(dir, 0755), 0);
    const char *copies[][2] = {{"reference/tiny/config.json", "config.json"},
                               {"gpt2/vocab.json", "vocab.json"},
                               {"gpt2/merges.txt", "merges.txt"}};
    for (int i = 0; i < 3; i++) {
        test_path(from, sizeof from, shared, copies[i][0]);
        test_path(path, sizeof path, dir, copies[i][1]);
        copy_file(from, path);
    }
    test_path(path, sizeof path, dir, "model.safetensors");
    const uint64_t hlen = 100u << 20;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(&hlen, 8, 1, f), 1); /* little-endian, as the format */
    fputc('{', f);
    for (uint64_t i = 1; i + 1 < hlen; i++) fputc(' ', f);
    fputc('}', f);
    assert_int_equal(fclose(f), 0);
    char convert[4200];
    snprintf(convert, sizeof convert, "%s/gpt2-convert", test_build_dir());
    test_path(out, sizeof out, env.dir, "out.bin");
    const char *argv[] = {convert, dir, out, "-q", NULL};
    StrBuf err = {0};
    assert_int_equal(run_constrained(argv, &err), 1);
    assert_non_null(strstr(err.data, "safetensors"));
    gpt2_strbuf_free(&err);
    test_rmtree(dir);
}

/* A 50 MB batch line [0,0,...]: an error object for the line, or one line. */
static void test_huge_batch_line(void **state) {
    (void)state;
    if (!huge_inputs_wanted()) return;
    char path[4200];
    test_path(path, sizeof path, env.dir, "huge.jsonl");
    write_repeated(path, "[", "0,", 50u << 20, "0]\n");
    const char *argv[] = {env.gpt2, "-m", env.model, "--batch", path, "-t", "1", NULL};
    StrBuf err = {0};
    run_constrained(argv, &err);
    gpt2_strbuf_free(&err);
    unlink(path);
}

/* A 50 MB prompt without a space: one pre-tokenized piece. */
static void test_huge_prompt_without_spaces(void **state) {
    (void)state;
    if (!huge_inputs_wanted()) return;
    char path[4200];
    test_path(path, sizeof path, env.dir, "huge.txt");
    write_repeated(path, "", "abcdefghijklmnopqrstuvwxyz", 50u << 20, "");
    const char *argv[] = {env.gpt2, "-m", env.model, "-f", path, "-n", "1", "-t", "1", NULL};
    StrBuf err = {0};
    run_constrained(argv, &err);
    gpt2_strbuf_free(&err);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigint_while_blocked_on_a_full_pipe),
        cmocka_unit_test(test_sigint_while_batch_reads_stdin),
        cmocka_unit_test(test_model_file_shrinks_during_batch),
        cmocka_unit_test(test_tables_rewritten_in_place),
        cmocka_unit_test(test_cache_larger_than_memory),
        cmocka_unit_test(test_file_larger_than_address_space),
        cmocka_unit_test(test_cache_size_wraps_32_bit),
        cmocka_unit_test(test_huge_safetensors_header),
        cmocka_unit_test(test_huge_batch_line),
        cmocka_unit_test(test_huge_prompt_without_spaces),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
