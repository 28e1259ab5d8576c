/* test_model_file.c - the model file: valid files load, damaged ones are
 * refused with one line that says what is wrong.
 *
 * The models are made here with gpt2_convert_random: 2 layers, 2 heads, n_embd
 * 32 (so that q8_0 applies), n_ctx 24 and a synthetic vocabulary of 300
 * tokens, once per dtype; and, when the shared data is there, one with
 * GPT-2's own 50257-token tokenizer.  From them the tests make every class
 * of bad file and feed it to gpt2_model_open_memory (with the tokenizer built on
 * top, as gpt2_open does) and, written to a file, to gpt2_open:
 *
 *   - truncation: every length up to the end of the tokenizer tables, every
 *     section and tensor boundary +-1, and a sample of the rest, each with
 *     exactly the message truncation gets;
 *   - files that are not models: empty, random, zeros, safetensors, GGUF,
 *     text, an older format version, a directory, a FIFO, a missing path;
 *   - byte damage, one byte at a time, over the whole header and tensor
 *     directory and over the tokenizer tables: refused by the checksums as
 *     it is, and, resealed with fresh checksums (a buggy or hostile writer),
 *     refused by the checks behind them or harmless and evaluated safely;
 *   - forged sizes, resealed: each hyperparameter at 0, just out of bounds
 *     and UINT32_MAX, offsets and lengths near UINT64_MAX, overlaps, tensors
 *     past the end, file_bytes disagreeing with the length, vocabulary
 *     offsets out of order, merges out of range or not concatenations, a
 *     wrong end-of-text id: each refused with its own key phrase.
 *
 * Every buffer handed to the loader is exactly as long as the file it
 * stands for, so that AddressSanitizer sees any read past its end.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "fileio.h"
#include "gpt2.h"
#include "kernels.h"
#include "model.h"
#include "model_writer.h"
#include "test_util.h"
#include "tokenizer.h"
#include "transformer.h"

#define ERR_SIZE 1024
#define N_VOCAB 300
#define N_CTX 24
#define NOT_OURS "not a gpt2 model file"

typedef struct {
    char path[4200];
    uint8_t *bytes; /* the whole file: exactly n bytes, MODEL_ALIGN-aligned */
    size_t n;
} ModelFile;

typedef struct {
    char dir[4096];
    ModelFile synthetic[DTYPE_COUNT]; /* by DType */
    ModelFile gpt2;                   /* GPT-2's tokenizer, q8_0; made on first use */
    char scratch[4200];               /* where damaged copies are written for gpt2_open */
} Fixture;

static Fixture fx;

/* ---- buffers and files ----------------------------------------------------- */

/* A MODEL_ALIGN-aligned copy of src[0..n) in an allocation of exactly n
 * bytes. */
static uint8_t *aligned_copy(const uint8_t *src, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, MODEL_ALIGN, n ? n : 1) != 0) fail_msg("out of memory");
    if (n) memcpy(p, src, n);
    return p;
}

static void read_model_file(ModelFile *f) {
    StrBuf s = {0};
    test_read_file(f->path, &s);
    f->n = s.len;
    f->bytes = aligned_copy((const uint8_t *)s.data, s.len);
    gpt2_strbuf_free(&s);
}

static void make_model(ModelFile *f, DType dtype, uint32_t n_vocab, const char *tokenizer_dir) {
    ModelConfig c = {
        .n_vocab = n_vocab, .n_ctx = N_CTX, .n_embd = 32, .n_layer = 2, .n_head = 2, .dtype = dtype, .ln_eps = 1e-5f};
    char err[ERR_SIZE];
    snprintf(f->path, sizeof f->path, "%s/%s-%u-%s.bin", fx.dir, tokenizer_dir ? "gpt2" : "synthetic", n_vocab,
             gpt2_dtype_name(dtype));
    if (!gpt2_convert_random(&c, 7, tokenizer_dir, f->path, NULL, err, sizeof err))
        fail_msg("gpt2_convert_random: %s", err);
    read_model_file(f);
}

/* The GPT-2-tokenizer model, or NULL (the test then skips). */
static const ModelFile *gpt2_model(void) {
    if (fx.gpt2.bytes) return &fx.gpt2;
    const char *shared = test_shared_dir();
    if (!shared) return NULL;
    char dir[4096];
    test_path(dir, sizeof dir, shared, "gpt2");
    make_model(&fx.gpt2, DTYPE_Q8_0, 0, dir);
    return &fx.gpt2;
}

#define REQUIRE_GPT2_MODEL(var)                                                                                        \
    const ModelFile *var = gpt2_model();                                                                               \
    if (!var) {                                                                                                        \
        skip();                                                                                                        \
        return;                                                                                                        \
    }

/* ---- where things are in a file ---------------------------------------------- */

static uint64_t section_offset(const uint8_t *b, Section s) {
    uint64_t off, len;
    gpt2_model_section(b, s, &off, &len);
    return off;
}

static uint64_t section_end(const uint8_t *b, Section s) {
    uint64_t off, len;
    gpt2_model_section(b, s, &off, &len);
    return off + len;
}

static size_t tensor_count(const uint8_t *b) { return rd_u32(b + HDR_N_TENSORS); }

/* Byte offset of tensor directory entry i. */
static size_t entry_at(const uint8_t *b, size_t i) {
    return (size_t)section_offset(b, SECTION_DIRECTORY) + i * MODEL_TENSOR_ENTRY_BYTES;
}

/* Byte offset of vocabulary offset i, and of u32 number k of the merges. */
static size_t vocab_at(const uint8_t *b, size_t i) { return (size_t)section_offset(b, SECTION_VOCAB) + 4 * i; }
static size_t merge_at(const uint8_t *b, size_t k) { return (size_t)section_offset(b, SECTION_MERGES) + 4 * k; }

/* ---- what the loader says ------------------------------------------------------ */

static void assert_one_line(const char *msg) {
    size_t len = strlen(msg);
    if (len == 0) fail_msg("an empty message");
    if (len >= ERR_SIZE - 1) fail_msg("a message filling the buffer: %s", msg);
    if (strpbrk(msg, "\n\r")) fail_msg("a message of more than one line: %s", msg);
}

static void assert_contains(const char *msg, const char *phrase) {
    if (!strstr(msg, phrase)) fail_msg("\"%s\" does not contain \"%s\"", msg, phrase);
}

/* Runs 3 positions (or n_ctx) through the model; with want_finite, every
 * logit must be finite. */
static void evaluate(const Model *m, bool want_finite) {
    const ModelConfig *c = &m->config;
    Transformer t;
    char err[ERR_SIZE];
    size_t rows = c->n_ctx < 3 ? c->n_ctx : 3;
    if (!gpt2_transformer_build(&t, m, gpt2_kernels_select(NULL), 1, rows, 1, err, sizeof err)) fail_msg("%s", err);
    const int32_t tokens[3] = {0, (int32_t)c->eot_id, (int32_t)c->n_vocab - 1};
    const uint32_t pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0};
    const bool want[3] = {true, true, true};
    float *logits = malloc(rows * c->n_vocab * sizeof *logits);
    assert_non_null(logits);
    Batch batch = {rows, tokens, pos, seq, want};
    if (!gpt2_transformer_forward(&t, &batch, logits, err, sizeof err)) fail_msg("%s", err);
    for (size_t i = 0; want_finite && i < rows * c->n_vocab; i++) {
        if (!isfinite(logits[i])) fail_msg("logit %zu is %g", i, (double)logits[i]);
    }
    free(logits);
    gpt2_transformer_free(&t);
}

