/* cli_batch.c - the --batch mode: JSON Lines in, one JSON object per line out.
 *
 * Spine: a stream.  Lines are read as they come (a pipe may deliver them
 * one by one, slowly); each becomes a request, or an error.  The engine
 * takes requests whenever one of its batch_size sequences is free
 * (gpt2_generate_feed), so a line starts as soon as it is read and a
 * sequence is free, and lines sharing a prompt prefix evaluate it once.
 * Results are printed in input order, each as soon as it and every line
 * before it are done.  At most WINDOW lines are held between reading and
 * printing, so memory does not grow with the input.
 *
 * Every line read gets exactly one output line: its result, its
 * {"error": "line N: ..."}, or after Ctrl-C {"error": "cancelled",
 * "line": N}.  A closed output pipe ends the run quietly.
 *
 * A line's settings default to the command line's.  Its seed is its own
 * "seed", else --seed, else the clock's seed plus the line's index, so
 * that every line equals the single run `gpt2 --seed S ...` with the same
 * settings.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "json.h"
#include "numparse.h"

/* Lines held between reading and printing, per sequence of the batch. */
#define WINDOW_PER_SEQUENCE 4
#define WINDOW_MIN 16

/* Longest wait for input before the cancel flag is looked at again. */
#define POLL_MS 200

/* Bytes asked of read() at a time. */
#define READ_CHUNK (64u << 10)

typedef struct {
    size_t lineno;   /* 1-based; 0: the entry is free */
    char error[600]; /* "line N: why", or "" for a request */
    StrBuf prompt;   /* the prompt text */
    bool ids_given;  /* "prompt" was an array of token ids, not text */
    int32_t *ids;    /* [n_ids] its tokens */
    size_t n_ids;
    Gpt2Bytes stops[CLI_MAX_STOPS];
    Gpt2LogitBias *logit_bias;   /* malloc'd, when the line has "logit_bias" */
    JsonDoc doc;                 /* the parsed line: the stop strings point into it */
    size_t n_samples;            /* its "samples", or 0 without that key (one completion) */
    Gpt2Completion *completions; /* [completions_of(line)], malloc'd */
    size_t first_index;          /* the engine's index of its first completion */
    size_t n_started, n_done;    /* of its completions, those handed to the engine, those ended */
} Line;

/* The number of completions a line asks for. */
static size_t completions_of(const Line *line) { return line->n_samples ? line->n_samples : 1; }

/* ---- reading lines as they come ---------------------------------------------- */

typedef enum { READ_LINE, READ_NOT_YET, READ_END, READ_FAILED } ReadResult;

/* A file or standard input, read with read() so that a line is taken as
 * soon as it arrives. */
typedef struct {
    int fd;
    const char *name;
    char *buf; /* [cap]: bytes read, from start to len not yet taken */
    size_t start, len, cap;
    bool eof;
    size_t skipped; /* bytes of a line too long to hold, being skipped */
} Reader;

/* Takes the next whole line (a final line without a newline counts) into
 * *line, *len; *too_long says it was longer than a batch line may be (its
 * bytes are gone, *len is their count).  With wait, blocks until a line
 * or the end comes; READ_NOT_YET also when a signal came. */
static ReadResult reader_next(Reader *r, bool wait, const char **line, size_t *len, bool *too_long, char *err,
                              size_t errsz) {
    for (;;) {
        char *s = r->buf + r->start;
        size_t have = r->len - r->start;
        char *nl = have ? memchr(s, '\n', have) : NULL;
        if (nl || (r->eof && (have || r->skipped))) {
            size_t n = nl ? (size_t)(nl - s) : have;
            r->start += n + (nl != NULL);
            *too_long = r->skipped > 0;
            *line = s;
            *len = r->skipped ? r->skipped + n : n;
            r->skipped = 0;
            if (!*too_long && n > 0 && s[n - 1] == '\r') (*len)--; /* CRLF files */
            return READ_LINE;
        }
        if (r->eof) return READ_END;
        if (have > JSON_MAX_BATCH_LINE) { /* drop what is held; count the rest */
            r->skipped += have;
            r->start = r->len = 0;
            have = 0;
        }
        if (r->start > 0) { /* keep the pending bytes at the front */
            memmove(r->buf, s, have);
            r->start = 0;
            r->len = have;
        }
        if (r->cap - r->len < READ_CHUNK) {
            size_t cap = r->cap ? 2 * r->cap : 2 * READ_CHUNK;
            char *grown = realloc(r->buf, cap);
            if (!grown) {
                snprintf(err, errsz, "out of memory reading %s", r->name);
                return READ_FAILED;
            }
            r->buf = grown;
            r->cap = cap;
        }
        struct pollfd pfd = {r->fd, POLLIN, 0};
        int ready = poll(&pfd, 1, wait ? POLL_MS : 0); /* a bounded wait: a signal between checks is seen */
        if (ready < 0 && errno != EINTR) {
            snprintf(err, errsz, "cannot read %s: %s", r->name, strerror(errno));
            return READ_FAILED;
        }
        if (ready <= 0) return READ_NOT_YET;
        ssize_t got = read(r->fd, r->buf + r->len, READ_CHUNK);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) return READ_NOT_YET;
        if (got < 0) {
            snprintf(err, errsz, "cannot read %s: %s", r->name, strerror(errno));
            return READ_FAILED;
        }
        if (got == 0) r->eof = true;
        r->len += (size_t)got;
    }
}

