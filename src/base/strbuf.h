/* strbuf.h - a growable byte buffer.
 *
 * Owns nothing but its own bytes.  Used wherever output of unknown length is
 * assembled: JSON text, decoded completions, file contents.  The buffer is
 * always NUL-terminated after its `len` bytes so it can be handed to C string
 * functions, but it may also hold embedded NULs.
 */
#ifndef GPT2_STRBUF_H
#define GPT2_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data; /* [cap] bytes, data[len] == '\0' whenever data != NULL */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} StrBuf;

/* All functions return false only when memory runs out; the buffer is then
 * left as it was. */
bool gpt2_strbuf_reserve(StrBuf *b, size_t extra);
bool gpt2_strbuf_append(StrBuf *b, const void *bytes, size_t n);
bool gpt2_strbuf_append_str(StrBuf *b, const char *s);
bool gpt2_strbuf_append_char(StrBuf *b, char c);
/* Appends v in decimal; much faster than printf for long lists of ids. */
bool gpt2_strbuf_append_u64(StrBuf *b, uint64_t v);
bool gpt2_strbuf_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gpt2_strbuf_clear(StrBuf *b); /* len = 0, keeps the allocation */
void gpt2_strbuf_free(StrBuf *b);  /* releases the allocation, zeroes b */

#endif