/* What gpt2_open does, from memory: the loader, then the tokenizer.  On
 * success evaluates the model; on refusal leaves a one-line message. */
static bool open_fully(const uint8_t *b, size_t n, char *msg) {
    Model m;
    if (!gpt2_model_open_memory(&m, b, n, msg, ERR_SIZE)) {
        assert_one_line(msg);
        return false;
    }
    Tokenizer *tok;
    bool ok = gpt2_tokenizer_build(&tok, &m.vocab, msg, ERR_SIZE);
    if (ok) {
        evaluate(&m, false);
        gpt2_tokenizer_free(tok);
    } else {
        assert_one_line(msg);
    }
    gpt2_model_close(&m);
    return ok;
}

/* gpt2_open refuses path with "PATH: " and a line containing phrase. */
static void expect_file_refused(const char *path, const char *phrase) {
    Gpt2Options o = {.n_threads = 1};
    char err[ERR_SIZE];
    Gpt2 *g = gpt2_open(path, &o, err, sizeof err);
    if (g) fail_msg("%s opened, want a refusal with \"%s\"", path, phrase);
    assert_one_line(err);
    assert_true(strncmp(err, path, strlen(path)) == 0 && strncmp(err + strlen(path), ": ", 2) == 0);
    assert_contains(err, phrase);
}

/* b[0..n) is refused, from memory and as a file, naming phrase. */
static void expect_refused(const uint8_t *b, size_t n, const char *phrase) {
    char msg[ERR_SIZE];
    if (open_fully(b, n, msg)) fail_msg("loaded, want a refusal with \"%s\"", phrase);
    assert_contains(msg, phrase);
    test_write_file(fx.scratch, b, n);
    expect_file_refused(fx.scratch, phrase);
}

/* b[0..n) loads, from memory and as a file, and computes finite logits. */
static void expect_loads(const uint8_t *b, size_t n) {
    Model m;
    char msg[ERR_SIZE];
    if (!gpt2_model_open_memory(&m, b, n, msg, sizeof msg)) fail_msg("refused: %s", msg);
    evaluate(&m, true);
    gpt2_model_close(&m);
    test_write_file(fx.scratch, b, n);
    Gpt2Options o = {.n_threads = 1};
    Gpt2 *g = gpt2_open(fx.scratch, &o, msg, sizeof msg);
    if (!g) fail_msg("gpt2_open refused: %s", msg);
    gpt2_close(g);
}

/* ---- the valid files -------------------------------------------------------------- */

static void test_crc32_is_zlibs(void **state) {
    (void)state;
    assert_int_equal(gpt2_crc32_update(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(gpt2_crc32_update(gpt2_crc32_update(0, "1234", 4), "56789", 5), 0xCBF43926u);
    assert_int_equal(gpt2_crc32_update(0, "", 0), 0);
}

/* The model's tokenizer tables (and the tokenizer's pair table) live in
 * gpt2_fileio_alloc_table's memory: zeroed, writable to its last byte, on
 * a 2 MiB boundary where it is a mapping of its own (Linux, 1 MiB on). */
static void test_alloc_table(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 4095, 4096, (1u << 20) - 1, 1u << 20, (1u << 20) + 1, 3u << 20, 4u << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        const size_t n = sizes[k];
        uint8_t *p = gpt2_fileio_alloc_table(n);
        assert_non_null(p);
        for (size_t i = 0; i < n; i += 997) assert_int_equal(p[i], 0);
        if (n) assert_int_equal(p[n - 1], 0);
#ifdef __linux__
        if (n >= (1u << 20)) assert_int_equal((uintptr_t)p % (2u << 20), 0);
#endif
        memset(p, 0xA5, n);
        gpt2_fileio_free_table(p, n);
    }
    gpt2_fileio_free_table(NULL, 1u << 20);
}

/* The CRC one bit at a time, as the polynomial defines it. */
static uint32_t crc32_bitwise(uint32_t crc, const uint8_t *b, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? crc >> 1 ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

/* Long inputs take another loop (8 bytes at a time) than short ones: both
 * must be the same CRC, at every alignment, length and split of a chain. */
static void test_crc32_long_inputs(void **state) {
    (void)state;
    const size_t n = 200008;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 24);
    static const size_t lengths[] = {65535, 65536, 65537, 65543, 131071, 200000};
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++)
        for (size_t off = 0; off < 8; off++)
            assert_int_equal(gpt2_crc32_update(0, b + off, lengths[l]), crc32_bitwise(0, b + off, lengths[l]));
    const uint32_t whole = crc32_bitwise(0, b, 150001);
    assert_int_equal(gpt2_crc32_update(gpt2_crc32_update(0, b, 70003), b + 70003, 79998), whole);
    assert_int_equal(gpt2_crc32_update(gpt2_crc32_update(0, b, 3), b + 3, 149998), whole);
    free(b);
}

/* The writer lays files out as docs/model-format.md says. */
static void check_layout(const ModelFile *f, DType dtype) {
    const uint8_t *b = f->bytes;
    assert_memory_equal(b, MODEL_MAGIC, 8);
    assert_int_equal(rd_u32(b + HDR_VERSION), MODEL_VERSION);
    assert_int_equal(rd_u32(b + HDR_DTYPE), dtype);
    assert_int_equal(rd_u64(b + HDR_FILE_BYTES), f->n);
    for (size_t i = HDR_RESERVED; i < MODEL_HEADER_BYTES; i++) assert_int_equal(b[i], 0);
    assert_int_equal(section_offset(b, SECTION_DIRECTORY), MODEL_HEADER_BYTES);
    assert_int_equal(section_offset(b, SECTION_VOCAB), align_up(section_end(b, SECTION_DIRECTORY)));
    assert_int_equal(section_offset(b, SECTION_MERGES), align_up(section_end(b, SECTION_VOCAB)));
    uint64_t at = align_up(section_end(b, SECTION_MERGES));
    for (size_t i = 0; i < tensor_count(b); i++) {
        const uint8_t *e = b + entry_at(b, i);
        assert_int_equal(rd_u64(e + ENT_OFFSET), at);
        at = align_up(at + rd_u64(e + ENT_BYTES));
    }
    assert_int_equal(at, f->n);
    /* Sealed by the writer: sealing again changes nothing. */
    uint8_t *copy = aligned_copy(b, f->n);
    assert_true(gpt2_model_seal(copy, f->n));
    assert_memory_equal(copy, b, f->n);
    free(copy);
}

