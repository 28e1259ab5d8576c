/* test_util.c - see test_util.h. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"

#ifndef GPT2_SOURCE_DIR
#define GPT2_SOURCE_DIR "."
#endif

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *test_shared_dir(void) {
    static char path[4096];
    const char *env = getenv("GPT2_SHARED");
    if (env && *env) {
        if (!is_dir(env)) fail_msg("GPT2_SHARED=%s is not a folder", env);
        snprintf(path, sizeof path, "%s", env);
        return path;
    }
    snprintf(path, sizeof path, "%s/../shared", GPT2_SOURCE_DIR);
    if (is_dir(path)) return path;
    fprintf(stderr, "SKIPPED: the shared test data is missing (%s); set GPT2_SHARED to its folder\n", path);
    return NULL;
}

void test_path(char *out, size_t outsz, const char *dir, const char *name) {
    int n = snprintf(out, outsz, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < outsz);
}

void test_read_file(const char *path, StrBuf *out) {
    char err[512];
    if (!gpt2_fileio_read_file(path, out, err, sizeof err)) fail_msg("%s", err);
}

void test_write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s: %s", path, strerror(errno));
    if (fwrite(bytes, 1, n, f) != n || fclose(f) != 0) fail_msg("cannot write %s: %s", path, strerror(errno));
}

void test_mkdtemp(char *out, size_t outsz) {
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(out, outsz, "%s/gpt2-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_true(n > 0 && (size_t)n < outsz);
    if (!mkdtemp(out)) fail_msg("mkdtemp %s failed", out);
}

void test_rmtree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st; /* lstat: a link is removed, never followed */
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) test_rmtree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

const char *test_build_dir(void) {
    const char *env = getenv("GPT2_BUILD_DIR");
    return env && *env ? env : GPT2_BINARY_DIR; /* the programs beside the tests, from any directory */
}

void test_convert(const char *hf_dir, const char *shared, const char *dtype, const char *out_path) {
    char convert[4200], tokenizer[4200];
    snprintf(convert, sizeof convert, "%s/gpt2-convert", test_build_dir());
    snprintf(tokenizer, sizeof tokenizer, "%s/gpt2", shared);
    const char *argv[] = {convert, hf_dir, out_path, "--tokenizer", tokenizer, "--dtype", dtype, "-q", NULL};
    RunResult r;
    test_run(argv, NULL, &r);
    if (r.status != 0) fail_msg("gpt2-convert %s failed (status %d): %s", hf_dir, r.status, r.err.data);
    test_run_free(&r);
}

void test_convert_reference(const char *shared, const char *name, const char *dtype, const char *out_path) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/reference/%s", shared, name);
    test_convert(dir, shared, dtype, out_path);
}

/* ---- running programs ---------------------------------------------------- */

extern char **environ;