/* ---- parsing a line ----------------------------------------------------------------- */

static void set_error(Line *line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(Line *line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line->error, sizeof line->error, "line %zu: %s", line->lineno, msg);
}

/* "stop": a string or an array of strings, none empty.  The strings live
 * in doc, which outlives the generation. */
static bool read_stops(Line *line, const JsonValue *v, Gpt2Params *p) {
    size_t n = v->type == JSON_ARRAY ? gpt2_json_count(v) : 1;
    if (n > CLI_MAX_STOPS) {
        set_error(line, "at most %d stop strings", CLI_MAX_STOPS);
        return false;
    }
    JsonIter it = gpt2_json_iter(v);
    for (size_t i = 0; i < n; i++) {
        const JsonValue *item = v->type == JSON_ARRAY ? gpt2_json_next(&it, NULL) : v;
        size_t len;
        const char *bytes = gpt2_json_string(item, &len);
        if (!bytes || len == 0) {
            set_error(line, "\"stop\" must be a non-empty string or an array of them");
            return false;
        }
        line->stops[i] = (Gpt2Bytes){bytes, len};
    }
    p->stops = line->stops;
    p->n_stops = n;
    return true;
}

/* "logit_bias": an object of token ids and biases, {"50256": -inf} written
 * as {"50256": "-inf"} since JSON has no infinity. */
static bool read_logit_bias(Line *line, const JsonValue *v, Gpt2Params *p) {
    static const char rule[] = "\"logit_bias\" must be an object like {\"50256\": -100}: token ids, each with a "
                               "number from -1000 to 1000 or \"-inf\"";
    size_t n = gpt2_json_count(v);
    if (v->type != JSON_OBJECT || n > CLI_MAX_LOGIT_BIAS) {
        set_error(line, "%s, at most %d of them", rule, CLI_MAX_LOGIT_BIAS);
        return false;
    }
    free(line->logit_bias);
    line->logit_bias = malloc((n ? n : 1) * sizeof *line->logit_bias);
    if (!line->logit_bias) {
        set_error(line, "out of memory");
        return false;
    }
    JsonIter it = gpt2_json_iter(v);
    const JsonValue *key, *value;
    for (size_t i = 0; (value = gpt2_json_next(&it, &key)); i++) {
        Gpt2LogitBias *b = &line->logit_bias[i];
        size_t key_len;
        const char *id_text = gpt2_json_string(key, &key_len);
        int64_t id;
        bool ok = strlen(id_text) == key_len && gpt2_parse_int(id_text, 0, INT32_MAX, &id);
        if (gpt2_json_string_is(value, "-inf")) {
            b->bias = -INFINITY;
        } else {
            double bias = gpt2_json_number(value);
            ok = ok && value->type == JSON_NUMBER && bias >= -1000 && bias <= 1000;
            b->bias = (float)bias;
        }
        if (!ok) {
            set_error(line, "%s", rule);
            return false;
        }
        b->id = (int32_t)id;
    }
    p->sampling.logit_bias = line->logit_bias;
    p->sampling.n_logit_bias = n;
    return true;
}

