/* fuzz_check.h - the checks every fuzz target makes of the code it feeds.
 *
 * A header of static functions, included once by each target (one file
 * each): a failed check aborts, which libFuzzer reports with the input.
 */
#ifndef GPT2_FUZZ_CHECK_H
#define GPT2_FUZZ_CHECK_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void require(bool ok) {
    if (!ok) abort();
}

/* A refusal's message err[0..errsz): terminated, non-empty, one line. */
static void check_refusal(const char *err, size_t errsz) {
    require(memchr(err, '\0', errsz) != NULL);
    require(err[0] != '\0');
    require(strpbrk(err, "\n\r") == NULL);
}

#endif
