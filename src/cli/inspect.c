/* cli_inspect.c - gpt2 --inspect: what the model does with a prompt.
 *
 * Owns the three views of one gpt2_inspect result: a text report that
 * fits the terminal (its width from TIOCGWINSZ, 80 cells when standard
 * output is not a terminal, East Asian wide characters counting 2), one
 * JSON object, and an SVG of attention heatmaps.  Token bytes are always
 * shown safely: a space as "␣", escapes for controls, and "\xNN" for each
 * byte of a character that a token holds only part of.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "utf8.h"

#define REPORT_WIDTH 80     /* cells, when standard output is not a terminal */
#define REPORT_MIN_WIDTH 60 /* narrower terminals get this and wrap it */
#define MAP_TOKENS 64       /* the attention map shows at most the last this many tokens */
#define MAP_MOST_HEADS 144  /* beyond this many heads the map averages each layer's */

/* ---- tokens shown safely -------------------------------------------------- */

/* The next piece of a token's bytes as shown: its text in out (at most 15
 * bytes) and its cells.  Advances *i. */
static size_t next_piece(const uint8_t *s, size_t n, size_t *i, char out[16], size_t *cells) {
    uint32_t cp;
    size_t len = gpt2_utf8_decode(s + *i, n - *i, &cp);
    if (len == 0) { /* one byte of a character split across tokens (or not UTF-8) */
        snprintf(out, 16, "\\x%02X", s[*i]);
        (*i)++;
        return *cells = 4;
    }
    *i += len;
    *cells = 2;
    switch (cp) {
    case ' ': memcpy(out, "\xE2\x90\xA3", 4); return *cells = 1; /* U+2423 OPEN BOX */
    case '\\': return (void)memcpy(out, "\\\\", 3), 2;
    case '\n': return (void)memcpy(out, "\\n", 3), 2;
    case '\t': return (void)memcpy(out, "\\t", 3), 2;
    case '\r': return (void)memcpy(out, "\\r", 3), 2;
    default: break;
    }
    int w = gpt2_utf8_cells(cp);
    if (w < 0) {
        int k = cp < 0x80 ? snprintf(out, 16, "\\x%02X", (unsigned)cp) : snprintf(out, 16, "<U+%04X>", (unsigned)cp);
        return *cells = (size_t)k;
    }
    memcpy(out, s + *i - len, len);
    out[len] = 0;
    return *cells = (size_t)w;
}

/* Escapes for XML text (the SVG) where xml is set. */
static bool append_piece(StrBuf *b, const char *piece, bool xml) {
    if (!xml) return gpt2_strbuf_append_str(b, piece);
    bool ok = true;
    for (const char *p = piece; ok && *p; p++) {
        switch (*p) {
        case '&': ok = gpt2_strbuf_append_str(b, "&amp;"); break;
        case '<': ok = gpt2_strbuf_append_str(b, "&lt;"); break;
        case '>': ok = gpt2_strbuf_append_str(b, "&gt;"); break;
        case '"': ok = gpt2_strbuf_append_str(b, "&quot;"); break;
        default: ok = gpt2_strbuf_append_char(b, *p);
        }
    }
    return ok;
}

/* Appends token id shown safely in at most max_cells (>= 4) cells, cut with
 * "..." when longer; returns the cells written (0 when memory ran out). */
static size_t show_token(StrBuf *b, const Gpt2 *g, int32_t id, size_t max_cells, bool xml) {
    if (max_cells < 4) max_cells = 4;
    size_t n = 0, total = 0, cells, i = 0;
    const uint8_t *s = (const uint8_t *)gpt2_token_bytes(g, id, &n);
    char piece[16];
    if (!s) return gpt2_strbuf_append_str(b, "?") ? 1 : 0;
    while (i < n) total += (next_piece(s, n, &i, piece, &cells), cells);
    const size_t room = total <= max_cells ? max_cells : max_cells - 3;
    size_t used = 0;
    for (i = 0; i < n;) {
        next_piece(s, n, &i, piece, &cells);
        if (used + cells > room) break;
        if (!append_piece(b, piece, xml)) return 0;
        used += cells;
    }
    if (total > max_cells) {
        if (!gpt2_strbuf_append_str(b, "...")) return 0;
        used += 3;
    }
    return used;
}

/* ---- the text report -------------------------------------------------------- */

