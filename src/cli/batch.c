/* cli_batch.c - the --batch mode: JSON Lines in, one JSON object per line out.
 *
 * Spine: read every line, turn each into a request (or an error), hand all
 * requests to gpt2_generate at once (it runs batch_size of them together,
 * sharing every weight read), and print results in input order as soon as
 * every earlier line is printed.  A bad line costs only its own
 * {"error": ...} object.
 *
 * A line's settings default to the command line's.  Its seed is its own
 * "seed", else --seed, else the clock's seed plus the line's index, so
 * that every line equals the single run `gpt2 --seed S ...` with the same
 * settings.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fileio.h"
#include "json.h"
#include "numparse.h"

typedef struct {
    size_t lineno;  /* 1-based */
    char *error;    /* malloc'd message, or NULL for a request */
    StrBuf prompt;  /* the prompt text */
    bool ids_given; /* "prompt" was an array of token ids, not text */
    int32_t *ids;   /* [n_ids] its tokens */
    size_t n_ids;
    Gpt2Bytes stops[CLI_MAX_STOPS];
    Gpt2LogitBias *logit_bias; /* malloc'd, when the line has "logit_bias" */
    size_t completion;         /* index in the completions array of the first of its completions */
    size_t n_samples;          /* its "samples", or 0 without that key (one completion) */
    size_t n_done;             /* of its completions, those that ended */
    bool done;
} Line;

typedef struct {
    Line *lines; /* [n_lines] */
    size_t n_lines;
    Gpt2Completion *completions; /* [n_completions] */
    size_t n_completions;
    size_t *line_of;      /* [n_completions] */
    size_t next_to_print; /* lines before it are printed */
    Output *out;
    const Gpt2 *g;
    double load_ms;
    int32_t eot;
} BatchJob;

/* ---- reading lines ---------------------------------------------------------- */