static void test_valid_models_load_and_run(void **state) {
    (void)state;
    for (DType t = 0; t < DTYPE_COUNT; t++) {
        const ModelFile *f = &fx.synthetic[t];
        check_layout(f, t);
        Model m;
        char err[ERR_SIZE];
        if (!gpt2_model_open_memory(&m, f->bytes, f->n, err, sizeof err)) fail_msg("%s: %s", f->path, err);
        assert_int_equal(m.config.n_vocab, N_VOCAB);
        assert_int_equal(m.config.n_layer, 2);
        assert_int_equal(m.config.dtype, t);
        assert_int_equal(m.vocab.n_merges, N_VOCAB - 257);
        evaluate(&m, true);
        gpt2_model_close(&m);

        Gpt2Options o = {.n_threads = 1};
        Gpt2 *g = gpt2_open(f->path, &o, err, sizeof err);
        if (!g) fail_msg("%s", err);
        assert_string_equal(gpt2_info(g).dtype, gpt2_dtype_name(t));
        assert_int_equal(gpt2_info(g).file_bytes, f->n);
        const int32_t ids[4] = {1, 2, 299, 5};
        float logits[4 * N_VOCAB];
        if (!gpt2_logits(g, ids, 4, logits, err, sizeof err)) fail_msg("%s", err);
        for (size_t i = 0; i < 4 * N_VOCAB; i++) assert_true(isfinite(logits[i]));
        gpt2_close(g);
    }
}

/* A vocabulary of only the 256 bytes and <|endoftext|>: an empty merge
 * table, which occupies no bytes at all. */
static void test_empty_merge_table_loads(void **state) {
    (void)state;
    ModelFile f;
    make_model(&f, DTYPE_F32, 257, NULL);
    assert_int_equal(rd_u32(f.bytes + HDR_N_MERGES), 0);
    expect_loads(f.bytes, f.n);
    free(f.bytes);
}

static void test_gpt2_tokenizer_model_loads(void **state) {
    (void)state;
    REQUIRE_GPT2_MODEL(f);
    check_layout(f, DTYPE_Q8_0);
    Gpt2Options o = {.n_threads = 1};
    char err[ERR_SIZE];
    Gpt2 *g = gpt2_open(f->path, &o, err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_int_equal(gpt2_info(g).n_vocab, 50257);
    int32_t *ids;
    size_t n;
    assert_true(gpt2_tokenize(g, "Hello world", 11, false, &ids, &n, err, sizeof err));
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 15496);
    assert_int_equal(ids[1], 995);
    float *logits = malloc(n * 50257 * sizeof *logits);
    assert_non_null(logits);
    if (!gpt2_logits(g, ids, n, logits, err, sizeof err)) fail_msg("%s", err);
    for (size_t i = 0; i < n * 50257; i++) assert_true(isfinite(logits[i]));
    free(logits);
    free(ids);
    gpt2_close(g);
}

/* The writer refuses tables the reader would refuse, and never leaves a
 * file, finished or partial, behind a refusal. */
static void test_writer_refusals(void **state) {
    (void)state;
    uint32_t offsets[N_VOCAB + 1];
    uint8_t bytes[N_VOCAB * 2];
    for (uint32_t i = 0; i <= N_VOCAB; i++) offsets[i] = i;
    uint32_t merges[3] = {0, 1, N_VOCAB};
    TokenizerData v = {N_VOCAB, offsets, bytes, 1, merges, 0, 0};
    ModelConfig c = {N_VOCAB, N_CTX, 32, 1, 1, DTYPE_F32, 0, 1e-5f, 0};
    TensorSource none = {NULL, NULL, NULL};
    char err[ERR_SIZE], path[4200];
    snprintf(path, sizeof path, "%s/never.bin", fx.dir);
    assert_false(gpt2_model_write(path, &c, &v, &none, err, sizeof err));
    assert_contains(err, "merge 0 names token 300");
    offsets[7] = offsets[6];
    assert_false(gpt2_model_write(path, &c, &v, &none, err, sizeof err));
    assert_contains(err, "token 6 is empty");
    struct stat st;
    assert_true(stat(path, &st) != 0);
    assert_false(test_has_partial(path));
    /* Nor does it replace a FIFO (or a device) named as the output. */
    snprintf(path, sizeof path, "%s/out-fifo", fx.dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    c.n_layer = 1;
    assert_false(gpt2_convert_random(&c, 1, NULL, path, NULL, err, sizeof err));
    assert_contains(err, "exists and is not a regular file");
    assert_true(stat(path, &st) == 0 && S_ISFIFO(st.st_mode));
    unlink(path);
}

/* ---- truncation ------------------------------------------------------------------- */

/* What the loader must say about the first k bytes of a model. */
static void truncation_message(char *out, size_t outsz, size_t k, size_t n) {
    if (k == 0) snprintf(out, outsz, NOT_OURS ": the file is empty");
    else if (k < MODEL_HEADER_BYTES)
        snprintf(out, outsz, "truncated: the file has %zu byte%s, less than the %d-byte header", k, k == 1 ? "" : "s",
                 MODEL_HEADER_BYTES);
    else snprintf(out, outsz, "truncated: the file has %zu of its %zu bytes (an interrupted download or copy?)", k, n);
}

static void expect_truncated(const ModelFile *f, size_t k) {
    uint8_t *b = aligned_copy(f->bytes, k);
    Model m;
    char msg[ERR_SIZE], want[ERR_SIZE];
    if (gpt2_model_open_memory(&m, b, k, msg, sizeof msg)) fail_msg("the first %zu of %zu bytes loaded", k, f->n);
    truncation_message(want, sizeof want, k, f->n);
    assert_string_equal(msg, want);
    free(b);
}

/* Every place something starts or ends: header, sections, tensors. */
static size_t boundaries(const uint8_t *b, size_t n, uint64_t *out, size_t max) {
    size_t k = 0;
    out[k++] = 8, out[k++] = MODEL_HEADER_BYTES, out[k++] = n;
    for (Section s = 0; s < SECTION_COUNT; s++) out[k++] = section_offset(b, s), out[k++] = section_end(b, s);
    for (size_t i = 0; i < tensor_count(b) && k + 2 <= max; i++) {
        const uint8_t *e = b + entry_at(b, i);
        out[k++] = rd_u64(e + ENT_OFFSET), out[k++] = rd_u64(e + ENT_OFFSET) + rd_u64(e + ENT_BYTES);
    }
    return k;
}

static void check_truncations(const ModelFile *f, size_t every_up_to, size_t stride) {
    for (size_t k = 0; k < every_up_to; k++) expect_truncated(f, k);
    for (size_t k = every_up_to; k < f->n; k += stride) expect_truncated(f, k);
    uint64_t at[256];
    size_t n_at = boundaries(f->bytes, f->n, at, 256);
    for (size_t i = 0; i < n_at; i++) {
        for (uint64_t k = at[i] ? at[i] - 1 : 0; k <= at[i] + 1; k++) {
            if (k < f->n) expect_truncated(f, (size_t)k);
        }
    }
}

static void test_truncated_files_say_truncated(void **state) {
    (void)state;
    for (DType t = 0; t < DTYPE_COUNT; t++) {
        const ModelFile *f = &fx.synthetic[t];
        size_t tables_end = (size_t)section_end(f->bytes, SECTION_MERGES);
        /* Every length through the tables for one dtype; they are the same
         * bytes in the others. */
        check_truncations(f, t == DTYPE_F32 ? tables_end + 1 : 0, 61);
    }
}

static void test_truncated_files_through_gpt2_open(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_Q8_0];
    uint64_t at[256];
    size_t n_at = boundaries(f->bytes, f->n, at, 256);
    for (size_t i = 0; i < n_at; i++) {
        size_t k = at[i] - 1; /* every boundary is past 0 */
        char want[ERR_SIZE];
        test_write_file(fx.scratch, f->bytes, k);
        truncation_message(want, sizeof want, k, f->n);
        expect_file_refused(fx.scratch, want);
    }
}

