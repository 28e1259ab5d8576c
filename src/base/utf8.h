/* utf8.h - UTF-8 decoding, encoding and repair.
 *
 * Owns the one definition of "well-formed UTF-8" used by the whole program
 * (Unicode 15, table 3-7): no overlongs, no surrogates, nothing above
 * U+10FFFF.  The tokenizer, the JSON reader and writer, and the streaming
 * output all go through these functions so they agree byte for byte.
 */
#ifndef GPT2_UTF8_H
#define GPT2_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Decodes the character at s[0..n), n >= 1.  When it is well-formed, returns
 * its length (1..4) and stores the code point in *cp.  Otherwise returns 0 and
 * stores in *cp the length (1..3) of the maximal ill-formed subpart: the
 * longest prefix of s that could begin a well-formed sequence, or 1. */
size_t gpt2_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Writes the UTF-8 form of cp (<= 0x10FFFF, not a surrogate) into out and
 * returns its length (1..4). */
size_t gpt2_utf8_encode(uint32_t cp, char out[4]);

/* Number of bytes at the end of s[0..n) that are a proper prefix of a
 * well-formed character, i.e. that may still be completed by bytes not yet
 * seen (0..3).  Streaming output holds these back. */
size_t gpt2_utf8_incomplete_tail(const uint8_t *s, size_t n);

/* s[0..n), text from a file, fit for a one-line message in out[outsz]
 * (outsz >= 8): control characters become '?', and text longer than fits
 * is cut at a character boundary and ends in "...".  Returns out. */
#define UTF8_SHOWN 80 /* an outsz that keeps messages short */
const char *gpt2_utf8_shown(const void *s, size_t n, char *out, size_t outsz);

/* Appends s[0..n) to b with every maximal ill-formed subpart replaced by
 * U+FFFD, as Python's errors="replace" does.  Returns false on OOM. */
bool gpt2_utf8_append_repaired(StrBuf *b, const uint8_t *s, size_t n);

/* True when all of s[0..n) is well-formed UTF-8. */
bool gpt2_utf8_valid(const uint8_t *s, size_t n);

/* The cells a terminal gives code point cp: 2 for East Asian wide and
 * fullwidth characters (emoji included), 1 for the rest, and -1 for those
 * not to be shown as they are (controls, combining marks, zero-width and
 * bidirectional controls): a display escapes them.  Errs towards 2. */
int gpt2_utf8_cells(uint32_t cp);

/* The cells s[0..n) takes on a terminal: gpt2_utf8_cells of each character
 * (0 for those of -1), 1 for each ill-formed subpart. */
size_t gpt2_utf8_width(const char *s, size_t n);

#endif
