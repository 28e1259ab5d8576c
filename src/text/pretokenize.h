/* pretokenize.h - GPT-2's split of text into pieces before BPE.
 *
 * Owns the one implementation of GPT-2's pre-tokenization pattern
 *
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * with the semantics of Python's `regex` module (alternatives tried left to
 * right at each position, greedy runs), written as a scanner: no regex
 * engine, no allocation, linear time.  \p{L} and \p{N} come from
 * unicode_tables.h; \s is Unicode White_Space (TAB, LF, VT, FF, CR, space,
 * U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
 * U+3000).  Contractions match only lower-case ASCII after the ASCII
 * apostrophe.
 *
 * Input is any byte string.  Well-formed UTF-8 (as gpt2_utf8_decode() defines
 * it) is read as characters.  Every byte that is not part of a well-formed
 * character is a piece of its own, one byte long: it counts as
 * non-whitespace (\S) for the lookahead of \s+(?!\S), never joins a
 * neighbouring run and never takes a space prefix.  So a text that is valid
 * UTF-8 splits exactly as encoder.py splits it, and any other text still
 * splits into pieces that tile it.
 */
#ifndef GPT2_PRETOKENIZE_H
#define GPT2_PRETOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Iterates over the pieces of text[0..len); the text must outlive it. */
typedef struct {
    const uint8_t *text; /* [len] */
    size_t len;
    size_t pos; /* start of the next piece */
} PreTokenizer;

void gpt2_pretok_init(PreTokenizer *p, const uint8_t *text, size_t len);

/* Stores the next piece as text[*start .. *start + *n) and returns true, or
 * returns false at the end of the text.  Pieces are non-empty and follow
 * each other without gaps. */
bool gpt2_pretok_next(PreTokenizer *p, size_t *start, size_t *n);

/* True when cp is in GPT-2's \s (Unicode White_Space). */
bool gpt2_pretok_is_space(uint32_t cp);

#endif