/* Lines that wrap at `width` cells: pieces are added whole, and a piece
 * that would overflow starts a new line indented by `indent`. */
typedef struct {
    StrBuf *b;
    size_t width, col, indent;
    bool ok;
} Report;

static void rp_newline(Report *r) {
    r->ok = r->ok && gpt2_strbuf_append_char(r->b, '\n');
    r->col = 0;
}

/* Adds piece (cells wide), after `gap` spaces unless it starts a line. */
static void rp_piece(Report *r, const char *piece, size_t len, size_t cells, size_t gap) {
    if (r->col > r->indent && r->col + gap + cells > r->width) rp_newline(r);
    if (r->col == 0) {
        for (size_t i = 0; i < r->indent; i++) r->ok = r->ok && gpt2_strbuf_append_char(r->b, ' ');
        r->col = r->indent;
    } else if (r->col > r->indent) {
        for (size_t i = 0; i < gap; i++) r->ok = r->ok && gpt2_strbuf_append_char(r->b, ' ');
        r->col += gap;
    }
    r->ok = r->ok && gpt2_strbuf_append(r->b, piece, len);
    r->col += cells;
}

/* Adds words of plain text, wrapped. */
static void rp_words(Report *r, const char *text) {
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, " ");
        if (len) rp_piece(r, p, len, gpt2_utf8_width(p, len), 1);
        p += len;
    }
}