static void test_gpt2_tokenizer_model_truncated(void **state) {
    (void)state;
    REQUIRE_GPT2_MODEL(f);
    /* 1 MB of tables: a stride through them, plus every boundary. */
    check_truncations(f, MODEL_HEADER_BYTES + 1, 16411);
}

/* ---- files that are not models ------------------------------------------------------ */

static void expect_memory_refused(const void *content, size_t n, const char *phrase) {
    uint8_t *b = aligned_copy(content, n);
    char msg[ERR_SIZE];
    Model m;
    if (gpt2_model_open_memory(&m, b, n, msg, sizeof msg)) fail_msg("loaded, want \"%s\"", phrase);
    assert_one_line(msg);
    assert_contains(msg, phrase);
    free(b);
}

/* Refused from memory and as a file, as something that is not ours: the
 * message says what the file is, and gpt2_file_kind names the same kind.
 * What to do about it is the command line's to say, not the library's. */
static void expect_foreign(const void *content, size_t n, const char *phrase, Gpt2FileKind kind) {
    expect_memory_refused(content, n, NOT_OURS);
    expect_memory_refused(content, n, phrase);
    test_write_file(fx.scratch, content, n);
    expect_file_refused(fx.scratch, phrase);
    char msg[ERR_SIZE];
    Model m;
    assert_false(gpt2_model_open(&m, fx.scratch, msg, sizeof msg));
    if (strstr(msg, "scripts/") || strstr(msg, "gpt2-convert")) fail_msg("the library advertises a program: %s", msg);
    if (gpt2_file_kind(fx.scratch) != kind)
        fail_msg("gpt2_file_kind says %d for \"%s\", want %d", (int)gpt2_file_kind(fx.scratch), phrase, (int)kind);
}

static void test_foreign_files_are_not_models(void **state) {
    (void)state;
    uint8_t junk[4096];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        junk[i] = (uint8_t)(x >> 24);
    }
    junk[0] = 0xE3; /* not a text byte, not a magic */
    expect_foreign(junk, sizeof junk, "bad magic", GPT2_FILE_UNKNOWN);
    expect_foreign("", 0, "the file is empty", GPT2_FILE_EMPTY);
    static const uint8_t zeros[4096];
    expect_foreign(zeros, sizeof zeros, "bad magic", GPT2_FILE_UNKNOWN);
    static const char prompt[] = "Once upon a time,\nthere was a prompt.\n";
    expect_foreign(prompt, strlen(prompt), "text file", GPT2_FILE_TEXT);
    static const char config[] = "{\"model_type\": \"gpt2\"}\n";
    expect_foreign(config, strlen(config), "text file", GPT2_FILE_TEXT);
    static const char lfs[] = "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n";
    expect_foreign(lfs, strlen(lfs), "Git LFS pointer", GPT2_FILE_LFS_POINTER);
    static const char safetensors[] = "\x13\0\0\0\0\0\0\0{\"__metadata__\":{}}";
    expect_foreign(safetensors, sizeof safetensors - 1, "safetensors", GPT2_FILE_SAFETENSORS);
    uint8_t gguf[64] = {'G', 'G', 'U', 'F', 3};
    expect_foreign(gguf, sizeof gguf, "GGUF", GPT2_FILE_GGUF);
    uint8_t zip[64] = {'P', 'K', 3, 4};
    expect_foreign(zip, sizeof zip, "PyTorch", GPT2_FILE_PYTORCH);
    static const uint8_t legacy[64] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                       0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    expect_foreign(legacy, sizeof legacy, "PyTorch", GPT2_FILE_PYTORCH);
    uint8_t llmc[1024] = {0};
    wr_u32(llmc, 20240326);
    expect_foreign(llmc, sizeof llmc, "llm.c", GPT2_FILE_LLMC);
    assert_int_equal(gpt2_file_kind(fx.dir), GPT2_FILE_FOLDER);
    char none[4200];
    snprintf(none, sizeof none, "%s/no-such-file", fx.dir);
    assert_int_equal(gpt2_file_kind(none), GPT2_FILE_MISSING);
    /* The start of the magic alone is a model file cut short. */
    expect_memory_refused("GPT2", 4, "truncated: the file has 4 bytes");
}

static void test_shared_safetensors_is_not_a_model(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    char path[4096];
    test_path(path, sizeof path, shared, "reference/tiny/model.safetensors");
    expect_file_refused(path, NOT_OURS ": this looks like a safetensors file");
    assert_int_equal(gpt2_file_kind(path), GPT2_FILE_SAFETENSORS);
}

static void test_other_versions_are_named(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_F32];
    uint8_t *b = aligned_copy(f->bytes, f->n);
    /* What the version 1 writer wrote: no checksums, zeros. */
    wr_u32(b + HDR_VERSION, 1);
    memset(b + HDR_HEADER_CRC, 0, MODEL_HEADER_BYTES - HDR_HEADER_CRC);
    expect_refused(b, f->n,
                   "format version 1 is not supported (this gpt2 reads versions 2 to 3); convert the model again");
    /* A later version, sealed as ours are. */
    memcpy(b, f->bytes, f->n);
    wr_u32(b + HDR_VERSION, MODEL_VERSION + 1);
    gpt2_model_seal(b, f->n);
    expect_refused(b, f->n, "format version 4 is not supported");
    /* A damaged version field is damage, not a version. */
    memcpy(b, f->bytes, f->n);
    wr_u32(b + HDR_VERSION, MODEL_VERSION + 1);
    expect_refused(b, f->n, "damaged header: its checksum does not match");
    free(b);
}

