/* test_util.c - see test_util.h. */
#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    if (!read_whole_file(path, out, err, sizeof err)) fail_msg("%s", err);
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
        if (is_dir(path)) test_rmtree(path);
        else unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

const char *test_build_dir(void) {
    const char *env = getenv("GPT2_BUILD_DIR");
    return env && *env ? env : ".";
}