static void set_error(Line *line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(Line *line, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(line->error);
    line->error = malloc(strlen(msg) + 32);
    if (line->error) snprintf(line->error, strlen(msg) + 32, "line %zu: %s", line->lineno, msg);
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

/* ---- printing in order --------------------------------------------------------- */

/* The number of completions a line asks for. */
static size_t completions_of(const Line *line) { return line->n_samples ? line->n_samples : 1; }

/* A line's output: its completion's object, or with "samples" an object
 * {"prompt", "samples": [...]} holding each sample's, with its index and
 * seed; an error object when it failed. */
static bool line_json(BatchJob *b, Line *line, StrBuf *json) {
    for (size_t i = 0; !line->error && i < completions_of(line); i++) {
        const Gpt2Completion *c = &b->completions[line->completion + i];
        if (c->finish == GPT2_FINISH_ERROR) set_error(line, "%s", c->error);
    }
    if (line->error)
        return gpt2_strbuf_append_str(json, "{\"error\":") &&
               gpt2_json_append_string(json, line->error, strlen(line->error)) && gpt2_strbuf_append_char(json, '}');
    Gpt2Bytes prompt = {line->prompt.data, line->prompt.len};
    const int32_t *ids = line->n_ids ? line->ids : &b->eot;
    size_t n_ids = line->n_ids ? line->n_ids : 1;
    CliJsonExtra prompt_of = {.prompt_text = line->ids_given ? NULL : &prompt,
                              .prompt_ids = line->ids_given ? line->ids : NULL,
                              .n_prompt_ids = line->n_ids};
    if (!line->n_samples)
        return cli_completion_json(json, b->g, &b->completions[line->completion], ids, n_ids, b->load_ms, &prompt_of);
    bool ok = gpt2_strbuf_append_str(json, "{\"prompt\":") &&
              (line->ids_given ? cli_append_ids(json, line->ids, line->n_ids)
                               : gpt2_json_append_string(json, prompt.bytes, prompt.len)) &&
              gpt2_strbuf_append_str(json, ",\"samples\":[");
    for (size_t i = 0; ok && i < line->n_samples; i++) {
        CliJsonExtra extra = {.sample = true, .index = i};
        ok = (!i || gpt2_strbuf_append_char(json, ',')) &&
             cli_completion_json(json, b->g, &b->completions[line->completion + i], ids, n_ids, b->load_ms, &extra);
    }
    return ok && gpt2_strbuf_append_str(json, "]}");
}

static void print_line(BatchJob *b, Line *line) {
    StrBuf json = {0};
    if (line_json(b, line, &json) && gpt2_strbuf_append_char(&json, '\n')) {
        out_write(b->out, json.data, json.len);
        out_flush(b->out);
    } else {
        fprintf(stderr, "gpt2: out of memory writing line %zu\n", line->lineno);
    }
    gpt2_strbuf_free(&json);
}

static bool line_ready(const Line *line) { return line->error || line->n_done == completions_of(line); }

/* Prints every line whose turn has come and whose result is ready. */
static void print_ready(BatchJob *b) {
    while (b->next_to_print < b->n_lines) {
        Line *line = &b->lines[b->next_to_print];
        if (!line_ready(line)) return;
        bool requested = !line->error;
        print_line(b, line);
        for (size_t i = 0; requested && i < completions_of(line); i++)
            gpt2_completion_free(&b->completions[line->completion + i]);
        b->next_to_print++;
    }
}

static void on_done(void *ctx, size_t index) {
    BatchJob *b = ctx;
    b->lines[b->line_of[index]].n_done++;
    print_ready(b);
}

/* Stop generating once nobody reads the output. */
static bool on_text(void *ctx, size_t index, const char *bytes, size_t n) {
    (void)index, (void)bytes, (void)n;
    return !((BatchJob *)ctx)->out->failed;
}

/* ---- the mode ------------------------------------------------------------------- */

/* Makes room for at least `need` completions. */
static bool grow_completions(BatchJob *b, size_t *cap, size_t need) {
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    Gpt2Completion *c = realloc(b->completions, n * sizeof *c);
    if (c) b->completions = c;
    size_t *l = realloc(b->line_of, n * sizeof *l);
    if (l) b->line_of = l;
    if (!c || !l) return false;
    *cap = n;
    return true;
}

/* Splits text into lines (a final newline ends the last line; it does not
 * start an empty one) and reads each.  docs[i] keeps line i's strings. */
static bool read_lines(Gpt2 *g, const CliOptions *o, const StrBuf *text, BatchJob *b, JsonDoc **docs) {
    size_t max_lines = 1;
    for (size_t i = 0; i < text->len; i++) max_lines += text->data[i] == '\n';
    b->lines = calloc(max_lines, sizeof *b->lines);
    *docs = calloc(max_lines, sizeof **docs);
    if (!b->lines || !*docs) return false;
    size_t cap = 0; /* of completions and line_of */
    const uint32_t n_ctx = gpt2_info(g).n_ctx;
    size_t pos = 0;
    while (pos < text->len) {
        const char *s = text->data + pos;
        const char *nl = memchr(s, '\n', text->len - pos);
        size_t len = nl ? (size_t)(nl - s) : text->len - pos;
        pos += len + (nl != NULL);
        if (len > 0 && s[len - 1] == '\r') len--; /* CRLF files */
        Line *line = &b->lines[b->n_lines];
        line->lineno = b->n_lines + 1;
        Gpt2Params p = o->params;
        p.sampling.seed = o->seed_given ? o->params.sampling.seed : o->params.sampling.seed + b->n_lines;
        if (read_request(line, s, len, &p, &(*docs)[b->n_lines], gpt2_info(g).n_vocab)) {
            char why[256];
            if (!line->ids_given && !gpt2_tokenize(g, line->prompt.data ? line->prompt.data : "", line->prompt.len,
                                                   o->special, &line->ids, &line->n_ids, why, sizeof why))
                return false;
            if (line->n_ids > n_ctx)
                fprintf(stderr,
                        "gpt2: warning: line %zu: the prompt has %zu tokens, more than the context of %u; "
                        "using the last %u\n",
                        line->lineno, line->n_ids, n_ctx, n_ctx);
            size_t n = completions_of(line);
            if (b->n_completions + n > cap && !grow_completions(b, &cap, b->n_completions + n)) return false;
            line->completion = b->n_completions;
            for (size_t i = 0; i < n; i++) {
                b->line_of[b->n_completions] = b->n_lines;
                b->completions[b->n_completions] =
                    (Gpt2Completion){.prompt = line->ids, .n_prompt = line->n_ids, .params = p};
                b->completions[b->n_completions++].params.sampling.seed = p.sampling.seed + i;
            }
        } else if (!line->error) {
            return false; /* out of memory */
        }
        b->n_lines++;
    }
    return true;
}

int cli_run_batch(Gpt2 *g, const CliOptions *o, Output *out, double load_ms, volatile sig_atomic_t *cancel) {
    char err[512];
    StrBuf text = {0};
    bool from_stdin = strcmp(o->batch_file, "-") == 0;
    bool ok = from_stdin ? gpt2_fileio_read_stream(stdin, "standard input", &text, err, sizeof err)
                         : gpt2_fileio_read_file(o->batch_file, &text, err, sizeof err);
    if (!ok) {
        fprintf(stderr, "gpt2: %s\n", err);
        return EXIT_RUNTIME;
    }
    BatchJob b = {.out = out, .g = g, .load_ms = load_ms, .eot = gpt2_info(g).eot_id};
    JsonDoc *docs = NULL;
    int status = 0;
    if (!read_lines(g, o, &text, &b, &docs)) {
        fprintf(stderr, "gpt2: out of memory reading the batch\n");
        status = EXIT_RUNTIME;
    } else {
        if (o->verbose)
            fprintf(stderr, "gpt2: %zu lines, %zu requests, %u at a time; seed %llu%s\n", b.n_lines, b.n_completions,
                    gpt2_info(g).n_batch, (unsigned long long)o->params.sampling.seed,
                    o->seed_given ? "" : " plus the line's index, where a line gives none");
        print_ready(&b); /* error lines before the first request */
        Gpt2Callbacks cb = {on_text, on_done, &b, cancel};
        if (b.n_completions && !gpt2_generate(g, b.completions, b.n_completions, &cb, err, sizeof err)) {
            fprintf(stderr, "gpt2: %s\n", err);
            status = EXIT_RUNTIME;
        }
        print_ready(&b); /* error lines after the last request */
    }
    for (size_t i = 0; i < b.n_completions; i++) gpt2_completion_free(&b.completions[i]);
    for (size_t i = 0; i < b.n_lines; i++) {
        free(b.lines[i].error);
        free(b.lines[i].logit_bias);
        free(b.lines[i].ids);
        gpt2_strbuf_free(&b.lines[i].prompt);
        gpt2_json_free(&docs[i]);
    }
    free(docs);
    free(b.lines);
    free(b.completions);
    free(b.line_of);
    gpt2_strbuf_free(&text);
    return status;
}