static void test_paths_that_are_not_files(void **state) {
    (void)state;
    expect_file_refused(fx.dir, "is a directory");
    char path[4200];
    snprintf(path, sizeof path, "%s/missing.bin", fx.dir);
    expect_file_refused(path, "No such file or directory");
    /* Opening a FIFO must not wait for a writer. */
    snprintf(path, sizeof path, "%s/fifo", fx.dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_file_refused(path, "not a regular file");
    unlink(path);
    struct stat st;
    if (stat("/dev/zero", &st) == 0) expect_file_refused("/dev/zero", "not a regular file");
}

/* ---- byte damage ----------------------------------------------------------------------- */

typedef struct {
    uint8_t xor_mask, set; /* the byte becomes (b ^ xor_mask), or set when xor_mask is 0 */
} Damage;

static const Damage damages[] = {{0x01, 0}, {0x40, 0}, {0x80, 0}, {0, 0x00}, {0, 0xFF}};

static uint8_t damaged(uint8_t b, Damage d) { return d.xor_mask ? (uint8_t)(b ^ d.xor_mask) : d.set; }

/* Counts of what resealed damage came to. */
typedef struct {
    size_t refused, loaded;
} Tally;

/* Whether resealed damage to byte `at` may leave a model that loads: the
 * fields no check can tell from another real model's (a head count that
 * divides n_embd, another epsilon, fewer merges), the checksums (resealing
 * rewrites them), and the tokenizer tables (which may become another
 * consistent vocabulary).  Any other field of the header, and every byte of
 * the directory, is checked exactly. */
static bool may_be_harmless(const uint8_t *b, size_t at) {
    /* A version 3 file without added tokens reads the same as version 2,
     * and a few more added tokens (end-of-text, say) may be consistent. */
    static const unsigned fields[] = {HDR_VERSION,       HDR_N_HEAD,    HDR_LN_EPS,     HDR_N_MERGES, HDR_HEADER_CRC,
                                      HDR_DIRECTORY_CRC, HDR_VOCAB_CRC, HDR_MERGES_CRC, HDR_N_ADDED};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        if (at >= fields[i] && at < fields[i] + 4) return true;
    }
    return at >= section_end(b, SECTION_DIRECTORY);
}

/* Damages byte `at` of a copy of f in place (b holds f's bytes, exactly
 * f->n of them) and checks both the raw damage, which a checksum must
 * catch with the message `raw` (NULL: a padding byte no checksum covers,
 * whose damage must be harmless), and the resealed damage.  Restores b. */
static void damage_byte(const ModelFile *f, uint8_t *b, size_t at, Damage d, const char *raw, Tally *tally) {
    uint8_t was = b[at], now = damaged(was, d);
    if (now == was) return;
    char msg[ERR_SIZE];
    b[at] = now;
    bool loaded = open_fully(b, f->n, msg);
    if (!raw && !loaded) fail_msg("padding byte %zu: 0x%02X -> 0x%02X: refused: %s", at, was, now, msg);
    if (raw && loaded) fail_msg("byte %zu: 0x%02X -> 0x%02X went unnoticed", at, was, now);
    if (raw && !strstr(msg, raw)) fail_msg("byte %zu: 0x%02X -> 0x%02X: \"%s\", want \"%s\"", at, was, now, msg, raw);
    gpt2_model_seal(b, f->n);
    if (open_fully(b, f->n, msg)) {
        if (!may_be_harmless(f->bytes, at)) fail_msg("byte %zu: 0x%02X -> 0x%02X, resealed, loaded", at, was, now);
        tally->loaded++;
    } else {
        tally->refused++;
    }
    memcpy(b, f->bytes, MODEL_HEADER_BYTES);
    b[at] = was;
}

/* What the loader says about damage to byte `at` of the front of a file,
 * or NULL for the padding between sections, which nothing reads. */
static const char *raw_damage_message(const uint8_t *b, size_t at) {
    static const char *const section_damage[SECTION_COUNT] = {
        "damaged tensor directory: its checksum does not match",
        "damaged vocabulary: its checksum does not match",
        "damaged merge table: its checksum does not match",
    };
    if (at < 8) return NOT_OURS;
    if (at < MODEL_HEADER_BYTES) return "damaged header: its checksum does not match";
    for (Section s = 0; s < SECTION_COUNT; s++) {
        if (at >= section_offset(b, s) && at < section_end(b, s)) return section_damage[s];
    }
    return NULL;
}

static void damage_range(const ModelFile *f, size_t begin, size_t end, size_t stride, Tally *tally) {
    uint8_t *b = aligned_copy(f->bytes, f->n);
    for (size_t at = begin; at < end; at += stride) {
        for (size_t i = 0; i < sizeof damages / sizeof *damages; i++)
            damage_byte(f, b, at, damages[i], raw_damage_message(f->bytes, at), tally);
    }
    assert_memory_equal(b, f->bytes, f->n);
    free(b);
}

static void test_header_and_directory_damage(void **state) {
    (void)state;
    for (DType t = 0; t < DTYPE_COUNT; t++) {
        const ModelFile *f = &fx.synthetic[t];
        Tally tally = {0};
        damage_range(f, 0, (size_t)section_end(f->bytes, SECTION_DIRECTORY), 1, &tally);
        printf("%s: header and directory damage, resealed: %zu refused, %zu harmless\n", gpt2_dtype_name(t),
               tally.refused, tally.loaded);
        assert_true(tally.refused > 0);
    }
}

static void test_table_damage(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_F16];
    Tally tally = {0};
    damage_range(f, (size_t)section_offset(f->bytes, SECTION_VOCAB), (size_t)section_end(f->bytes, SECTION_MERGES), 1,
                 &tally);
    printf("tokenizer table damage, resealed: %zu refused, %zu harmless\n", tally.refused, tally.loaded);
    assert_true(tally.refused > 0);
}

static void test_gpt2_tokenizer_table_damage(void **state) {
    (void)state;
    REQUIRE_GPT2_MODEL(f);
    Tally tally = {0};
    size_t begin = (size_t)section_offset(f->bytes, SECTION_VOCAB), end = (size_t)section_end(f->bytes, SECTION_MERGES);
    damage_range(f, begin, begin + 8, 1, &tally); /* the first offsets */
    damage_range(f, begin + 8, end, (end - begin) / 16 + 1, &tally);
    printf("GPT-2 tokenizer table damage, resealed: %zu refused, %zu harmless\n", tally.refused, tally.loaded);
    assert_true(tally.refused > 0);
}

/* The checksum messages reach gpt2_open's caller too. */
static void test_damage_through_gpt2_open(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_BF16];
    const struct {
        size_t at;
        const char *phrase;
    } cases[] = {
        {HDR_N_HEAD, "damaged header: its checksum does not match"},
        {(size_t)section_offset(f->bytes, SECTION_DIRECTORY) + 40, "damaged tensor directory: its checksum"},
        {vocab_at(f->bytes, N_VOCAB + 1) + 3, "damaged vocabulary: its checksum"},
        {merge_at(f->bytes, 7), "damaged merge table: its checksum"},
    };
    uint8_t *b = aligned_copy(f->bytes, f->n);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        b[cases[i].at] ^= 0x10;
        expect_refused(b, f->n, cases[i].phrase);
        b[cases[i].at] ^= 0x10;
    }
    free(b);
}

/* ---- forged sizes ------------------------------------------------------------------------ */

/* A copy of f with a u32 or u64 written at `at`, resealed. */
static uint8_t *forged(const ModelFile *f, size_t at, int width, uint64_t value) {
    uint8_t *b = aligned_copy(f->bytes, f->n);
    if (width == 4) wr_u32(b + at, (uint32_t)value);
    else wr_u64(b + at, value);
    gpt2_model_seal(b, f->n);
    return b;
}

static void forge32(const ModelFile *f, size_t at, uint32_t value, const char *phrase) {
    uint8_t *b = forged(f, at, 4, value);
    expect_refused(b, f->n, phrase);
    free(b);
}

