/* test_util.h - what every test needs: cmocka, the shared fixtures, files.
 *
 * Shared data (../shared beside the checkout) is found through GPT2_SHARED.
 * When GPT2_SHARED is set, the folder must exist and a test fails without
 * it.  When it is unset, the default is ../shared beside the source tree;
 * if that is missing the test says that it skipped and why.
 */
#ifndef GPT2_TEST_UTIL_H
#define GPT2_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the three headers above first. */
#include <cmocka.h>

#include "strbuf.h"

/* The shared data folder, or NULL after printing why the test skips (the
 * caller then calls skip()).  Fails the test when GPT2_SHARED names a
 * folder that does not exist. */
const char *test_shared_dir(void);

/* Skips the current test when the shared folder is absent; otherwise
 * declares `const char *var` holding its path. */
#define REQUIRE_SHARED(var)                                                                                            \
    const char *var = test_shared_dir();                                                                               \
    if (!var) {                                                                                                        \
        skip();                                                                                                        \
        return;                                                                                                        \
    }

/* "dir/name" in a static-per-call buffer owned by the caller. */
void test_path(char *out, size_t outsz, const char *dir, const char *name);

/* Reads a whole file, or writes bytes[0..n) as a whole file; fails the
 * test if that fails. */
void test_read_file(const char *path, StrBuf *out);
void test_write_file(const char *path, const void *bytes, size_t n);

/* A fresh empty directory under $TMPDIR (or /tmp), removed by
 * test_rmtree. */
void test_mkdtemp(char *out, size_t outsz);
void test_rmtree(const char *dir);

/* Whether the folder of out_path holds a temporary file of a model writer
 * for it (out_path.partial...). */
bool test_has_partial(const char *out_path);

/* The build directory holding the gpt2 and gpt2-convert binaries: $GPT2_BUILD_DIR,
 * else the one the tests were built in. */
const char *test_build_dir(void);

/* Converts the Hugging Face folder hf_dir with the built gpt2-convert into
 * out_path, weights as dtype ("f32", "q8_0", ...), the tokenizer from
 * shared/gpt2; fails the test, with gpt2-convert's message, if that fails.
 * test_convert_reference converts shared/reference/NAME (tiny or small). */
void test_convert(const char *hf_dir, const char *shared, const char *dtype, const char *out_path);
void test_convert_reference(const char *shared, const char *name, const char *dtype, const char *out_path);

/* How to run a program (test_run). */
typedef struct {
    const char *stdin_bytes; /* fed to its standard input, then closed; NULL: /dev/null */
    size_t stdin_len;
    const char *stdout_path;   /* standard output goes to this file (e.g. /dev/full); NULL: captured */
    size_t close_stdout_after; /* close the captured output after this many bytes (0: read it all) */
    size_t interrupt_after;    /* send SIGINT once this many bytes of output came (0: never) */
    const char *const *env;    /* extra "NAME=value" entries, NULL-terminated; may be NULL */
} RunSpec;

typedef struct {
    int status;       /* exit status, or 128 + signal number when killed */
    StrBuf out, err;  /* captured standard output and error */
    long max_rss_kib; /* peak resident memory of the program */
} RunResult;

/* Runs argv (argv[0] a path) as the spec says and waits for it.  Fails
 * the test if it cannot be started or runs for more than five minutes. */
void test_run(const char *const argv[], const RunSpec *spec, RunResult *r);

/* test_run of the program at path with the arguments after it, up to a
 * NULL (at most TEST_MAX_ARGS); spec may be NULL. */
#define TEST_MAX_ARGS 64
void test_run_args(RunResult *r, const RunSpec *spec, const char *path, ...);
void test_run_va(RunResult *r, const RunSpec *spec, const char *path, va_list ap);

/* Fails the test, with its standard error, unless r exited with 0. */
void test_expect_ok(const RunResult *r);
void test_run_free(RunResult *r);

/* A refusal as our tools give it: exit status `status`, nothing on
 * standard output, exactly one line on standard error, starting with
 * `prefix` ("gpt2: ") and containing `phrase` (unless NULL). */
void test_expect_refusal(const RunResult *r, int status, const char *prefix, const char *phrase);

#endif
