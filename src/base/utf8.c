/* utf8.c - see utf8.h. */
#include "utf8.h"

#include <string.h>

/* Range of the second byte allowed after lead byte b (table 3-7); the third
 * and fourth bytes are always 80..BF. */
static int second_byte_range(uint8_t lead, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead == 0xE0) {
        *lo = 0xA0;
        return 3;
    }
    if (lead >= 0xE1 && lead <= 0xEC) return 3;
    if (lead == 0xED) {
        *hi = 0x9F;
        return 3;
    }
    if (lead == 0xEE || lead == 0xEF) return 3;
    if (lead == 0xF0) {
        *lo = 0x90;
        return 4;
    }
    if (lead >= 0xF1 && lead <= 0xF3) return 4;
    if (lead == 0xF4) {
        *hi = 0x8F;
        return 4;
    }
    return 0; /* 80..C1, F5..FF never start a character */
}

/* Length of the well-formed prefix of a sequence starting at s: returns need
 * (the full length) when complete, else how many bytes matched. */
static size_t matched_prefix(const uint8_t *s, size_t n, size_t *need_out) {
    uint8_t lo, hi;
    size_t need = (size_t)second_byte_range(s[0], &lo, &hi);
    *need_out = need;
    if (need == 0) return 0;
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < need && i < n && s[i] >= 0x80 && s[i] <= 0xBF) i++;
    }
    return i;
}

size_t gpt2_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t need;
    size_t got = matched_prefix(s, n, &need);
    if (need == 0 || got < need) {
        *cp = got ? (uint32_t)got : 1;
        return 0;
    }
    uint32_t c;
    if (need == 2) c = (uint32_t)(b0 & 0x1F) << 6 | (s[1] & 0x3F);
    else if (need == 3) c = (uint32_t)(b0 & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    else c = (uint32_t)(b0 & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    *cp = c;
    return need;
}

size_t gpt2_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t gpt2_utf8_incomplete_tail(const uint8_t *s, size_t n) {
    /* A proper prefix is at most 3 bytes long, so only the last 3 lead
     * positions can start one. */
    size_t start = n > 3 ? n - 3 : 0;
    for (size_t i = start; i < n; i++) {
        size_t need;
        size_t got = matched_prefix(s + i, n - i, &need);
        if (need > 0 && got == n - i && got < need) return n - i;
    }
    return 0;
}

bool gpt2_utf8_append_repaired(StrBuf *b, const uint8_t *s, size_t n) {
    static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0;
    while (i < n) {
        size_t run = i; /* copy runs of well-formed text in one go */
        uint32_t cp;
        size_t len;
        while (run < n && (len = gpt2_utf8_decode(s + run, n - run, &cp)) > 0) run += len;
        if (!gpt2_strbuf_append(b, s + i, run - i)) return false;
        if (run == n) break;
        gpt2_utf8_decode(s + run, n - run, &cp); /* cp = length of the bad subpart */
        if (!gpt2_strbuf_append(b, replacement, sizeof replacement)) return false;
        i = run + cp;
    }
    return true;
}

bool gpt2_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        size_t len = gpt2_utf8_decode(s + i, n - i, &cp);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

const char *gpt2_utf8_shown(const void *s, size_t n, char *out, size_t outsz) {
    const uint8_t *p = s;
    const size_t room = outsz - 4; /* for "..." and the NUL */
    size_t m = n <= room ? n : room;
    if (m < n) m -= gpt2_utf8_incomplete_tail(p, m);
    for (size_t i = 0; i < m; i++) out[i] = p[i] < 0x20 || p[i] == 0x7F ? '?' : (char)p[i];
    memcpy(out + m, m < n ? "..." : "", m < n ? 4 : 1);
    return out;
}

/* Ranges of code points shown two cells wide: East Asian Wide and
 * Fullwidth (Unicode 15, EastAsianWidth.txt), merged generously (a few
 * neighbours that are narrow count 2 too: an overestimate never
 * overflows a line). */
static const uint32_t wide_ranges[][2] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23F3},   {0x25FD, 0x25FE},
    {0x2614, 0x2615},   {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},   {0x26D4, 0x26D4},
    {0x26EA, 0x26EA},   {0x26F2, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},   {0x2728, 0x2728},
    {0x274C, 0x274E},   {0x2753, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B55},   {0x2E80, 0x303E},   {0x3041, 0x4DBF},   {0x4E00, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},
    {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4}, {0x17000, 0x18CFF}, {0x1AFF0, 0x1B2FF},
    {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251},
    {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x3FFFD},
};

/* Code points a terminal draws with no width of their own, or that steer
 * the text around them: combining marks of the common blocks, zero-width
 * and bidirectional controls, variation selectors, tags, and the C1
 * controls. */
static const uint32_t invisible_ranges[][2] = {
    {0x0080, 0x009F}, {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},   {0x064B, 0x065F},
    {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x2028, 0x202E}, {0x2060, 0x206F},   {0x20D0, 0x20FF},
    {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0xE0000, 0xE0FFF},
};

static bool in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp > r[mid][1]) lo = mid + 1;
        else if (cp < r[mid][0]) hi = mid;
        else return true;
    }
    return false;
}

int gpt2_utf8_cells(uint32_t cp) {
    if (cp < 0x20 || cp == 0x7F) return -1;
    if (cp < 0x7F) return 1;
    if (in_ranges(cp, invisible_ranges, sizeof invisible_ranges / sizeof *invisible_ranges)) return -1;
    return in_ranges(cp, wide_ranges, sizeof wide_ranges / sizeof *wide_ranges) ? 2 : 1;
}

size_t gpt2_utf8_width(const char *s, size_t n) {
    size_t cells = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = gpt2_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (len == 0) {
            cells += 1; /* a terminal shows a replacement character */
            i += cp;
            continue;
        }
        int w = gpt2_utf8_cells(cp);
        cells += w < 0 ? 0 : (size_t)w;
        i += len;
    }
    return cells;
}