/* Version 2 files, written before added tokens existed, still open: their
 * bytes 112..115, now n_added, were reserved.  In version 3, n_added is
 * checked against the vocabulary, and an added token cannot be a merge's. */
static void test_version_2_and_added_tokens(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_F32];
    uint32_t n_vocab = rd_u32(f->bytes + HDR_N_VOCAB);
    uint8_t *b = aligned_copy(f->bytes, f->n);
    wr_u32(b + HDR_VERSION, 2);
    gpt2_model_seal(b, f->n);
    expect_loads(b, f->n);
    wr_u32(b + HDR_N_ADDED, 1);
    gpt2_model_seal(b, f->n);
    expect_refused(b, f->n, "damaged header: reserved bytes 112..127 are not zero");
    free(b);
    forge32(f, HDR_N_ADDED, n_vocab, "added tokens, not fewer than the");
    forge32(f, HDR_N_ADDED, 2, "names an added token");
}

static void forge64(const ModelFile *f, size_t at, uint64_t value, const char *phrase) {
    uint8_t *b = forged(f, at, 8, value);
    expect_refused(b, f->n, phrase);
    free(b);
}

static uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void test_forged_hyperparameters(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_F32];
    forge32(f, HDR_N_VOCAB, 0, "damaged header: n_vocab is 0, outside 257..1048576");
    forge32(f, HDR_N_VOCAB, 256, "n_vocab is 256, outside");
    forge32(f, HDR_N_VOCAB, MAX_VOCAB + 1, "n_vocab is 1048577, outside");
    forge32(f, HDR_N_VOCAB, UINT32_MAX, "n_vocab is 4294967295, outside");
    forge32(f, HDR_N_VOCAB, MAX_VOCAB, "the vocabulary section has 1559 bytes, too few for 1048576 tokens");
    forge32(f, HDR_N_VOCAB, N_VOCAB + 1, "damaged vocabulary: token");
    forge32(f, HDR_N_CTX, 0, "n_ctx is 0, outside");
    forge32(f, HDR_N_CTX, MAX_CTX + 1, "n_ctx is 65537, outside");
    forge32(f, HDR_N_CTX, UINT32_MAX, "n_ctx is 4294967295");
    forge32(f, HDR_N_CTX, N_CTX + 1, "damaged tensor directory: wpe.weight is 24x32, the config says 25x32");
    forge32(f, HDR_N_EMBD, 0, "n_embd is 0, outside");
    forge32(f, HDR_N_EMBD, UINT32_MAX, "n_embd is 4294967295");
    forge32(f, HDR_N_EMBD, 33, "n_embd 33 is not a multiple of n_head 2");
    forge32(f, HDR_N_EMBD, 64, "wte.weight is 300x32, the config says 300x64");
    forge32(f, HDR_N_LAYER, 0, "n_layer is 0, outside");
    forge32(f, HDR_N_LAYER, MAX_LAYER + 1, "n_layer is 1025, outside");
    forge32(f, HDR_N_LAYER, UINT32_MAX, "n_layer is 4294967295");
    forge32(f, HDR_N_LAYER, 3, "28 tensors listed, a 3-layer model has 40");
    forge32(f, HDR_N_HEAD, 0, "n_head is 0, outside");
    forge32(f, HDR_N_HEAD, UINT32_MAX, "n_head is 4294967295");
    forge32(f, HDR_N_HEAD, 3, "n_embd 32 is not a multiple of n_head 3");
    forge32(f, HDR_DTYPE, DTYPE_COUNT, "unknown weight dtype 4");
    forge32(f, HDR_DTYPE, UINT32_MAX, "unknown weight dtype");
    forge32(f, HDR_DTYPE, DTYPE_F16, "wte.weight has type 0, a f16 model stores it as f16");
    forge32(f, HDR_EOT_ID, N_VOCAB, "end-of-text id 300 is not below n_vocab 300");
    forge32(f, HDR_EOT_ID, UINT32_MAX, "end-of-text id 4294967295");
    forge32(f, HDR_EOT_ID, 5, "end-of-text token 5 is not \"<|endoftext|>\"");
    forge32(f, HDR_LN_EPS, 0, "LayerNorm epsilon 0 is outside (0, 1)");
    forge32(f, HDR_LN_EPS, float_bits(-1e-5f), "LayerNorm epsilon");
    forge32(f, HDR_LN_EPS, float_bits(1.0f), "LayerNorm epsilon 1 is outside");
    forge32(f, HDR_LN_EPS, 0x7FC00000u, "LayerNorm epsilon");
    forge32(f, HDR_LN_EPS, 0x7F800000u, "LayerNorm epsilon");
    forge32(f, HDR_HEADER_BYTES, 64, "header size 64, expected 128");
    forge32(f, HDR_HEADER_BYTES, UINT32_MAX, "header size 4294967295");
    forge32(f, HDR_N_TENSORS, 29, "29 tensors listed, a 2-layer model has 28");
    forge32(f, HDR_N_TENSORS, UINT32_MAX, "4294967295 tensors listed");
    forge32(f, HDR_RESERVED + 9, 1, "damaged header: reserved bytes 116..127 are not zero");
    /* What no check can tell from a real model: another head count that
     * divides n_embd, another epsilon.  They load and compute. */
    uint8_t *b = forged(f, HDR_N_HEAD, 4, 4);
    expect_loads(b, f->n);
    free(b);
    b = forged(f, HDR_LN_EPS, 4, float_bits(1e-3f));
    expect_loads(b, f->n);
    free(b);
}

