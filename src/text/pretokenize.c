/* pretokenize.c - see pretokenize.h.
 *
 * The pattern is matched by looking at the class of the character at the
 * current position (and of the one after a leading space): each alternative
 * of the regex becomes one branch, taken in the regex's order.  Runs are
 * greedy and nothing follows them inside their alternative, so the regex
 * never backtracks into them; the only lookahead, \s+(?!\S), needs just the
 * start of the last whitespace character of a run.
 */
#include "pretokenize.h"

#include "unicode_tables.h"
#include "utf8.h"

/* Character classes: the first three are unicode_tables.h's. */
enum {
    C_OTHER = UCLASS_OTHER,   /* [^\s\p{L}\p{N}] */
    C_LETTER = UCLASS_LETTER, /* \p{L} */
    C_NUMBER = UCLASS_NUMBER, /* \p{N} */
    C_SPACE,                  /* \s */
    C_BAD,                    /* a byte outside any well-formed character */
};

/* Classes of the ASCII characters, so the common case needs no decoding. */
#define O C_OTHER
#define L C_LETTER
#define N C_NUMBER
#define S C_SPACE
static const uint8_t ascii_class[128] = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O, /* 00-0F: TAB LF VT FF CR */
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* 10-1F: 1C-1F are not \s */
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* space !"#$%&'()*+,-./ */
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O, /* 0-9 :;<=>? */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* @ A-O */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* P-Z [\]^_ */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* ` a-o */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* p-z {|}~ DEL */
};
#undef O
#undef L
#undef N
#undef S

bool gpt2_pretok_is_space(uint32_t cp) {
    if (cp < 0x80) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* Class of the character at s[0..n), n >= 1, and its length in *len.  An
 * ill-formed byte is C_BAD with length 1, whatever follows it. */
static inline unsigned char_class(const uint8_t *s, size_t n, size_t *len) {
    if (s[0] < 0x80) {
        *len = 1;
        return ascii_class[s[0]];
    }
    uint32_t cp;
    size_t l = gpt2_utf8_decode(s, n, &cp);
    if (l == 0) {
        *len = 1;
        return C_BAD;
    }
    *len = l;
    return gpt2_pretok_is_space(cp) ? C_SPACE : unicode_class(cp);
}

/* End of the run of class cls that starts at s[i] (i itself may be the end
 * of the text). */
static size_t run_end(const uint8_t *s, size_t n, size_t i, unsigned cls) {
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII letters and digits need no decoding */
            if (ascii_class[s[i]] != cls) return i;
            i++;
            continue;
        }
        size_t len;
        if (char_class(s + i, n - i, &len) != cls) return i;
        i += len;
    }
    return i;
}

/* Length of the contraction 's 't 're 've 'm 'll 'd at s (s[0] is the
 * apostrophe), or 0. */
static size_t contraction(const uint8_t *s, size_t n) {
    if (n < 2) return 0;
    uint8_t a = s[1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (n < 3) return 0;
    uint8_t b = s[2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* Piece length for a whitespace run starting at s: \s+(?!\S) stops before
 * the last whitespace character when a non-space follows, so that character
 * can prefix the next piece (or stand alone); a run of one such character,
 * or one reaching the end of the text, is taken whole by \s+ or \s+(?!\S). */
static size_t whitespace_piece(const uint8_t *s, size_t n) {
    size_t i = 0, last = 0;
    while (i < n) {
        size_t len;
        if (char_class(s + i, n - i, &len) != C_SPACE) break;
        last = i;
        i += len;
    }
    if (i == n || last == 0) return i;
    return last;
}

void gpt2_pretok_init(PreTokenizer *p, const uint8_t *text, size_t len) {
    p->text = text;
    p->len = len;
    p->pos = 0;
}

/* Length of the piece at the start of s[0..n), n >= 1. */
static size_t piece_length(const uint8_t *s, size_t n) {
    if (s[0] == '\'') {
        size_t c = contraction(s, n);
        if (c) return c;
    }
    size_t len;
    unsigned cls = char_class(s, n, &len);
    switch (cls) {
    case C_LETTER:
    case C_NUMBER:
    case C_OTHER: return run_end(s, n, len, cls);
    case C_BAD: return 1;
    default: /* C_SPACE */ break;
    }
    if (s[0] == ' ' && n > 1) { /* " ?" before a letter, number or other run */
        size_t len1;
        unsigned cls1 = char_class(s + 1, n - 1, &len1);
        if (cls1 == C_LETTER || cls1 == C_NUMBER || cls1 == C_OTHER) return run_end(s, n, 1 + len1, cls1);
    }
    return whitespace_piece(s, n);
}

bool gpt2_pretok_next(PreTokenizer *p, size_t *start, size_t *n) {
    if (p->pos >= p->len) return false;
    size_t len = piece_length(p->text + p->pos, p->len - p->pos);
    *start = p->pos;
    *n = len;
    p->pos += len;
    return true;
}