static void child(const char *const argv[], const RunSpec *spec, int in_fd, int out_fd, int err_fd) {
    dup2(in_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    for (const char *const *e = spec->env; e && *e; e++) putenv((char *)*e);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

static void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void test_run_va(RunResult *r, const RunSpec *spec, const char *path, va_list ap) {
    const char *argv[TEST_MAX_ARGS + 2] = {path};
    size_t n = 1;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        if (n > TEST_MAX_ARGS) fail_msg("more than %d arguments", TEST_MAX_ARGS);
        argv[n++] = a;
    }
    argv[n] = NULL;
    test_run(argv, spec, r);
}

void test_run_args(RunResult *r, const RunSpec *spec, const char *path, ...) {
    va_list ap;
    va_start(ap, path);
    test_run_va(r, spec, path, ap);
    va_end(ap);
}

void test_expect_ok(const RunResult *r) {
    if (r->status != 0) fail_msg("exit %d, stderr: %s", r->status, r->err.data);
}

void test_run(const char *const argv[], const RunSpec *spec, RunResult *r) {
    static const RunSpec none = {0};
    if (!spec) spec = &none;
    memset(r, 0, sizeof *r);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2];
    if (spec->stdin_bytes) assert_int_equal(pipe(in), 0);
    else in[0] = open("/dev/null", O_RDONLY);
    if (spec->stdout_path) out[1] = open(spec->stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    else assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    assert_true(in[0] >= 0 && out[1] >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (in[1] >= 0) close(in[1]);
        if (out[0] >= 0) close(out[0]);
        close(err[0]);
        child(argv, spec, in[0], out[1], err[1]);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    signal(SIGPIPE, SIG_IGN); /* the child may stop reading its input */

    size_t fed = 0;
    int fds[3] = {in[1], out[0], err[0]};
    if (fds[0] >= 0) set_nonblocking(fds[0]);
    bool interrupted = false;
    time_t deadline = time(NULL) + 300; /* a slow build (portable, sanitizers) on a loaded machine */
    for (;;) {
        if (fds[0] >= 0 && fed == spec->stdin_len) {
            close(fds[0]);
            fds[0] = -1;
        }
        struct pollfd p[3];
        int n = 0;
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0) p[n++] = (struct pollfd){fds[i], (short)(i == 0 ? POLLOUT : POLLIN), 0};
        if (n == 0) break;
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            fail_msg("%s ran for more than five minutes", argv[0]);
        }
        if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR) fail_msg("poll failed");
        for (int k = 0; k < n; k++) {
            if (!p[k].revents) continue;
            int i = p[k].fd == fds[0] ? 0 : p[k].fd == fds[1] ? 1 : 2;
            if (i == 0) {
                ssize_t w = write(fds[0], spec->stdin_bytes + fed, spec->stdin_len - fed);
                if (w > 0) fed += (size_t)w;
                else if (w < 0 && errno != EAGAIN) fed = spec->stdin_len; /* the child closed it */
                continue;
            }
            char buf[65536];
            ssize_t got = read(fds[i], buf, sizeof buf);
            if (got <= 0) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            StrBuf *dst = i == 1 ? &r->out : &r->err;
            assert_true(gpt2_strbuf_append(dst, buf, (size_t)got));
            if (i == 1 && spec->interrupt_after && !interrupted && r->out.len >= spec->interrupt_after) {
                kill(pid, SIGINT);
                interrupted = true;
            }
            if (i == 1 && spec->close_stdout_after && r->out.len >= spec->close_stdout_after) {
                close(fds[1]);
                fds[1] = -1;
            }
        }
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) fail_msg("wait4 failed");
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r->max_rss_kib = ru.ru_maxrss;
    if (!r->out.data) gpt2_strbuf_reserve(&r->out, 0);
    if (!r->err.data) gpt2_strbuf_reserve(&r->err, 0);
}

void test_run_free(RunResult *r) {
    gpt2_strbuf_free(&r->out);
    gpt2_strbuf_free(&r->err);
}

void test_expect_refusal(const RunResult *r, int status, const char *prefix, const char *phrase) {
    if (r->status != status) fail_msg("exit status %d, expected %d; stderr: %s", r->status, status, r->err.data);
    if (r->out.len != 0) fail_msg("a refusal wrote to stdout: %s", r->out.data);
    const char *nl = strchr(r->err.data, '\n');
    if (!nl || nl != r->err.data + r->err.len - 1) fail_msg("stderr is not one line: \"%s\"", r->err.data);
    if (strncmp(r->err.data, prefix, strlen(prefix)) != 0)
        fail_msg("stderr does not start \"%s\": %s", prefix, r->err.data);
    if (phrase && !strstr(r->err.data, phrase)) fail_msg("stderr lacks \"%s\": %s", phrase, r->err.data);
}

bool test_has_partial(const char *out_path) {
    char dir[4096], prefix[4200];
    const char *slash = strrchr(out_path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out_path) : 1, slash ? out_path : ".");
    snprintf(prefix, sizeof prefix, "%s.partial", slash ? slash + 1 : out_path);
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) found = true;
    closedir(d);
    return found;
}