static void test_forged_sections(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_F32];
    const uint64_t n = f->n, near_end = UINT64_MAX - 63, vocab = section_offset(f->bytes, SECTION_VOCAB);
    const uint64_t vocab_len = section_end(f->bytes, SECTION_VOCAB) - vocab;
    /* The file's length against the header's. */
    forge64(f, HDR_FILE_BYTES, n + 64, "truncated: the file has");
    forge64(f, HDR_FILE_BYTES, UINT64_MAX, "of its 18446744073709551615 bytes");
    forge64(f, HDR_FILE_BYTES, n - 64, "damaged: the file has");
    forge64(f, HDR_FILE_BYTES, 0, "but its header says 0");
    /* Sections outside the file, their ends overflowing 64 bits. */
    forge64(f, HDR_TENSORS_OFFSET, near_end,
            "the tensor directory (896 bytes at offset 18446744073709551552) lies outside");
    forge64(f, HDR_TENSORS_OFFSET, n, "the tensor directory (896 bytes at offset");
    forge64(f, HDR_VOCAB_OFFSET, near_end, "the vocabulary (1559 bytes at offset 18446744073709551552) lies outside");
    forge64(f, HDR_VOCAB_BYTES, UINT64_MAX, "the vocabulary section has 18446744073709551615 bytes, more than");
    forge64(f, HDR_VOCAB_BYTES, UINT64_MAX - vocab + 1, "more than 300 tokens can take");
    forge64(f, HDR_VOCAB_BYTES, n - vocab + 1, "lies outside the file");
    forge64(f, HDR_MERGES_OFFSET, near_end, "the merge table (516 bytes at offset 18446744073709551552) lies outside");
    forge32(f, HDR_N_MERGES, UINT32_MAX, "4294967295 merges listed, more than a vocabulary of 300 tokens can have");
    forge32(f, HDR_N_MERGES, N_VOCAB, "300 merges listed");
    /* Misplaced sections. */
    forge64(f, HDR_TENSORS_OFFSET, MODEL_HEADER_BYTES + 8,
            "the tensor directory starts at offset 136, not a multiple of 64");
    forge64(f, HDR_VOCAB_OFFSET, vocab + 4, "the vocabulary starts at offset");
    forge64(f, HDR_VOCAB_BYTES, 8, "the vocabulary section has 8 bytes, too few for 300 tokens");
    forge64(f, HDR_VOCAB_BYTES, 301 * 4 + 300 * 4096 + 1, "has 1230005 bytes, more than 300 tokens can take");
    forge64(f, HDR_VOCAB_BYTES, vocab_len - 1, "damaged vocabulary: token 299 ends past the vocabulary section");
    forge64(f, HDR_VOCAB_BYTES, vocab_len + 1, "damaged vocabulary: the tokens end 1 bytes before the section does");
    forge64(f, HDR_MERGES_OFFSET, vocab, "damaged: the vocabulary overlaps the merge table");
    forge64(f, HDR_TENSORS_OFFSET, vocab, "damaged tensor directory: wte.weight is 2x3, the config says 300x32");
    forge64(f, HDR_VOCAB_OFFSET, MODEL_HEADER_BYTES,
            "damaged vocabulary: token 0 is empty or its offsets go backwards");
    /* One more merge than there is: the next row is the padding's zeros. */
    forge32(f, HDR_N_MERGES, N_VOCAB - 256, "tokenizer: merge 43: token 0 is not token 0 followed by token 0");
}

/* A file ends with the padding after its last tensor: no more (stray data
 * appended, file_bytes forged to match), no less. */
static void test_file_ends_after_the_last_tensor(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_F16];
    const size_t extras[] = {1, 63, 64, 4096};
    for (size_t i = 0; i < sizeof extras / sizeof *extras; i++) {
        size_t n = f->n + extras[i];
        void *p;
        assert_int_equal(posix_memalign(&p, MODEL_ALIGN, n), 0);
        uint8_t *b = p;
        memcpy(b, f->bytes, f->n);
        memset(b + f->n, 0, extras[i]);
        wr_u64(b + HDR_FILE_BYTES, n);
        gpt2_model_seal(b, n);
        char want[64];
        snprintf(want, sizeof want, "damaged: %zu stray byte%s after the last tensor", extras[i],
                 extras[i] == 1 ? "" : "s");
        expect_refused(b, n, want);
        free(b);
    }
    /* n_embd 8: the last tensor, a bias of 32 bytes, is followed by 32
     * bytes of padding. */
    ModelConfig c = {257, 4, 8, 1, 2, DTYPE_F32, 0, 1e-5f, 0};
    ModelFile g;
    char err[ERR_SIZE];
    snprintf(g.path, sizeof g.path, "%s/narrow.bin", fx.dir);
    if (!gpt2_convert_random(&c, 3, NULL, g.path, NULL, err, sizeof err)) fail_msg("%s", err);
    read_model_file(&g);
    expect_loads(g.bytes, g.n);
    uint8_t *b = aligned_copy(g.bytes, g.n - 32);
    wr_u64(b + HDR_FILE_BYTES, g.n - 32);
    gpt2_model_seal(b, g.n - 32);
    expect_refused(b, g.n - 32, "damaged: the file has");
    expect_refused(b, g.n - 32, "not a multiple of 64 (the padding after its last tensor is missing)");
    free(b);
    free(g.bytes);
}

static void test_forged_directory_entries(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_BF16];
    const uint8_t *b = f->bytes;
    const size_t wte = entry_at(b, TK_WTE), lnf_w = entry_at(b, TK_LNF_W), lnf_b = entry_at(b, TK_LNF_B);
    const size_t qkv = entry_at(b, TENSORS_GLOBAL + TK_QKV_W - TK_LN1_W);
    const uint64_t n = f->n, near_end = UINT64_MAX - 63, vocab = section_offset(b, SECTION_VOCAB);
    forge32(f, wte + ENT_KIND, TK_WPE, "damaged tensor directory: entry 0 should be wte.weight");
    forge32(f, qkv + ENT_LAYER, 1, "entry 6 should be h.0.attn.c_attn.weight");
    forge32(f, wte + ENT_ROWS, N_VOCAB + 1, "wte.weight is 301x32, the config says 300x32");
    forge32(f, qkv + ENT_COLS, UINT32_MAX, "h.0.attn.c_attn.weight is 96x4294967295, the config says 96x32");
    forge32(f, wte + ENT_DTYPE, DTYPE_F16, "wte.weight has type 1, a bf16 model stores it as bf16");
    forge32(f, wte + ENT_DTYPE, UINT32_MAX, "wte.weight has type 4294967295");
    forge32(f, lnf_w + ENT_DTYPE, DTYPE_BF16, "ln_f.weight has type 2, a bf16 model stores it as f32");
    forge64(f, wte + ENT_BYTES, UINT64_MAX, "wte.weight has 18446744073709551615 bytes, its shape needs 19456");
    forge64(f, wte + ENT_BYTES, 0, "wte.weight has 0 bytes");
    forge64(f, wte + ENT_OFFSET, n, "wte.weight (19456 bytes at offset");
    forge64(f, wte + ENT_OFFSET, near_end,
            "wte.weight (19456 bytes at offset 18446744073709551552) lies outside the file");
    forge64(f, qkv + ENT_OFFSET, n - 64, "h.0.attn.c_attn.weight (6144 bytes at offset");
    forge64(f, wte + ENT_OFFSET, rd_u64(f->bytes + wte + ENT_OFFSET) + 2, "wte.weight starts at offset");
    /* Overlaps: two tensors in one place, a tensor over a section. */
    forge64(f, lnf_b + ENT_OFFSET, rd_u64(f->bytes + lnf_w + ENT_OFFSET), "overlaps tensor ln_f.");
    forge64(f, lnf_w + ENT_OFFSET, vocab + 64, "damaged: tensor ln_f.weight overlaps the vocabulary");
    forge64(f, lnf_w + ENT_OFFSET, 64, "damaged: tensor ln_f.weight overlaps the header");
    forge64(f, lnf_w + ENT_OFFSET, MODEL_HEADER_BYTES + 64,
            "damaged: tensor ln_f.weight overlaps the tensor directory");
}