/* "prompt" as an array of token ids, each in [0, n_vocab). */
static bool read_prompt_ids(Line *line, const JsonValue *v, uint32_t n_vocab) {
    size_t n = gpt2_json_count(v);
    line->ids = malloc((n ? n : 1) * sizeof *line->ids);
    if (!line->ids) {
        set_error(line, "out of memory");
        return false;
    }
    JsonIter it = gpt2_json_iter(v);
    const JsonValue *item;
    for (size_t i = 0; (item = gpt2_json_next(&it, NULL)); i++) {
        int64_t id;
        if (!gpt2_json_as_int(item, 0, (int64_t)n_vocab - 1, &id)) {
            set_error(line, "\"prompt\" item %zu is not a token id (a whole number from 0 to %u)", i + 1, n_vocab - 1);
            return false;
        }
        line->ids[i] = (int32_t)id;
    }
    line->n_ids = n;
    line->ids_given = true;
    return true;
}

/* One member of a request object; false (with the line's error set) when
 * it is unknown or its value is not acceptable.  Members are read in order,
 * so a later duplicate key replaces an earlier one. */
static bool read_member(Line *line, const JsonValue *k, const JsonValue *v, Gpt2Params *p, uint32_t n_vocab) {
    size_t key_len;
    const char *key = gpt2_json_string(k, &key_len);
    if (strlen(key) != key_len) {
        set_error(line, "a key contains a NUL character");
        return false;
    }
    if (strcmp(key, "prompt") == 0) {
        gpt2_strbuf_clear(&line->prompt);
        free(line->ids);
        line->ids = NULL;
        line->n_ids = 0;
        line->ids_given = false;
        if (v->type == JSON_ARRAY) return read_prompt_ids(line, v, n_vocab);
        if (v->type != JSON_STRING) {
            set_error(line, "\"prompt\" must be a string or an array of token ids");
            return false;
        }
        return gpt2_strbuf_append(&line->prompt, gpt2_json_string(v, NULL), v->n) ||
               (set_error(line, "out of memory"), false);
    }
    if (strcmp(key, "stop") == 0) return read_stops(line, v, p);
    if (strcmp(key, "logit_bias") == 0) return read_logit_bias(line, v, p);
    if (strcmp(key, "samples") == 0) {
        int64_t n;
        if (!gpt2_json_as_int(v, 1, CLI_MAX_SAMPLES, &n)) {
            set_error(line, "\"samples\" must be a whole number from 1 to %d", CLI_MAX_SAMPLES);
            return false;
        }
        line->n_samples = (size_t)n;
        return true;
    }
    if (strcmp(key, "ignore_eos") == 0) {
        if (v->type != JSON_TRUE && v->type != JSON_FALSE) {
            set_error(line, "\"ignore_eos\" must be true or false");
            return false;
        }
        p->ignore_eos = v->type == JSON_TRUE;
        return true;
    }
    if (strcmp(key, "seed") == 0) {
        if (!gpt2_json_as_u64(v, &p->sampling.seed)) {
            set_error(line, "\"seed\" must be a whole number from 0 to 18446744073709551615");
            return false;
        }
        return true;
    }
    const NumberRule *r = cli_number_rule(key);
    if (!r) {
        set_error(line,
                  "unknown key \"%.40s\" (known: prompt, n, temp, top_k, top_p, seed, stop, ignore_eos, "
                  "repeat_penalty, repeat_last_n, min_p, presence_penalty, frequency_penalty, no_repeat_ngram, "
                  "logit_bias, logprobs, samples)",
                  key);
        return false;
    }
    int64_t whole;
    bool ok = v->type == JSON_NUMBER && (!r->integer || gpt2_json_as_int(v, INT64_MIN, INT64_MAX, &whole)) &&
              cli_number_fits(r, gpt2_json_number(v));
    if (!ok) {
        set_error(line, "\"%s\" must be %s", r->key, r->what);
        return false;
    }
    cli_apply_number(r, gpt2_json_number(v), p);
    return true;
}

