/* numparse.c - see numparse.h. */
#include "numparse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* strtol and friends skip leading whitespace; we do not. */
static bool starts_clean(const char *s) { return s && *s && !isspace((unsigned char)*s); }

bool gpt2_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!starts_clean(s)) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool gpt2_parse_u64(const char *s, uint64_t *out) {
    if (!starts_clean(s) || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool gpt2_parse_double(const char *s, double lo, double hi, double *out) {
    if (!starts_clean(s)) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE && fabs(v) > 1) return false; /* overflow; underflow to ~0 is fine */
    if (*end || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}
