/* fileio.c - see fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <string.h>

bool read_whole_stream(FILE *f, const char *what, StrBuf *out, char *err, size_t errsz) {
    for (;;) {
        if (!strbuf_reserve(out, 1 << 16)) {
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

bool read_whole_file(const char *path, StrBuf *out, char *err, size_t errsz) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return false;
    }
    bool ok = read_whole_stream(f, path, out, err, errsz);
    fclose(f);
    return ok;
}
