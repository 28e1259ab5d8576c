/* fileio.c - see fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static bool too_big(const char *what, size_t max, char *err, size_t errsz) {
    if (max >= (1u << 20)) snprintf(err, errsz, "%s: more than %zu MiB, the limit for this file", what, max >> 20);
    else snprintf(err, errsz, "%s: more than %zu KiB, the limit for this file", what, max >> 10);
    return false;
}

bool gpt2_fileio_read_stream(FILE *f, const char *what, StrBuf *out, char *err, size_t errsz) {
    return gpt2_fileio_read_stream_max(f, what, SIZE_MAX, out, err, errsz);
}

bool gpt2_fileio_read_stream_max(FILE *f, const char *what, size_t max, StrBuf *out, char *err, size_t errsz) {
    const size_t start = out->len;
    for (;;) {
        if (out->len - start > max) return too_big(what, max, err, errsz);
        if (!gpt2_strbuf_reserve(out, 1 << 16)) {
            snprintf(err, errsz, "%s: out of memory", what);
            return false;
        }
        size_t got = fread(out->data + out->len, 1, out->cap - out->len - 1, f);
        out->len += got;
        out->data[out->len] = '\0';
        if (got == 0) break;
    }
    if (ferror(f)) {
        snprintf(err, errsz, "%s: read error: %s", what, strerror(errno));
        return false;
    }
    return true;
}

bool gpt2_fileio_read_file(const char *path, StrBuf *out, char *err, size_t errsz) {
    return gpt2_fileio_read_file_max(path, SIZE_MAX, out, err, errsz);
}

bool gpt2_fileio_read_file_max(const char *path, size_t max, StrBuf *out, char *err, size_t errsz) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
        fclose(f);
        return too_big(path, max, err, errsz);
    }
    bool ok = gpt2_fileio_read_stream_max(f, path, max, out, err, errsz);
    fclose(f);
    return ok;
}

/* The one message for a file that this process cannot map whole: larger
 * than a size_t (32 bits), or than the address space left (ulimit -v). */
static void say_too_large(char *err, size_t errsz, off_t size) {
    snprintf(err, errsz, "the file (%.1f GiB) is too large to map in this process's address space",
             (double)size / (1u << 30));
}

bool gpt2_fileio_map(const char *path, const char *what, const void **bytes, size_t *n, char *err, size_t errsz) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer.  A regular file ignores it. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open: %s", strerror(errno));
        return false;
    }
    struct stat st;
    bool ok = false;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errsz, "cannot read: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errsz,
                 S_ISDIR(st.st_mode) ? "is a directory, not %s"
                                     : "not a regular file (a device, FIFO or socket), not %s",
                 what);
    } else if ((uintmax_t)st.st_size > SIZE_MAX) {
        say_too_large(err, errsz, st.st_size);
    } else if (st.st_size == 0) {
        *bytes = "";
        *n = 0;
        ok = true;
    } else {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED && errno == ENOMEM) {
            say_too_large(err, errsz, st.st_size);
        } else if (p == MAP_FAILED) {
            snprintf(err, errsz, "cannot map the file: %s", strerror(errno));
        } else {
#ifdef MADV_HUGEPAGE
            /* Decoding streams every weight once per token.  Where the kernel
             * can back the mapping with 2 MiB pages (file pages read in after
             * this advice), the hardware prefetchers are not stopped at every
             * 4 KiB boundary: one thread decodes 3-7% faster on the Zen 5
             * this was measured on.  Only advice: the bytes are the same
             * whatever the kernel does with it. */
            (void)madvise(p, (size_t)st.st_size, MADV_HUGEPAGE);
#endif
            *bytes = p;
            *n = (size_t)st.st_size;
            ok = true;
        }
    }
    close(fd);
    return ok;
}

void gpt2_fileio_unmap(const void *bytes, size_t n) {
    if (n) munmap((void *)bytes, n);
}

/* The touch reads bytes that another thread may be writing (fileio.h):
 * the value read is thrown away, and the loads are atomic, but the writes
 * are plain stores, so ThreadSanitizer would call it a race.  It is told
 * not to watch this function. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define FILEIO_UNWATCHED __attribute__((no_sanitize("thread")))
#endif
#endif
#ifndef FILEIO_UNWATCHED
#define FILEIO_UNWATCHED
#endif

FILEIO_UNWATCHED void gpt2_fileio_touch(const void *p, size_t n) {
    const uintptr_t page = 4096;
    const unsigned char *q = p, *const end = q + n;
    if (n == 0) return;
    volatile unsigned char sink = __atomic_load_n(q, __ATOMIC_RELAXED);
    for (q += page - (uintptr_t)q % page; q < end; q += page) sink ^= __atomic_load_n(q, __ATOMIC_RELAXED);
    (void)sink;
}

/* Tables from this size on get a mapping of their own, in units of a huge
 * page (x86-64's and arm64's 2 MiB with 4 KiB pages). */
#define TABLE_MAP_MIN ((size_t)1 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

#if defined(__linux__) && defined(MADV_HUGEPAGE)
#define TABLE_MAPS 1
#else
#define TABLE_MAPS 0
#endif

static bool table_mapped(size_t n) { return TABLE_MAPS && n >= TABLE_MAP_MIN; }

static size_t table_map_bytes(size_t n) { return (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }

void *gpt2_fileio_alloc_table(size_t n) {
    if (!table_mapped(n)) return calloc(1, n ? n : 1);
#if TABLE_MAPS
    if (n > SIZE_MAX - 2 * HUGE_PAGE) return NULL;
    /* One huge page more than needed, then the ends cut off so that what
     * is kept starts on a huge page's boundary. */
    const size_t len = table_map_bytes(n);
    uint8_t *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uint8_t *p = raw + (HUGE_PAGE - (uintptr_t)raw % HUGE_PAGE) % HUGE_PAGE;
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (p + len < raw + len + HUGE_PAGE) munmap(p + len, (size_t)(raw + len + HUGE_PAGE - (p + len)));
    madvise(p, len, MADV_HUGEPAGE); /* a hint: without it the table is the same, in 4 KiB pages */
    return p;
#else
    return NULL;
#endif
}

void gpt2_fileio_free_table(void *p, size_t n) {
    if (!p) return;
    if (table_mapped(n)) munmap(p, table_map_bytes(n));
    else free(p);
}