static void test_forged_vocabulary(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_Q8_0];
    const uint8_t *b = f->bytes;
    const uint32_t blob = rd_u32(b + vocab_at(b, N_VOCAB));
    forge32(f, vocab_at(b, 0), 1, "damaged vocabulary: the first token does not start at 0");
    forge32(f, vocab_at(b, 5), rd_u32(b + vocab_at(b, 4)),
            "damaged vocabulary: token 4 is empty or its offsets go backwards");
    forge32(f, vocab_at(b, 5), rd_u32(b + vocab_at(b, 4)) - 1, "token 4 is empty or its offsets go backwards");
    forge32(f, vocab_at(b, 100), UINT32_MAX, "damaged vocabulary: token 99 is 4294967196 bytes long, more than 4096");
    forge32(f, vocab_at(b, N_VOCAB), blob + 1, "damaged vocabulary: token 299 ends past the vocabulary section");
    forge32(f, vocab_at(b, N_VOCAB), blob - 1, "damaged vocabulary: the tokens end 1 bytes before the section does");
    /* Byte tokens 0x41 and 0x42 the same: the tokenizer's check. */
    forge32(f, vocab_at(b, N_VOCAB + 1) + 0x40, 0x42424242, "tokenizer: tokens");
}

static void test_forged_merges(void **state) {
    (void)state;
    const ModelFile *f = &fx.synthetic[DTYPE_F32];
    const uint8_t *b = f->bytes;
    forge32(f, merge_at(b, 2), N_VOCAB, "damaged merge table: merge 0 names token 300, beyond the vocabulary of 300");
    forge32(f, merge_at(b, 3 * 42), UINT32_MAX, "merge 42 names token 4294967295");
    forge32(f, merge_at(b, 3 * 5 + 2), 256, "tokenizer: merge 5: token 256 is not token 5 followed by token 0");
    /* A pair listed twice: row 1 becomes row 0. */
    uint8_t *d = aligned_copy(b, f->n);
    memcpy(d + merge_at(d, 3), d + merge_at(d, 0), 12);
    gpt2_model_seal(d, f->n);
    expect_refused(d, f->n, "tokenizer: merge 1 repeats the pair of merge 0");
    free(d);
    /* Fewer merges than written: a different but consistent tokenizer. */
    d = forged(f, HDR_N_MERGES, 4, 10);
    expect_loads(d, f->n);
    free(d);
}

/* ---- a token of the most bytes allowed, and one more ---------------------------------- */

typedef struct {
    uint32_t offsets[260];
    uint8_t bytes[256 + 4096 + 2 + 13];
} LongVocab;

/* The 256 bytes, 'a' x 4096, "bb", <|endoftext|>. */
static TokenizerData long_vocab(LongVocab *v) {
    uint32_t at = 0, id = 0;
    for (; id < 256; id++) v->offsets[id] = at, v->bytes[at++] = (uint8_t)id;
    v->offsets[id++] = at;
    memset(v->bytes + at, 'a', 4096), at += 4096;
    v->offsets[id++] = at;
    memcpy(v->bytes + at, "bb", 2), at += 2;
    v->offsets[id++] = at;
    memcpy(v->bytes + at, "<|endoftext|>", 13), at += 13;
    v->offsets[id] = at;
    return (TokenizerData){259, v->offsets, v->bytes, 0, NULL, 258, 0};
}

static bool small_weights(void *ctx, const TensorSpec *s, float *out, char *err, size_t errsz) {
    (void)ctx, (void)err, (void)errsz;
    for (size_t i = 0; i < (size_t)s->rows * s->cols; i++) out[i] = 0.01f * (float)(i % 7) + 0.5f;
    return true;
}

static void test_token_length_limit(void **state) {
    (void)state;
    LongVocab lv;
    TokenizerData v = long_vocab(&lv);
    ModelConfig c = {259, 8, 32, 1, 2, DTYPE_F16, 258, 1e-5f, 0};
    TensorSource src = {small_weights, NULL, NULL};
    ModelFile f;
    char err[ERR_SIZE];
    snprintf(f.path, sizeof f.path, "%s/long.bin", fx.dir);
    if (!gpt2_model_write(f.path, &c, &v, &src, err, sizeof err)) fail_msg("%s", err);
    read_model_file(&f);
    expect_loads(f.bytes, f.n); /* 4096 bytes is allowed */
    forge32(&f, vocab_at(f.bytes, 257), 256 + 4097, "damaged vocabulary: token 256 is 4097 bytes long, more than 4096");
    free(f.bytes);
    /* and the writer will not write one more */
    lv.offsets[257]++;
    assert_false(gpt2_model_write(f.path, &c, &v, &src, err, sizeof err));
    assert_contains(err, "token 256");
    lv.offsets[257]--;
    /* nor tables the tokenizer refuses: an end of text the config does not
     * name, a merge that is not the concatenation of its parts */
    c.eot_id = 257;
    assert_false(gpt2_model_write(f.path, &c, &v, &src, err, sizeof err));
    assert_contains(err, "<|endoftext|> 258, 0 added) disagrees with the config (259, 257, 0)");
    c.eot_id = 258;
    uint32_t merge[3] = {'b', 'b', 'a'};
    v.merges = merge, v.n_merges = 1;
    assert_false(gpt2_model_write(f.path, &c, &v, &src, err, sizeof err));
    assert_contains(err, "is not token 98 followed by token 98");
    merge[2] = 257; /* "bb": accepted */
    if (!gpt2_model_write(f.path, &c, &v, &src, err, sizeof err)) fail_msg("%s", err);
}

/* ---- set-up ---------------------------------------------------------------------------- */

static int setup(void **state) {
    (void)state;
    test_mkdtemp(fx.dir, sizeof fx.dir);
    snprintf(fx.scratch, sizeof fx.scratch, "%s/damaged.bin", fx.dir);
    for (DType t = 0; t < DTYPE_COUNT; t++) make_model(&fx.synthetic[t], t, N_VOCAB, NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (DType t = 0; t < DTYPE_COUNT; t++) free(fx.synthetic[t].bytes);
    free(fx.gpt2.bytes);
    test_rmtree(fx.dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_is_zlibs),
        cmocka_unit_test(test_crc32_long_inputs),
        cmocka_unit_test(test_alloc_table),
        cmocka_unit_test(test_valid_models_load_and_run),
        cmocka_unit_test(test_empty_merge_table_loads),
        cmocka_unit_test(test_gpt2_tokenizer_model_loads),
        cmocka_unit_test(test_writer_refusals),
        cmocka_unit_test(test_truncated_files_say_truncated),
        cmocka_unit_test(test_truncated_files_through_gpt2_open),
        cmocka_unit_test(test_gpt2_tokenizer_model_truncated),
        cmocka_unit_test(test_foreign_files_are_not_models),
        cmocka_unit_test(test_shared_safetensors_is_not_a_model),
        cmocka_unit_test(test_other_versions_are_named),
        cmocka_unit_test(test_version_2_and_added_tokens),
        cmocka_unit_test(test_paths_that_are_not_files),
        cmocka_unit_test(test_header_and_directory_damage),
        cmocka_unit_test(test_table_damage),
        cmocka_unit_test(test_gpt2_tokenizer_table_damage),
        cmocka_unit_test(test_damage_through_gpt2_open),
        cmocka_unit_test(test_forged_hyperparameters),
        cmocka_unit_test(test_forged_sections),
        cmocka_unit_test(test_file_ends_after_the_last_tensor),
        cmocka_unit_test(test_forged_directory_entries),
        cmocka_unit_test(test_forged_vocabulary),
        cmocka_unit_test(test_forged_merges),
        cmocka_unit_test(test_token_length_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
