/* strbuf.c - see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gpt2_strbuf_reserve(StrBuf *b, size_t extra) {
    if (extra > SIZE_MAX - 1 - b->len) return false;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) return false;
    p[b->len] = '\0'; /* a first allocation is a string too */
    b->data = p;
    b->cap = cap;
    return true;
}

bool gpt2_strbuf_append(StrBuf *b, const void *bytes, size_t n) {
    if (!gpt2_strbuf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool gpt2_strbuf_append_str(StrBuf *b, const char *s) { return gpt2_strbuf_append(b, s, strlen(s)); }

bool gpt2_strbuf_append_char(StrBuf *b, char c) { return gpt2_strbuf_append(b, &c, 1); }

bool gpt2_strbuf_append_u64(StrBuf *b, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return gpt2_strbuf_append(b, digits + sizeof digits - n, n);
}

bool gpt2_strbuf_printf(StrBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !gpt2_strbuf_reserve(b, (size_t)n)) return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void gpt2_strbuf_clear(StrBuf *b) {
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void gpt2_strbuf_free(StrBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
