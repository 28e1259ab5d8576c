/* numparse.h - strict parsing of numbers given as text.
 *
 * Owns what counts as a valid number on a command line: the whole string
 * must be the number (no junk, no empty string, no leading whitespace),
 * within the stated range, and finite.  "12abc", "1e999", "nan", "-3" for a
 * count, " 5" are all refused.
 */
#ifndef GPT2_NUMPARSE_H
#define GPT2_NUMPARSE_H

#include <stdbool.h>
#include <stdint.h>

bool gpt2_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
bool gpt2_parse_u64(const char *s, uint64_t *out);
bool gpt2_parse_double(const char *s, double lo, double hi, double *out);

#endif