/* Parses one line into a request with params p (preset to the defaults). */
static bool read_request(Line *line, const char *text, size_t len, Gpt2Params *p, JsonDoc *doc, uint32_t n_vocab) {
    char why[256];
    size_t blank = 0;
    while (blank < len && (text[blank] == ' ' || text[blank] == '\t')) blank++;
    if (blank == len) {
        set_error(line, "empty line (expected a JSON object like {\"prompt\": \"...\"})");
        return false;
    }
    if (len > JSON_MAX_BATCH_LINE) {
        set_error(line, "the line has %zu bytes, more than the limit of %u MiB", len, JSON_MAX_BATCH_LINE >> 20);
        return false;
    }
    if (!gpt2_json_parse(doc, text, len, why, sizeof why)) {
        set_error(line, "not valid JSON: %s", why);
        return false;
    }
    const JsonValue *root = doc->root;
    if (root->type != JSON_OBJECT) {
        set_error(line, "expected a JSON object like {\"prompt\": \"...\"}");
        return false;
    }
    if (!gpt2_json_get(root, "prompt")) {
        set_error(line, "no \"prompt\"");
        return false;
    }
    JsonIter it = gpt2_json_iter(root);
    const JsonValue *k, *v;
    while ((v = gpt2_json_next(&it, &k)))
        if (!read_member(line, k, v, p, n_vocab)) return false;
    return true;
}

/* ---- the job -------------------------------------------------------------------------- */

typedef struct {
    Gpt2 *g;
    const CliOptions *o;
    Output *out;
    double load_ms;
    int32_t eot;
    uint32_t n_vocab, n_ctx;
    volatile sig_atomic_t *cancel;
    Reader in;
    Line *ring; /* [cap] the lines between reading and printing, from head on */
    size_t cap, head, n;
    size_t n_read;    /* lines read */
    size_t n_handed;  /* completions given to the engine */
    bool read_failed; /* a read error ended the input */
    bool fatal;       /* the engine failed: what is left gets its message */
    char fatal_error[512];
} BatchJob;

static Line *ring_at(BatchJob *b, size_t i) { return &b->ring[(b->head + i) % b->cap]; }

static void free_line(Line *line) {
    for (size_t i = 0; line->completions && i < completions_of(line); i++) gpt2_completion_free(&line->completions[i]);
    free(line->completions);
    gpt2_strbuf_free(&line->prompt);
    gpt2_json_free(&line->doc);
    free(line->ids);
    free(line->logit_bias);
    memset(line, 0, sizeof *line);
}