/* Adds one formatted piece, wrapped. */
static void rp_printf(Report *r, size_t gap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rp_printf(Report *r, size_t gap, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t len = k < 0 ? 0 : (size_t)k < sizeof buf ? (size_t)k : sizeof buf - 1;
    rp_piece(r, buf, len, gpt2_utf8_width(buf, len), gap);
}

/* Adds words of formatted text, wrapped. */
static void rp_wordsf(Report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rp_wordsf(Report *r, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rp_words(r, buf);
}

/* A probability in at most 7 characters: 0.123, or 1.2e-05 when tiny. */
static const char *prob_text(double p, char out[16]) {
    if (p >= 0.001 || p == 0) snprintf(out, 16, "%.3f", p);
    else snprintf(out, 16, "%.1e", p);
    return out;
}

/* Adds a prefix text then a token of at most max_cells, as one piece. */
static void rp_token(Report *r, const Gpt2 *g, const char *prefix, int32_t id, const char *suffix, size_t max_cells,
                     size_t gap) {
    StrBuf t = {0};
    r->ok = r->ok && gpt2_strbuf_append_str(&t, prefix);
    size_t cells = gpt2_utf8_width(prefix, strlen(prefix));
    size_t shown = r->ok ? show_token(&t, g, id, max_cells, false) : 0;
    r->ok = r->ok && shown > 0 && gpt2_strbuf_append_str(&t, suffix);
    cells += shown + gpt2_utf8_width(suffix, strlen(suffix));
    if (r->ok) rp_piece(r, t.data, t.len, cells, gap);
    gpt2_strbuf_free(&t);
}

/* A width-limited column: the token padded with spaces to `cells`. */
static void rp_token_column(Report *r, const Gpt2 *g, int32_t id, size_t cells) {
    StrBuf t = {0};
    size_t shown = show_token(&t, g, id, cells, false);
    r->ok = r->ok && shown > 0;
    for (size_t i = shown; r->ok && i < cells; i++) r->ok = gpt2_strbuf_append_char(&t, ' ');
    if (r->ok) {
        r->ok = gpt2_strbuf_append(r->b, t.data, t.len);
        r->col += cells;
    }
    gpt2_strbuf_free(&t);
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

static void report_tokens(Report *r, const Gpt2 *g, const int32_t *ids, size_t n) {
    r->indent = 0;
    rp_wordsf(r, "Tokens (%zu):", n);
    rp_words(r, "each position, its token id and its bytes; \xE2\x90\xA3 is a space, \\xNN one byte of a character "
                "the tokenizer split across tokens.");
    rp_newline(r);
    for (size_t i = 0; i < n; i++) {
        rp_printf(r, 0, "%6zu %6d  ", i, (int)ids[i]);
        rp_token(r, g, "", ids[i], "", r->width - 16, 0);
        rp_newline(r);
    }
}

static void report_embeddings(Report *r, const Gpt2 *g, const Gpt2Inspection *x, const int32_t *ids) {
    rp_newline(r);
    rp_wordsf(r, "Embeddings: WTE %u x %u (a row per token id), WPE %u x %u (a row per position);", x->n_vocab,
              x->n_embd, x->n_ctx, x->n_embd);
    rp_words(r, "layer 0 reads wte[id] + wpe[pos]. Their L2 norms:");
    rp_newline(r);
    const size_t tok = min_size(r->width - 41, 24);
    rp_printf(r, 0, "%6s  %-*s %10s %10s %10s", "pos", (int)tok, "token", "|wte[id]|", "|wpe[pos]|", "|sum|");
    rp_newline(r);
    for (size_t i = 0; i < x->n; i++) {
        rp_printf(r, 0, "%6zu  ", i);
        rp_token_column(r, g, ids[i], tok);
        rp_printf(r, 0, " %10.4f %10.4f %10.4f", x->norm_wte[i], x->norm_wpe[i], x->norm_sum[i]);
        rp_newline(r);
    }
}

static void report_attention(Report *r, const Gpt2 *g, const Gpt2Inspection *x, const int32_t *ids) {
    const size_t n = x->n, H = x->n_head;
    rp_newline(r);
    rp_wordsf(r, "Attention: %u layers x %u heads. Where the last token (position %zu,", x->n_layer, x->n_head, n - 1);
    rp_token(r, g, "", ids[n - 1], ")", 20, 1);
    rp_words(r, "looks: per head, the 3 positions it takes the most from, with their weights. Mean distance: how many "
                "tokens back attention reaches, averaged over every position and head of the layer.");
    rp_newline(r);
    for (size_t l = 0; l < x->n_layer; l++) {
        double mean = 0;
        for (size_t h = 0; h < H; h++) mean += x->attention_distance[l * H + h];
        r->indent = 0;
        rp_printf(r, 0, "layer %zu: mean distance %.2f tokens", l, mean / (double)H);
        rp_newline(r);
        for (size_t h = 0; h < H; h++) {
            const float *w = x->attention_last + (l * H + h) * n;
            size_t best[3];
            size_t m = 0;
            for (size_t k = 0; k < n; k++) { /* the 3 largest, earlier positions first on ties */
                size_t at = m < 3 ? m++ : 3;
                if (at == 3 && !(w[k] > w[best[2]])) continue;
                if (at == 3) at = 2;
                while (at > 0 && w[k] > w[best[at - 1]]) {
                    best[at] = best[at - 1];
                    at--;
                }
                best[at] = k;
            }
            r->indent = 0;
            rp_printf(r, 0, "  head %2zu: ", h);
            r->indent = 11;
            for (size_t j = 0; j < m; j++) {
                char prefix[32], suffix[32], p[16];
                snprintf(prefix, sizeof prefix, "%s ", prob_text(w[best[j]], p));
                snprintf(suffix, sizeof suffix, "@%zu", best[j]);
                rp_token(r, g, prefix, ids[best[j]], suffix, 16, 2);
            }
            rp_newline(r);
        }
    }
    r->indent = 0;
}

static void report_predictions(Report *r, const Gpt2 *g, const Gpt2Inspection *x, const int32_t *ids) {
    rp_newline(r);
    rp_wordsf(r, "Predictions: after each position, the %u likeliest next tokens", x->top_k);
    rp_words(r, "with their probabilities, and the entropy of the distribution in bits. * marks the token that comes "
                "next in the prompt; its rank and probability follow the entropy.");
    rp_newline(r);
    for (size_t i = 0; i < x->n; i++) {
        r->indent = 0;
        rp_printf(r, 0, "%6zu  ", i);
        rp_token_column(r, g, ids[i], min_size(r->width - 40, 20));
        rp_printf(r, 1, " %6.2f bits", x->entropy_bits[i]);
        if (i + 1 < x->n) rp_printf(r, 2, "next: rank %u, p %.4g", x->next_rank[i], x->next_prob[i]);
        rp_newline(r);
        r->indent = 8;
        for (size_t j = 0; j < x->top_k; j++) {
            const Gpt2TokenProb *t = &x->top[i * x->top_k + j];
            if (t->id < 0) break;
            char prefix[32], p[16];
            snprintf(prefix, sizeof prefix, "%s%s ", i + 1 < x->n && t->id == ids[i + 1] ? "*" : "",
                     prob_text(t->prob, p));
            rp_token(r, g, prefix, t->id, "", 16, 2);
        }
        rp_newline(r);
    }
    r->indent = 0;
}

static void report_logit_lens(Report *r, const Gpt2 *g, const Gpt2Inspection *x, const int32_t *ids) {
    rp_newline(r);
    rp_words(r, "Logit lens: at each position, the likeliest token of the residual stream after each layer (the "
                "final LayerNorm and the head applied to it), with its probability.");
    rp_newline(r);
    for (size_t i = 0; i < x->n; i++) {
        r->indent = 0;
        rp_printf(r, 0, "%6zu  ", i);
        rp_token(r, g, "", ids[i], "", r->width - 8, 0);
        rp_newline(r);
        r->indent = 8;
        for (size_t l = 0; l < x->n_layer; l++) {
            char prefix[32], suffix[32], p[16];
            snprintf(prefix, sizeof prefix, "L%zu ", l);
            snprintf(suffix, sizeof suffix, " %s", prob_text(x->lens_prob[l * x->n + i], p));
            rp_token(r, g, prefix, x->lens_id[l * x->n + i], suffix, 12, 2);
        }
        rp_newline(r);
    }
    r->indent = 0;
}

/* The report's width: the terminal's when standard output is one. */
static size_t report_width(Output *out) {
    struct winsize ws;
    if (!isatty(fileno(out->f)) || ioctl(fileno(out->f), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return REPORT_WIDTH;
    return ws.ws_col < REPORT_MIN_WIDTH ? REPORT_MIN_WIDTH : ws.ws_col;
}

static bool text_report(const Gpt2 *g, const CliOptions *o, const Gpt2Inspection *x, const int32_t *ids, size_t width,
                        StrBuf *b) {
    Report r = {b, width, 0, 0, true};
    rp_wordsf(&r, "Model: %u layers, %u heads, %u dimensions, context %u.", x->n_layer, x->n_head, x->n_embd, x->n_ctx);
    rp_newline(&r);
    rp_newline(&r);
    report_tokens(&r, g, ids, x->n);
    report_embeddings(&r, g, x, ids);
    report_attention(&r, g, x, ids);
    report_predictions(&r, g, x, ids);
    if (o->logit_lens) report_logit_lens(&r, g, x, ids);
    return r.ok;
}

/* ---- JSON ------------------------------------------------------------------- */

static bool json_number(StrBuf *b, double v) {
    return isfinite(v) ? gpt2_strbuf_printf(b, "%.7g", v) : gpt2_strbuf_append_str(b, "null");
}

/* [a][b][c]... of floats: dims[0..nd) over v. */
static bool json_tensor(StrBuf *b, const float *v, const size_t *dims, size_t nd) {
    bool ok = gpt2_strbuf_append_char(b, '[');
    size_t stride = 1;
    for (size_t d = 1; d < nd; d++) stride *= dims[d];
    for (size_t i = 0; ok && i < dims[0]; i++) {
        ok = (i == 0 || gpt2_strbuf_append_char(b, ','));
        if (nd == 1) ok = ok && json_number(b, v[i]);
        else ok = ok && json_tensor(b, v + i * stride, dims + 1, nd - 1);
    }
    return ok && gpt2_strbuf_append_char(b, ']');
}

static bool json_report(const Gpt2 *g, const CliOptions *o, const Gpt2Inspection *x, const int32_t *ids, StrBuf *b) {
    const size_t n = x->n, L = x->n_layer, H = x->n_head;
    bool ok = gpt2_strbuf_printf(b,
                                 "{\"model\":{\"n_layer\":%u,\"n_head\":%u,\"n_embd\":%u,\"n_vocab\":%u,\"n_ctx\":%u},"
                                 "\"ids\":",
                                 x->n_layer, x->n_head, x->n_embd, x->n_vocab, x->n_ctx) &&
              cli_append_ids(b, ids, n) && gpt2_strbuf_append_str(b, ",\"tokens\":[");
    for (size_t i = 0; ok && i < n; i++) {
        size_t len;
        const char *bytes = gpt2_token_bytes(g, ids[i], &len);
        ok = (i == 0 || gpt2_strbuf_append_char(b, ',')) && gpt2_json_append_string(b, bytes, len);
    }
    ok = ok && gpt2_strbuf_append_str(b, "],\"token_bytes\":[");
    for (size_t i = 0; ok && i < n; i++) {
        size_t len;
        const uint8_t *bytes = (const uint8_t *)gpt2_token_bytes(g, ids[i], &len);
        ok = gpt2_strbuf_append_str(b, i ? ",\"" : "\"");
        for (size_t j = 0; ok && j < len; j++) ok = gpt2_strbuf_printf(b, "%02x", bytes[j]);
        ok = ok && gpt2_strbuf_append_char(b, '"');
    }
    ok = ok && gpt2_strbuf_printf(b, "],\"embedding_shapes\":{\"wte\":[%u,%u],\"wpe\":[%u,%u]},\"embedding_norms\":[",
                                  x->n_vocab, x->n_embd, x->n_ctx, x->n_embd);
    for (size_t i = 0; ok && i < n; i++)
        ok = gpt2_strbuf_printf(b, "%s{\"wte\":%.7g,\"wpe\":%.7g,\"sum\":%.7g}", i ? "," : "", x->norm_wte[i],
                                x->norm_wpe[i], x->norm_sum[i]);
    size_t last_dims[3] = {L, H, n};
    ok = ok && gpt2_strbuf_append_str(b, "],\"attention_last\":") && json_tensor(b, x->attention_last, last_dims, 3) &&
         gpt2_strbuf_append_str(b, ",\"attention_distance\":[");
    for (size_t l = 0; ok && l < L; l++) {
        ok = gpt2_strbuf_append_str(b, l ? ",[" : "[");
        for (size_t h = 0; ok && h < H; h++)
            ok = (h == 0 || gpt2_strbuf_append_char(b, ',')) && json_number(b, x->attention_distance[l * H + h]);
        ok = ok && gpt2_strbuf_append_char(b, ']');
    }
    ok = ok && gpt2_strbuf_append_char(b, ']');
    if (o->attention_json) {
        size_t dims[4] = {L, H, n, n};
        ok = ok && gpt2_strbuf_append_str(b, ",\"attention\":") && json_tensor(b, x->attention, dims, 4);
    }
    ok = ok && gpt2_strbuf_append_str(b, ",\"predictions\":[");
    for (size_t i = 0; ok && i < n; i++) {
        ok = gpt2_strbuf_append_str(b, i ? ",{\"top\":[" : "{\"top\":[");
        for (size_t j = 0; ok && j < x->top_k; j++) {
            const Gpt2TokenProb *t = &x->top[i * x->top_k + j];
            if (t->id < 0) break;
            ok = gpt2_strbuf_printf(b, "%s[%d,%.7g]", j ? "," : "", (int)t->id, t->prob);
        }
        ok = ok && gpt2_strbuf_append_str(b, "],\"entropy_bits\":") && json_number(b, x->entropy_bits[i]);
        if (ok && i + 1 < n)
            ok = gpt2_strbuf_printf(b, ",\"next\":{\"id\":%d,\"rank\":%u,\"prob\":%.7g}", (int)ids[i + 1],
                                    x->next_rank[i], x->next_prob[i]);
        ok = ok && gpt2_strbuf_append_char(b, '}');
    }
    ok = ok && gpt2_strbuf_append_char(b, ']');
    if (o->logit_lens) {
        ok = ok && gpt2_strbuf_append_str(b, ",\"logit_lens\":[");
        for (size_t l = 0; ok && l < L; l++) {
            ok = gpt2_strbuf_append_str(b, l ? ",[" : "[");
            for (size_t i = 0; ok && i < n; i++) {
                ok = gpt2_strbuf_printf(b, "%s[%d,", i ? "," : "", (int)x->lens_id[l * n + i]) &&
                     json_number(b, x->lens_margin[l * n + i]) && gpt2_strbuf_append_char(b, ']');
            }
            ok = ok && gpt2_strbuf_append_char(b, ']');
        }
        ok = ok && gpt2_strbuf_append_char(b, ']');
    }
    return ok && gpt2_strbuf_append_str(b, "}\n");
}

/* ---- the attention map (SVG) -------------------------------------------------- */

#define MAP_PX 256.0   /* side of one heatmap */
#define MAP_GAP 24.0   /* between heatmaps, for their titles */
#define LABEL_PX 120.0 /* room for the token labels left of and below the grid */
#define LEVELS 9       /* shades of the palette; level 0 (white) is not drawn */

/* Level of weight w: the square root spreads the small weights out. */
static int level_of(float w) {
    int k = (int)ceil(sqrt(w > 0 ? (double)w : 0.0) * (LEVELS - 1) - 0.5);
    return k < 0 ? 0 : k > LEVELS - 1 ? LEVELS - 1 : k;
}

static void level_colour(int k, char out[8]) { /* white to dark blue */
    double t = (double)k / (LEVELS - 1);
    int rr = (int)lround(247 + (8 - 247) * t), gg = (int)lround(251 + (48 - 251) * t),
        bb = (int)lround(255 + (107 - 255) * t);
    snprintf(out, 8, "#%02x%02x%02x", rr, gg, bb);
}

/* One heatmap of m x m weights (query rows, key columns): one path per
 * shade, cells of a row with the same shade merged. */
static bool svg_heatmap(StrBuf *b, const float *w, size_t m, double x0, double y0, const char *title) {
    const double cell = MAP_PX / (double)m;
    bool ok = gpt2_strbuf_printf(b,
                                 "<g class=\"map\"><text x=\"%.1f\" y=\"%.1f\" class=\"t\">%s</text>"
                                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" class=\"f\"/>"
                                 "<g transform=\"translate(%.1f %.1f) scale(%.5g)\">",
                                 x0, y0 - 6, title, x0, y0, MAP_PX, MAP_PX, x0, y0, cell);
    for (int k = 1; ok && k < LEVELS; k++) {
        bool started = false;
        for (size_t q = 0; ok && q < m; q++) {
            for (size_t s = 0; ok && s <= q;) {
                if (level_of(w[q * m + s]) != k) {
                    s++;
                    continue;
                }
                size_t e = s + 1;
                while (e <= q && level_of(w[q * m + e]) == k) e++;
                if (!started) {
                    char colour[8];
                    level_colour(k, colour);
                    ok = gpt2_strbuf_printf(b, "<path fill=\"%s\" d=\"", colour);
                    started = true;
                }
                ok = ok && gpt2_strbuf_printf(b, "M%zu %zuh%zuv1h-%zuz", s, q, e - s, e - s);
                s = e;
            }
        }
        if (started) ok = ok && gpt2_strbuf_append_str(b, "\"/>");
    }
    return ok && gpt2_strbuf_append_str(b, "</g></g>\n");
}

/* The heads the map draws in each layer, or -1 alone for the layer's mean
 * (the heads of --heads are checked before). */
static void pick_heads(const CliOptions *o, const Gpt2Inspection *x, int32_t *heads, size_t *per_layer) {
    CliHeads mode = o->heads;
    if (mode == HEADS_AUTO) mode = (size_t)x->n_layer * x->n_head > MAP_MOST_HEADS ? HEADS_MEAN : HEADS_ALL;
    *per_layer = 0;
    if (mode == HEADS_MEAN) heads[(*per_layer)++] = -1;
    else if (mode == HEADS_ALL)
        for (uint32_t h = 0; h < x->n_head; h++) heads[(*per_layer)++] = (int32_t)h;
    else
        for (size_t i = 0; i < o->n_heads; i++) heads[(*per_layer)++] = (int32_t)o->head_list[i];
}

static bool svg_axis_labels(StrBuf *b, const Gpt2 *g, const int32_t *ids, size_t n, size_t m, double gx, double gy,
                            size_t rows, size_t cols) {
    const double cell = MAP_PX / (double)m, font = cell * 0.8 < 11 ? cell * 0.8 : 11;
    bool ok = gpt2_strbuf_printf(b, "<g class=\"labels\" font-size=\"%.2f\">\n", font);
    for (size_t r = 0; ok && r < rows; r++) /* queries, left of each row */
        for (size_t q = 0; ok && q < m; q++) {
            ok = gpt2_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.2f\" text-anchor=\"end\" dominant-baseline=\"middle\">",
                                    gx - 4, gy + (double)r * (MAP_PX + MAP_GAP) + ((double)q + 0.5) * cell) &&
                 show_token(b, g, ids[n - m + q], 14, true) && gpt2_strbuf_append_str(b, "</text>\n");
        }
    const double below = gy + (double)rows * (MAP_PX + MAP_GAP) - MAP_GAP + 4;
    for (size_t c = 0; ok && c < cols; c++) /* keys, under each column */
        for (size_t k = 0; ok && k < m; k++) {
            double x = gx + (double)c * (MAP_PX + MAP_GAP) + ((double)k + 0.5) * cell;
            ok = gpt2_strbuf_printf(b,
                                    "<text transform=\"translate(%.2f %.1f) rotate(-90)\" text-anchor=\"end\" "
                                    "dominant-baseline=\"middle\">",
                                    x, below) &&
                 show_token(b, g, ids[n - m + k], 14, true) && gpt2_strbuf_append_str(b, "</text>\n");
        }
    return ok && gpt2_strbuf_append_str(b, "</g>\n");
}

static bool svg_legend(StrBuf *b, double x, double y) {
    bool ok =
        gpt2_strbuf_printf(b, "<g class=\"legend\"><text x=\"%.1f\" y=\"%.1f\">attention weight</text>\n", x, y - 6);
    for (int k = 0; ok && k < LEVELS; k++) {
        char colour[8];
        level_colour(k, colour);
        /* level k covers weights whose square root rounds to k / (LEVELS - 1) */
        double lo = k == 0 ? 0 : pow((k - 0.5) / (LEVELS - 1), 2);
        ok = gpt2_strbuf_printf(b,
                                "<rect x=\"%.1f\" y=\"%.1f\" width=\"56\" height=\"16\" fill=\"%s\" stroke=\"#999\"/>"
                                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%s%.3f</text>\n",
                                x + k * 62.0, y, colour, x + k * 62.0, y + 28, k == 0 ? "&lt; " : "\xE2\x89\xA5 ",
                                k == 0 ? pow(0.5 / (LEVELS - 1), 2) : lo);
    }
    return ok && gpt2_strbuf_append_str(b, "</g>\n");
}

static bool svg_map(const Gpt2 *g, const CliOptions *o, const Gpt2Inspection *x, const int32_t *ids, StrBuf *b,
                    char *err, size_t errsz) {
    int32_t heads[CLI_MAX_HEADS > 1024 ? CLI_MAX_HEADS : 1024];
    size_t per_layer;
    if (x->n_head > 1024) {
        snprintf(err, errsz, "the attention map draws at most 1024 heads per layer");
        return false;
    }
    pick_heads(o, x, heads, &per_layer);
    const size_t n = x->n, m = x->window, L = x->n_layer, H = x->n_head;
    /* A grid of layers by the chosen heads; layer means in rows of 8. */
    const bool means = heads[0] < 0;
    const size_t cols = means ? (L < 8 ? L : 8) : per_layer;
    const size_t rows = means ? (L + cols - 1) / cols : L;
    const double gx = LABEL_PX + 20, gy = 140;
    double width = gx + (double)cols * (MAP_PX + MAP_GAP) + 20;
    if (width < 760) width = 760; /* the title and the legend */
    const double height = gy + (double)rows * (MAP_PX + MAP_GAP) + LABEL_PX + 20;
    bool ok = gpt2_strbuf_printf(
        b,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
        "font-family=\"sans-serif\">\n"
        "<style>.t{font-size:13px;font-weight:bold}.f{fill:#fff;stroke:#bbb}"
        "path{shape-rendering:crispEdges}</style>\n"
        "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
        "<text x=\"20\" y=\"28\" font-size=\"18\">Attention: %zu layers x %u heads%s</text>\n"
        "<text x=\"20\" y=\"50\" font-size=\"13\">In each map a row is a query (the token attending), a column "
        "a key (the token it takes from).</text>\n"
        "<text x=\"20\" y=\"68\" font-size=\"13\">",
        width, height, width, height, L, x->n_head, means ? ", each map the mean of a layer's heads" : "");
    if (m < n) ok = ok && gpt2_strbuf_printf(b, "The last %zu of the prompt's %zu tokens are shown; ", m, n);
    else ok = ok && gpt2_strbuf_printf(b, "All %zu tokens of the prompt are shown; ", n);
    ok = ok && gpt2_strbuf_append_str(b, "\xE2\x90\xA3 is a space, \\xNN one byte of a split character.</text>\n") &&
         svg_legend(b, 20, 92);
    float *mean = means ? calloc(m * m, sizeof *mean) : NULL;
    if (means && !mean) ok = false;
    for (size_t l = 0; ok && l < L; l++)
        for (size_t j = 0; ok && j < per_layer; j++) {
            size_t row = means ? l / cols : l, col = means ? l % cols : j;
            const float *w;
            char title[64];
            if (means) {
                for (size_t i = 0; i < m * m; i++) mean[i] = 0;
                for (size_t h = 0; h < H; h++)
                    for (size_t i = 0; i < m * m; i++) mean[i] += x->attention[(l * H + h) * m * m + i] / (float)H;
                w = mean;
                snprintf(title, sizeof title, "layer %zu, mean of %zu heads", l, H);
            } else {
                w = x->attention + (l * H + (size_t)heads[j]) * m * m;
                snprintf(title, sizeof title, "layer %zu, head %d", l, (int)heads[j]);
            }
            ok = svg_heatmap(b, w, m, gx + (double)col * (MAP_PX + MAP_GAP), gy + (double)row * (MAP_PX + MAP_GAP),
                             title);
        }
    free(mean);
    ok = ok && svg_axis_labels(b, g, ids, n, m, gx, gy, rows, cols) && gpt2_strbuf_append_str(b, "</svg>\n");
    if (!ok) snprintf(err, errsz, "out of memory");
    return ok;
}

/* Writes bytes[0..n) as the file at path. */
static bool write_file(const char *path, const char *bytes, size_t n, char *err, size_t errsz) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(bytes, 1, n, f) == n;
    int e = errno;
    if (f && fclose(f) != 0 && ok) ok = false, e = errno;
    if (!ok) snprintf(err, errsz, "cannot write %s: %s", path, strerror(e ? e : EIO));
    return ok;
}

/* ---- the mode ------------------------------------------------------------------- */

int cli_run_inspect(Gpt2 *g, const CliOptions *o, const int32_t *ids, size_t n, Output *out) {
    char err[512];
    Gpt2Info info = gpt2_info(g);
    if (n == 0) {
        fprintf(stderr, "gpt2: --inspect needs a prompt of at least one token\n");
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; o->heads == HEADS_LIST && i < o->n_heads; i++)
        if (o->head_list[i] >= info.n_head) {
            fprintf(stderr, "gpt2: --heads: the model has heads 0 to %u, not %u\n", info.n_head - 1, o->head_list[i]);
            return EXIT_USAGE;
        }
    if (n > info.n_ctx) {
        fprintf(stderr,
                "gpt2: warning: the prompt has %zu tokens, more than the context of %u; inspecting the last %u\n", n,
                info.n_ctx, info.n_ctx);
        ids += n - info.n_ctx;
        n = info.n_ctx;
    }
    /* The text report needs only the last row; the map, the last 64. */
    uint32_t window = o->attention_json ? 0 : o->attention_map ? MAP_TOKENS : 1;
    Gpt2InspectOptions io = {.top_k = o->inspect_top, .attention_window = window, .logit_lens = o->logit_lens};
    Gpt2Inspection x;
    if (!gpt2_inspect(g, ids, n, &io, &x, err, sizeof err)) {
        fprintf(stderr, "gpt2: %s\n", err);
        return EXIT_RUNTIME;
    }
    int status = 0;
    StrBuf b = {0};
    if (o->attention_map) {
        Gpt2Inspection shown = x;
        float *last = NULL;
        if (o->attention_json && n > MAP_TOKENS) { /* the map takes the last 64 of the full matrices */
            const size_t m = MAP_TOKENS, LH = (size_t)x.n_layer * x.n_head;
            last = malloc(LH * m * m * sizeof *last);
            for (size_t lh = 0; last && lh < LH; lh++)
                for (size_t q = 0; q < m; q++)
                    memcpy(last + (lh * m + q) * m, x.attention + (lh * n + n - m + q) * n + n - m, m * sizeof *last);
            shown.attention = last;
            shown.window = MAP_TOKENS;
        }
        bool ok = (shown.attention != NULL) && svg_map(g, o, &shown, ids, &b, err, sizeof err);
        if (!shown.attention) snprintf(err, sizeof err, "out of memory");
        ok = ok && write_file(o->attention_map, b.data, b.len, err, sizeof err);
        free(last);
        if (!ok) {
            fprintf(stderr, "gpt2: %s\n", err);
            status = EXIT_RUNTIME;
        }
        gpt2_strbuf_clear(&b);
    }
    if (status == 0) {
        bool ok = o->json ? json_report(g, o, &x, ids, &b) : text_report(g, o, &x, ids, report_width(out), &b);
        if (ok) out_write(out, b.data, b.len);
        else fprintf(stderr, "gpt2: out of memory\n"), status = EXIT_RUNTIME;
    }
    gpt2_strbuf_free(&b);
    gpt2_inspection_free(&x);
    return status;
}