/* Parses text into line (numbered lineno) as a request, or sets its error. */
static void parse_line(BatchJob *b, Line *line, const char *text, size_t len, bool too_long) {
    const CliOptions *o = b->o;
    line->lineno = b->n_read;
    if (too_long) {
        set_error(line, "the line has %zu bytes, more than the limit of %u MiB", len, JSON_MAX_BATCH_LINE >> 20);
        return;
    }
    Gpt2Params p = o->params;
    p.sampling.seed = o->seed_given ? o->params.sampling.seed : o->params.sampling.seed + (line->lineno - 1);
    if (!read_request(line, text, len, &p, &line->doc, b->n_vocab)) {
        if (!line->error[0]) set_error(line, "out of memory");
        return;
    }
    char why[256];
    if (!line->ids_given && !gpt2_tokenize(b->g, line->prompt.data ? line->prompt.data : "", line->prompt.len,
                                           o->special, &line->ids, &line->n_ids, why, sizeof why)) {
        set_error(line, "%s", why);
        return;
    }
    if (line->n_ids > b->n_ctx)
        fprintf(stderr,
                "gpt2: warning: line %zu: the prompt has %zu tokens, more than the context of %u; using the last %u\n",
                line->lineno, line->n_ids, b->n_ctx, b->n_ctx);
    size_t n = completions_of(line);
    line->completions = malloc(n * sizeof *line->completions);
    if (!line->completions) {
        set_error(line, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) { /* samples: seeds S, S+1, ... */
        line->completions[i] = (Gpt2Completion){.prompt = line->ids, .n_prompt = line->n_ids, .params = p};
        line->completions[i].params.sampling.seed = p.sampling.seed + i;
    }
}

/* ---- printing in order ------------------------------------------------------------------ */

static bool line_done(const Line *line) { return line->n_done == completions_of(line); }

/* Why the line has no result: its own error, the engine's failure, a
 * completion's error; NULL when it has one or was cancelled. */
static const char *line_error(const BatchJob *b, const Line *line, char *msg, size_t msgsz) {
    if (line->error[0]) return line->error;
    if (b->fatal && !line_done(line)) {
        snprintf(msg, msgsz, "line %zu: %s", line->lineno, b->fatal_error);
        return msg;
    }
    for (size_t i = 0; line->completions && i < completions_of(line); i++) {
        const Gpt2Completion *c = &line->completions[i];
        if (c->finish == GPT2_FINISH_ERROR) {
            snprintf(msg, msgsz, "line %zu: %s", line->lineno, c->error);
            return msg;
        }
    }
    return NULL;
}

static bool line_cancelled(const Line *line) {
    if (!line_done(line)) return true;
    for (size_t i = 0; i < completions_of(line); i++)
        if (line->completions[i].finish == GPT2_FINISH_CANCELLED) return true;
    return false;
}

/* A line's output, without the newline: its completion's object, or with
 * "samples" an object {"prompt", "samples": [...]} holding each sample's,
 * with its index and seed; an error object when it failed; the cancelled
 * object when a stop came first.  False when memory ran out. */
static bool line_json(BatchJob *b, const Line *line, StrBuf *json) {
    char msg[sizeof line->error + 64];
    const char *error = line_error(b, line, msg, sizeof msg);
    if (error)
        return gpt2_strbuf_append_str(json, "{\"error\":") && gpt2_json_append_string(json, error, strlen(error)) &&
               gpt2_strbuf_append_char(json, '}');
    if (line_cancelled(line)) return gpt2_strbuf_printf(json, "{\"error\":\"cancelled\",\"line\":%zu}", line->lineno);
    Gpt2Bytes prompt = {line->prompt.data, line->prompt.len};
    const int32_t *ids = line->n_ids ? line->ids : &b->eot;
    size_t n_ids = line->n_ids ? line->n_ids : 1;
    CliJsonExtra prompt_of = {.prompt_text = line->ids_given ? NULL : &prompt,
                              .prompt_ids = line->ids_given ? line->ids : NULL,
                              .n_prompt_ids = line->n_ids};
    if (!line->n_samples)
        return cli_completion_json(json, b->g, &line->completions[0], ids, n_ids, b->load_ms, &prompt_of);
    bool ok = gpt2_strbuf_append_str(json, "{\"prompt\":") &&
              (line->ids_given ? cli_append_ids(json, line->ids, line->n_ids)
                               : gpt2_json_append_string(json, prompt.bytes, prompt.len)) &&
              gpt2_strbuf_append_str(json, ",\"samples\":[");
    for (size_t i = 0; ok && i < line->n_samples; i++) {
        CliJsonExtra extra = {.sample = true, .index = i};
        ok = (!i || gpt2_strbuf_append_char(json, ',')) &&
             cli_completion_json(json, b->g, &line->completions[i], ids, n_ids, b->load_ms, &extra);
    }
    return ok && gpt2_strbuf_append_str(json, "]}");
}

/* Writes the line's output line; when memory runs out, a short error line
 * that needs none. */
static void print_line(BatchJob *b, const Line *line) {
    StrBuf json = {0};
    if (line_json(b, line, &json) && gpt2_strbuf_append_char(&json, '\n')) {
        out_write(b->out, json.data, json.len);
    } else {
        char small[96];
        int n = snprintf(small, sizeof small, "{\"error\":\"line %zu: out of memory\"}\n", line->lineno);
        out_write(b->out, small, (size_t)n);
    }
    out_flush(b->out);
    gpt2_strbuf_free(&json);
}

/* Prints, in order, every line whose turn has come and whose result is
 * ready (all of them with `all`: the run is over). */
static void print_ready(BatchJob *b, bool all) {
    while (b->n > 0) {
        Line *line = ring_at(b, 0);
        if (!all && !line->error[0] && !line_done(line)) return;
        print_line(b, line);
        free_line(line);
        b->head = (b->head + 1) % b->cap;
        b->n--;
    }
}

static void on_done(void *ctx, size_t index) {
    BatchJob *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        Line *line = ring_at(b, i);
        if (index >= line->first_index && index < line->first_index + line->n_started) line->n_done++;
    }
    print_ready(b, false);
}

/* Stop generating once nobody reads the output. */
static bool on_text(void *ctx, size_t index, const char *bytes, size_t n) {
    (void)index, (void)bytes, (void)n;
    return !((BatchJob *)ctx)->out->failed;
}

/* Reads one more line into the window.  READ_LINE when one was added. */
static ReadResult read_one(BatchJob *b, bool wait) {
    const char *text;
    size_t len;
    bool too_long;
    char err[256];
    ReadResult r = reader_next(&b->in, wait, &text, &len, &too_long, err, sizeof err);
    if (r == READ_FAILED) {
        fprintf(stderr, "gpt2: %s\n", err);
        b->read_failed = true;
    }
    if (r != READ_LINE) return r;
    b->n_read++;
    Line *line = ring_at(b, b->n++);
    parse_line(b, line, text, len, too_long);
    return READ_LINE;
}

/* The engine asks for the next request: the first line read and not
 * started, else a new line when one has come (waiting for it when nothing
 * runs). */
static Gpt2Completion *next_request(void *ctx, bool wait) {
    BatchJob *b = ctx;
    for (;;) {
        if (*b->cancel || b->out->failed) return NULL;
        for (size_t i = 0; i < b->n; i++) {
            Line *line = ring_at(b, i);
            if (line->error[0] || line->n_started == completions_of(line)) continue;
            if (line->n_started == 0) line->first_index = b->n_handed;
            b->n_handed++;
            return &line->completions[line->n_started++];
        }
        print_ready(b, false); /* error lines at the head */
        if (b->n == b->cap || b->read_failed) return NULL;
        ReadResult r = read_one(b, wait);
        if (r == READ_END || r == READ_FAILED || (r == READ_NOT_YET && !wait)) return NULL;
    }
}

/* After a stop, the lines already read but not yet taken get their line
 * too: an error, or cancelled. */
static void drain_read_lines(BatchJob *b) {
    for (;;) {
        const char *text;
        size_t len;
        bool too_long;
        char err[256];
        char *s = b->in.buf + b->in.start;
        size_t have = b->in.len - b->in.start;
        if (!(have && memchr(s, '\n', have)) && !(b->in.eof && (have || b->in.skipped))) return;
        if (reader_next(&b->in, false, &text, &len, &too_long, err, sizeof err) != READ_LINE) return;
        b->n_read++;
        Line *line = ring_at(b, b->n++);
        parse_line(b, line, text, len, too_long);
        print_ready(b, true);
    }
}

int cli_run_batch(Gpt2 *g, const CliOptions *o, Output *out, double load_ms, volatile sig_atomic_t *cancel) {
    Gpt2Info info = gpt2_info(g);
    BatchJob b = {.g = g,
                  .o = o,
                  .out = out,
                  .load_ms = load_ms,
                  .eot = info.eot_id,
                  .n_vocab = info.n_vocab,
                  .n_ctx = info.n_ctx,
                  .cancel = cancel};
    bool from_stdin = strcmp(o->batch_file, "-") == 0;
    b.in.fd = from_stdin ? STDIN_FILENO : open(o->batch_file, O_RDONLY | O_CLOEXEC);
    b.in.name = from_stdin ? "standard input" : o->batch_file;
    if (b.in.fd < 0) {
        fprintf(stderr, "gpt2: cannot open %s: %s\n", o->batch_file, strerror(errno));
        return EXIT_RUNTIME;
    }
    b.cap = (size_t)info.n_batch * WINDOW_PER_SEQUENCE;
    if (b.cap < WINDOW_MIN) b.cap = WINDOW_MIN;
    b.ring = calloc(b.cap, sizeof *b.ring);
    if (!b.ring) {
        fprintf(stderr, "gpt2: out of memory\n");
        if (!from_stdin) close(b.in.fd);
        return EXIT_RUNTIME;
    }
    if (o->verbose)
        fprintf(stderr, "gpt2: batch: %u at a time, up to %zu lines held; seed %llu%s\n", info.n_batch, b.cap,
                (unsigned long long)o->params.sampling.seed,
                o->seed_given ? "" : " plus the line's index, where a line gives none");
    char err[512];
    Gpt2Feed feed = {next_request, &b};
    Gpt2Callbacks cb = {on_text, on_done, &b, cancel};
    int status = 0;
    if (!gpt2_generate_feed(g, &feed, &cb, err, sizeof err)) {
        fprintf(stderr, "gpt2: %s\n", err);
        b.fatal = true;
        snprintf(b.fatal_error, sizeof b.fatal_error, "%s", err);
        status = EXIT_RUNTIME;
    }
    print_ready(&b, true); /* error lines, and lines never started after a stop */
    if (*cancel || b.fatal) drain_read_lines(&b);
    if (b.read_failed) status = EXIT_RUNTIME;
    if (o->verbose) fprintf(stderr, "gpt2: batch: %zu lines\n", b.n_read);
    for (size_t i = 0; i < b.cap; i++) free_line(&b.ring[i]);
    free(b.ring);
    free(b.in.buf);
    if (!from_stdin) close(b.in.fd);
    return status;
}
