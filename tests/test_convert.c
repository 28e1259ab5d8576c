/* test_convert.c - gpt2-convert: every real layout converts, every bad input
 * is refused with one clear line and leaves no file behind.
 *
 * Each test builds a Hugging Face folder in a fresh temporary directory: a
 * tiny GPT-2 (2 layers, 2 heads, n_embd 32, n_ctx 8) and a synthetic
 * 260-token vocabulary (the 256 bytes, three merges, <|endoftext|>).  The
 * weights are multiples of 1/64 no larger than 2 in magnitude, so F32, F16
 * and BF16 hold them exactly: the same values stored in any of the three
 * must convert to the same file, byte for byte.  The converted weights are
 * read back through the panel layout and compared with the source, which
 * pins the name mapping and the transposition of the Conv1D weights.
 *
 * The names and shapes of the Hugging Face tensors are written out here
 * from the published layout, not taken from the converter's own tables.
 *
 * Refusals go through gpt2_convert_hf (fast, and the message is at hand); the
 * command line itself is run for exit codes, the one-line rule and the
 * files left behind.  The shared reference folders (GPT2_SHARED) must
 * convert too.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convert.h"
#include "dtype.h"
#include "gpt2.h"
#include "model_format.h"
#include "safetensors.h"
#include "test_util.h"

#define N_LAYER 2
#define N_HEAD 2
#define N_EMBD 32
#define N_CTX 8
#define N_VOCAB 260 /* 256 bytes, 3 merges, <|endoftext|> */
#define EOT_ID 259

/* ---- the model in Hugging Face's layout --------------------------------- */

/* One tensor as Hugging Face stores it: Conv1D weights [in, out]. */
typedef struct {
    char name[96];
    const char *dtype; /* "F32", "F16" or "BF16": how its values are encoded; else raw_bytes is written */
    int n_dims;
    uint64_t shape[4];
    float *values;            /* [product of shape] */
    const uint8_t *raw_bytes; /* when dtype is none of the above */
    size_t raw_len;
} HfTensor;

typedef struct {
    HfTensor t[48];
    size_t n;
} HfModel;

/* The global tensors, then per layer, in the order of the model file's
 * tensor kinds (model_format.h).  Sizes are multiples of n_embd, except
 * for the row counts 0 (a vector), -1 (n_vocab) and -2 (n_ctx). */
static const struct {
    const char *name;
    int rows, cols; /* in the model file: outputs x inputs; rows 0 = vector, -1 = n_vocab, -2 = n_ctx */
    bool conv1d;    /* stored [cols][rows] by Hugging Face */
} global_layout[] =
    {
        {"wte.weight", -1, 1, false},
        {"wpe.weight", -2, 1, false},
        {"ln_f.weight", 0, 1, false},
        {"ln_f.bias", 0, 1, false},
},
  layer_layout[] = {
      {"ln_1.weight", 0, 1, false},      {"ln_1.bias", 0, 1, false},         {"attn.c_attn.weight", 3, 1, true},
      {"attn.c_attn.bias", 0, 3, false}, {"attn.c_proj.weight", 1, 1, true}, {"attn.c_proj.bias", 0, 1, false},
      {"ln_2.weight", 0, 1, false},      {"ln_2.bias", 0, 1, false},         {"mlp.c_fc.weight", 4, 1, true},
      {"mlp.c_fc.bias", 0, 4, false},    {"mlp.c_proj.weight", 1, 4, true},  {"mlp.c_proj.bias", 0, 1, false},
};
#define N_WEIGHTS (4 + 12 * N_LAYER)

/* A multiple of 1/64 in [-2, 2], from a hash of where it is. */
static float weight_value(size_t tensor, size_t i) {
    uint64_t h = (tensor + 1) * 0x9E3779B97F4A7C15ull ^ (i + 1) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (float)((int)(h % 257) - 128) / 64.0f;
}

static uint64_t n_values(const HfTensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= t->shape[i];
    return n;
}

static HfTensor *add_tensor(HfModel *m, const char *name, int n_dims, const uint64_t *shape) {
    assert_true(m->n < sizeof m->t / sizeof *m->t);
    HfTensor *t = &m->t[m->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = "F32";
    t->n_dims = n_dims;
    memcpy(t->shape, shape, (size_t)n_dims * sizeof *shape);
    uint64_t n = n_values(t);
    t->values = malloc((n ? n : 1) * sizeof *t->values);
    assert_non_null(t->values);
    for (uint64_t i = 0; i < n; i++) t->values[i] = weight_value(m->n, i);
    m->n++;
    return t;
}

/* The Hugging Face shape of a tensor of the layout table. */
static int hf_shape(int rows_c, int cols_c, bool conv1d, uint64_t shape[2]) {
    uint64_t cols = (uint64_t)cols_c * N_EMBD;
    uint64_t rows = rows_c == -1 ? N_VOCAB : rows_c == -2 ? N_CTX : (uint64_t)rows_c * N_EMBD;
    if (rows_c == 0) {
        shape[0] = cols;
        return 1;
    }
    shape[0] = conv1d ? cols : rows;
    shape[1] = conv1d ? rows : cols;
    return 2;
}

static void build_model(HfModel *m) {
    memset(m, 0, sizeof *m);
    uint64_t shape[2];
    for (size_t i = 0; i < 4; i++) {
        int d = hf_shape(global_layout[i].rows, global_layout[i].cols, global_layout[i].conv1d, shape);
        add_tensor(m, global_layout[i].name, d, shape);
    }
    for (int l = 0; l < N_LAYER; l++) {
        for (size_t j = 0; j < 12; j++) {
            char name[96];
            snprintf(name, sizeof name, "h.%d.%s", l, layer_layout[j].name);
            int d = hf_shape(layer_layout[j].rows, layer_layout[j].cols, layer_layout[j].conv1d, shape);
            add_tensor(m, name, d, shape);
        }
    }
}

static void free_model(HfModel *m) {
    for (size_t i = 0; i < m->n; i++) free(m->t[i].values);
    m->n = 0;
}

static HfTensor *find(HfModel *m, const char *name) {
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return &m->t[i];
    fail_msg("no tensor %s in the test model", name);
    return NULL;
}

static void remove_tensor(HfModel *m, const char *name) {
    HfTensor *t = find(m, name);
    free(t->values);
    size_t i = (size_t)(t - m->t);
    memmove(t, t + 1, (m->n - i - 1) * sizeof *t);
    m->n--;
}

/* The causal-mask buffers and a tied lm_head.weight, as real files have. */
static void add_ignored_tensors(HfModel *m) {
    for (int l = 0; l < N_LAYER; l++) {
        char name[96];
        uint64_t mask[4] = {1, 1, N_CTX, N_CTX};
        snprintf(name, sizeof name, "h.%d.attn.bias", l);
        HfTensor *t = add_tensor(m, name, 4, mask);
        for (uint64_t i = 0; i < n_values(t); i++) t->values[i] = (i % N_CTX) <= (i / N_CTX % N_CTX) ? 1.0f : 0.0f;
        snprintf(name, sizeof name, "h.%d.attn.masked_bias", l);
        t = add_tensor(m, name, 0, mask);
        t->values[0] = -10000.0f;
    }
    const HfTensor *wte = find(m, "wte.weight");
    HfTensor *head = add_tensor(m, "lm_head.weight", wte->n_dims, wte->shape);
    memcpy(head->values, wte->values, n_values(wte) * sizeof *head->values);
}

/* ---- writing safetensors ---------------------------------------------------- */

/* Encodings written here from the formats' definitions, for values that
 * every one of them holds exactly (normal numbers with few mantissa bits). */
static uint16_t exact_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    assert_int_equal(u & 0xFFFF, 0);
    return (uint16_t)(u >> 16);
}

static uint16_t exact_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFF) == 0) return (uint16_t)(u >> 16);
    int exp = (int)((u >> 23) & 0xFF) - 127 + 15;
    assert_true(exp > 0 && exp < 31 && (u & 0x1FFF) == 0);
    return (uint16_t)((u >> 16 & 0x8000) | (uint32_t)exp << 10 | (u & 0x7FFFFF) >> 13);
}

static void encode(const HfTensor *t, StrBuf *out) {
    if (!strcmp(t->dtype, "F32") || !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16")) {
        for (uint64_t i = 0; i < n_values(t); i++) {
            uint8_t b[4];
            uint32_t u;
            memcpy(&u, &t->values[i], 4);
            if (!strcmp(t->dtype, "F32")) {
                wr_u32(b, u);
                assert_true(gpt2_strbuf_append(out, b, 4));
            } else {
                wr_u16(b, !strcmp(t->dtype, "F16") ? exact_f16(t->values[i]) : exact_bf16(t->values[i]));
                assert_true(gpt2_strbuf_append(out, b, 2));
            }
        }
    } else {
        assert_true(gpt2_strbuf_append(out, t->raw_bytes, t->raw_len));
    }
}

typedef struct {
    const char *prefix; /* before every name but lm_head.weight */
    bool reverse_data;  /* store the data in the reverse order of the header */
    bool unaligned;     /* pad the header with spaces so the data starts at 3 mod 8 */
    const char *dtype;  /* when set, every tensor is stored in it */
} StOptions;

/* The JSON header and the data of a safetensors file of m. */
static void safetensors_parts(const HfModel *m, const StOptions *o, StrBuf *header, StrBuf *data) {
    uint64_t begin[64], end[64];
    assert_true(m->n <= 64);
    for (size_t k = 0; k < m->n; k++) {
        size_t i = o->reverse_data ? m->n - 1 - k : k;
        HfTensor t = m->t[i];
        if (o->dtype && t.values) t.dtype = o->dtype;
        begin[i] = data->len;
        encode(&t, data);
        end[i] = data->len;
    }
    assert_true(gpt2_strbuf_append_str(header, "{\"__metadata__\":{\"format\":\"pt\"}"));
    for (size_t i = 0; i < m->n; i++) {
        const HfTensor *t = &m->t[i];
        const char *prefix = o->prefix && strcmp(t->name, "lm_head.weight") ? o->prefix : "";
        const char *dtype = o->dtype && t->values ? o->dtype : t->dtype;
        assert_true(gpt2_strbuf_printf(header, ",\"%s%s\":{\"dtype\":\"%s\",\"shape\":[", prefix, t->name, dtype));
        for (int d = 0; d < t->n_dims; d++)
            assert_true(gpt2_strbuf_printf(header, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]));
        assert_true(gpt2_strbuf_printf(header, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin[i],
                                       (unsigned long long)end[i]));
    }
    assert_true(gpt2_strbuf_append_char(header, '}'));
    if (o->unaligned) {
        do assert_true(gpt2_strbuf_append_char(header, ' '));
        while ((8 + header->len) % 8 != 3);
    }
}

/* A safetensors file whose header says it is hlen bytes long. */
static void write_safetensors_raw(const char *path, uint64_t hlen, const char *header, size_t header_len,
                                  const void *data, size_t data_len) {
    StrBuf b = {0};
    uint8_t n[8];
    wr_u64(n, hlen);
    assert_true(gpt2_strbuf_append(&b, n, 8) && gpt2_strbuf_append(&b, header, header_len) &&
                gpt2_strbuf_append(&b, data, data_len));
    test_write_file(path, b.data, b.len);
    gpt2_strbuf_free(&b);
}

static void write_safetensors(const char *path, const HfModel *m, const StOptions *o) {
    static const StOptions plain = {0};
    StrBuf header = {0}, data = {0};
    safetensors_parts(m, o ? o : &plain, &header, &data);
    write_safetensors_raw(path, header.len, header.data, header.len, data.data, data.len);
    gpt2_strbuf_free(&header);
    gpt2_strbuf_free(&data);
}

/* ---- the tokenizer files and config.json --------------------------------- */

/* GPT-2's byte-to-character map, as UTF-8. */
static void byte_char(int byte, char out[3]) {
    int cp = byte, others = 0;
    bool self = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
    if (!self) {
        for (int b = 0; b < byte; b++)
            if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) others++;
        cp = 0x100 + others;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
    }
}

static void write_vocab(const char *dir) {
    StrBuf v = {0};
    char path[4096], c[3];
    assert_true(gpt2_strbuf_append_char(&v, '{'));
    for (int b = 0; b < 256; b++) {
        byte_char(b, c);
        const char *esc = b == '"' ? "\\\"" : b == '\\' ? "\\\\" : c;
        assert_true(gpt2_strbuf_printf(&v, "\"%s\":%d,", esc, b));
    }
    byte_char(' ', c); /* "Ġ" */
    assert_true(gpt2_strbuf_printf(&v, "\"he\":256,\"%st\":257,\"%sthe\":258,\"<|endoftext|>\":%d}", c, c, EOT_ID));
    test_path(path, sizeof path, dir, "vocab.json");
    test_write_file(path, v.data, v.len);
    gpt2_strbuf_clear(&v);
    assert_true(gpt2_strbuf_printf(&v, "#version: 0.2\nh e\n%s t\n%st he\n", c, c));
    test_path(path, sizeof path, dir, "merges.txt");
    test_write_file(path, v.data, v.len);
    gpt2_strbuf_free(&v);
}

static const char config_json[] =
    "{\n  \"activation_function\": \"gelu_new\",\n  \"architectures\": [\"GPT2LMHeadModel\"],\n"
    "  \"bos_token_id\": 259,\n  \"eos_token_id\": 259,\n  \"layer_norm_epsilon\": 1e-05,\n"
    "  \"model_type\": \"gpt2\",\n  \"n_ctx\": 8,\n  \"n_embd\": 32,\n  \"n_head\": 2,\n  \"n_inner\": null,\n"
    "  \"n_layer\": 2,\n  \"n_positions\": 8,\n  \"scale_attn_weights\": true,\n  \"vocab_size\": 260\n}\n";

/* ---- fixture: a temporary folder with hf/ in it ------------------------- */

typedef struct {
    char dir[4096];
    char hf[4200];  /* the Hugging Face folder */
    char out[4200]; /* where the model file goes */
    char partial[4300];
    char ref[4200]; /* a reference conversion, when a test makes one */
    HfModel model;
} Fixture;

static void fx_path(const Fixture *fx, const char *name, char *out, size_t n) { test_path(out, n, fx->hf, name); }

static void fx_write_config(const Fixture *fx, const char *text) {
    char path[4300];
    fx_path(fx, "config.json", path, sizeof path);
    test_write_file(path, text, strlen(text));
}

static void fx_write_model(Fixture *fx, const StOptions *o) {
    char path[4300];
    fx_path(fx, "model.safetensors", path, sizeof path);
    write_safetensors(path, &fx->model, o);
}

static int setup(void **state) {
    Fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    test_mkdtemp(fx->dir, sizeof fx->dir);
    test_path(fx->hf, sizeof fx->hf, fx->dir, "hf");
    test_path(fx->out, sizeof fx->out, fx->dir, "model.bin");
    test_path(fx->ref, sizeof fx->ref, fx->dir, "ref.bin");
    snprintf(fx->partial, sizeof fx->partial, "%s.partial", fx->out);
    assert_int_equal(mkdir(fx->hf, 0755), 0);
    build_model(&fx->model);
    fx_write_config(fx, config_json);
    write_vocab(fx->hf);
    fx_write_model(fx, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    Fixture *fx = *state;
    free_model(&fx->model);
    test_rmtree(fx->dir);
    free(fx);
    return 0;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Rewrites the file hf/name with its first `from` replaced by `to`. */
static void fx_replace(const Fixture *fx, const char *name, const char *from, const char *to) {
    char path[4300];
    fx_path(fx, name, path, sizeof path);
    StrBuf text = {0}, out = {0};
    test_read_file(path, &text);
    const char *at = strstr(text.data, from);
    if (!at) fail_msg("%s has no \"%s\"", name, from);
    assert_true(gpt2_strbuf_append(&out, text.data, (size_t)(at - text.data)) && gpt2_strbuf_append_str(&out, to) &&
                gpt2_strbuf_append_str(&out, at + strlen(from)));
    test_write_file(path, out.data, out.len);
    gpt2_strbuf_free(&text);
    gpt2_strbuf_free(&out);
}

/* ---- converting ------------------------------------------------------------ */

static bool convert_to(const Fixture *fx, const char *out, const char *tokenizer_dir, DType dtype, char *err,
                       size_t errsz) {
    ConvertOptions o = {fx->hf, tokenizer_dir, out, dtype, NULL};
    err[0] = '\0';
    return gpt2_convert_hf(&o, err, errsz);
}

static void convert_ok(const Fixture *fx, const char *out, DType dtype) {
    char err[1024];
    if (!convert_to(fx, out, NULL, dtype, err, sizeof err)) fail_msg("conversion failed: %s", err);
}

/* The conversion fails, says `phrase`, is one line, and leaves no file. */
static void refused(const Fixture *fx, const char *phrase) {
    char err[1024];
    if (convert_to(fx, fx->out, NULL, DTYPE_F32, err, sizeof err)) fail_msg("accepted; expected \"%s\"", phrase);
    if (!strstr(err, phrase)) fail_msg("message \"%s\" lacks \"%s\"", err, phrase);
    if (strchr(err, '\n')) fail_msg("message on several lines: %s", err);
    assert_false(exists(fx->out));
    assert_false(test_has_partial(fx->out));
}

static void assert_same_file(const char *a, const char *b) {
    StrBuf x = {0}, y = {0};
    test_read_file(a, &x);
    test_read_file(b, &y);
    if (x.len != y.len || memcmp(x.data, y.data, x.len) != 0) fail_msg("%s and %s differ", a, b);
    gpt2_strbuf_free(&x);
    gpt2_strbuf_free(&y);
}

/* Checks every weight of the model file at path against the source model:
 * matrices unpacked row by row from their panels, Conv1D weights
 * transposed.  Exact, except for q8_0, whose error is at most half a
 * quantization step (the step is 2/127 of the largest value, 2, in a block;
 * the stored float16 scale may be larger by 2^-11). */
static void check_weights(const char *path, const HfModel *m, DType dtype) {
    StrBuf f = {0};
    test_read_file(path, &f);
    const uint8_t *b = (const uint8_t *)f.data;
    assert_true(f.len >= MODEL_HEADER_BYTES);
    assert_memory_equal(b, MODEL_MAGIC, 8);
    assert_int_equal(rd_u32(b + HDR_N_VOCAB), N_VOCAB);
    assert_int_equal(rd_u32(b + HDR_N_CTX), N_CTX);
    assert_int_equal(rd_u32(b + HDR_N_EMBD), N_EMBD);
    assert_int_equal(rd_u32(b + HDR_N_LAYER), N_LAYER);
    assert_int_equal(rd_u32(b + HDR_N_HEAD), N_HEAD);
    assert_int_equal(rd_u32(b + HDR_EOT_ID), EOT_ID);
    assert_int_equal(rd_u32(b + HDR_N_MERGES), 3);
    assert_int_equal(rd_u32(b + HDR_DTYPE), dtype);
    assert_int_equal(rd_u32(b + HDR_N_TENSORS), N_WEIGHTS);
    uint64_t dir = rd_u64(b + HDR_TENSORS_OFFSET);
    float row[4 * N_EMBD];
    for (size_t i = 0; i < N_WEIGHTS; i++) {
        const uint8_t *e = b + dir + i * MODEL_TENSOR_ENTRY_BYTES;
        size_t kind = rd_u16(e + ENT_KIND), layer = rd_u16(e + ENT_LAYER);
        /* Kinds count the global tensors, then one layer's. */
        bool global = kind < 4;
        char name[96];
        if (global) snprintf(name, sizeof name, "%s", global_layout[kind].name);
        else snprintf(name, sizeof name, "h.%zu.%s", layer, layer_layout[kind - 4].name);
        const HfTensor *t = NULL;
        for (size_t k = 0; k < m->n && !t; k++)
            if (!strcmp(m->t[k].name, name)) t = &m->t[k];
        assert_non_null(t);
        bool conv1d = global ? false : layer_layout[kind - 4].conv1d;
        bool matrix = conv1d || kind == 0;
        uint32_t rows = rd_u32(e + ENT_ROWS), cols = rd_u32(e + ENT_COLS);
        assert_int_equal((uint64_t)rows * cols, n_values(t));
        assert_true(cols <= 4 * N_EMBD);
        DType stored = (DType)rd_u32(e + ENT_DTYPE);
        assert_int_equal(stored, matrix ? dtype : DTYPE_F32);
        uint64_t off = rd_u64(e + ENT_OFFSET), bytes = rd_u64(e + ENT_BYTES);
        assert_true(off <= f.len && bytes <= f.len - off);
        for (uint32_t r = 0; r < rows; r++) {
            if (matrix) gpt2_panel_unpack_row(stored, b + off, cols, r, row);
            else memcpy(row, b + off + (uint64_t)r * cols * 4, cols * 4);
            for (uint32_t c = 0; c < cols; c++) {
                float want = conv1d ? t->values[(size_t)c * rows + r] : t->values[(size_t)r * cols + c];
                float tol = stored == DTYPE_Q8_0 ? 1.0f / 127 * 1.001f : 0.0f;
                if (!(fabsf(row[c] - want) <= tol))
                    fail_msg("%s [%u][%u] is %g, expected %g (%s)", name, r, c, row[c], want, gpt2_dtype_name(dtype));
            }
        }
    }
    gpt2_strbuf_free(&f);
}

/* ---- the layouts real files come in ---------------------------------------- */

static void test_converts_plain_folder(void **state) {
    Fixture *fx = *state;
    convert_ok(fx, fx->out, DTYPE_F32);
    check_weights(fx->out, &fx->model, DTYPE_F32);
    assert_false(test_has_partial(fx->out));
}

/* Converts the folder as it now is and compares with a conversion of the
 * plain F32 folder of the same values. */
static void same_as_plain(Fixture *fx, const StOptions *o) {
    fx_write_model(fx, &(StOptions){.dtype = "F32"});
    convert_ok(fx, fx->ref, DTYPE_F32);
    fx_write_model(fx, o);
    convert_ok(fx, fx->out, DTYPE_F32);
    assert_same_file(fx->out, fx->ref);
}

static void test_unaligned_data_and_trailing_spaces(void **state) {
    Fixture *fx = *state;
    StOptions o = {.unaligned = true};
    same_as_plain(fx, &o);
    /* The test itself: the data really starts at 3 mod 8, after spaces. */
    char path[4300];
    StrBuf f = {0};
    fx_path(fx, "model.safetensors", path, sizeof path);
    test_read_file(path, &f);
    uint64_t hlen = rd_u64((const uint8_t *)f.data);
    assert_int_equal((8 + hlen) % 8, 3);
    assert_int_equal(f.data[8 + hlen - 1], ' ');
    gpt2_strbuf_free(&f);
}

static void test_data_out_of_header_order(void **state) {
    Fixture *fx = *state;
    StOptions o = {.reverse_data = true};
    same_as_plain(fx, &o);
}

static void test_transformer_prefix(void **state) {
    Fixture *fx = *state;
    StOptions o = {.prefix = "transformer."};
    same_as_plain(fx, &o);
}

static void test_mask_buffers_and_tied_head_ignored(void **state) {
    Fixture *fx = *state;
    fx_write_model(fx, NULL);
    convert_ok(fx, fx->ref, DTYPE_F32);
    add_ignored_tensors(&fx->model);
    fx_write_model(fx, NULL);
    convert_ok(fx, fx->out, DTYPE_F32);
    assert_same_file(fx->out, fx->ref);
    /* And all the quirks of real files at once. */
    StOptions all = {.prefix = "transformer.", .reverse_data = true, .unaligned = true};
    fx_write_model(fx, &all);
    convert_ok(fx, fx->out, DTYPE_F32);
    assert_same_file(fx->out, fx->ref);
}

static void test_f16_and_bf16_tensors_convert_like_f32(void **state) {
    Fixture *fx = *state;
    const char *types[] = {"F16", "BF16"};
    for (size_t i = 0; i < 2; i++) {
        StOptions o = {.dtype = types[i], .unaligned = true};
        same_as_plain(fx, &o);
    }
    /* Mixed, as checkpoints saved with a half-precision body can be. */
    find(&fx->model, "h.0.attn.c_attn.weight")->dtype = "F16";
    find(&fx->model, "wpe.weight")->dtype = "BF16";
    same_as_plain(fx, &(StOptions){0});
}

static void test_every_output_dtype(void **state) {
    Fixture *fx = *state;
    const DType types[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q8_0};
    float *logits[4] = {0};
    const int32_t ids[] = {104, 101, 257, 258, EOT_ID, 0, 255};
    const size_t n_ids = sizeof ids / sizeof *ids;
    for (size_t i = 0; i < 4; i++) {
        convert_ok(fx, fx->out, types[i]);
        check_weights(fx->out, &fx->model, types[i]);
        /* The engine opens it and computes. */
        char err[512];
        Gpt2 *g = gpt2_open(fx->out, NULL, err, sizeof err);
        if (!g) fail_msg("gpt2_open: %s", err);
        Gpt2Info info = gpt2_info(g);
        assert_string_equal(info.dtype, gpt2_dtype_name(types[i]));
        assert_int_equal(info.n_layer, N_LAYER);
        assert_int_equal(info.eot_id, EOT_ID);
        logits[i] = malloc(n_ids * N_VOCAB * sizeof *logits[i]);
        assert_non_null(logits[i]);
        if (!gpt2_logits(g, ids, n_ids, logits[i], err, sizeof err)) fail_msg("gpt2_logits: %s", err);
        gpt2_close(g);
    }
    /* The weights are exact in f16 and bf16, so only the arithmetic may
     * differ from f32; q8_0 rounds them. */
    for (size_t i = 0; i < n_ids * N_VOCAB; i++) {
        assert_true(isfinite(logits[0][i]));
        if (fabsf(logits[1][i] - logits[0][i]) > 1e-3f || fabsf(logits[2][i] - logits[0][i]) > 1e-3f)
            fail_msg("logit %zu: f32 %g, f16 %g, bf16 %g", i, logits[0][i], logits[1][i], logits[2][i]);
        if (fabsf(logits[3][i] - logits[0][i]) > 0.5f)
            fail_msg("logit %zu: f32 %g, q8_0 %g", i, logits[0][i], logits[3][i]);
    }
    for (size_t i = 0; i < 4; i++) free(logits[i]);
}

static void test_config_variants_that_convert(void **state) {
    Fixture *fx = *state;
    convert_ok(fx, fx->ref, DTYPE_F32);
    /* Keys some checkpoints omit, with GPT2Config's defaults. */
    fx_replace(fx, "config.json", "\"n_ctx\": 8,", "");
    fx_replace(fx, "config.json", "\"activation_function\": \"gelu_new\",", "");
    fx_replace(fx, "config.json", "\"layer_norm_epsilon\": 1e-05,", "");
    fx_replace(fx, "config.json", "\"n_inner\": null,", "\"n_inner\": 128, \"tie_word_embeddings\": true,");
    convert_ok(fx, fx->out, DTYPE_F32);
    assert_same_file(fx->out, fx->ref);
    /* Only n_ctx, as in old checkpoints. */
    fx_replace(fx, "config.json", "\"n_positions\": 8,", "\"n_ctx\": 8,");
    convert_ok(fx, fx->out, DTYPE_F32);
    assert_same_file(fx->out, fx->ref);
}

/* The configurations of the published models, in their keys' form. */
static void test_published_configs(void **state) {
    Fixture *fx = *state;
    static const struct {
        const char *text;
        uint32_t layers, heads, embd;
    } cases[] = {
        {"{\"_num_labels\": 1, \"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"],"
         " \"attn_pdrop\": 0.1, \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256,"
         " \"id2label\": {\"0\": \"LABEL_0\"}, \"initializer_range\": 0.02, \"label2id\": {\"LABEL_0\": 0},"
         " \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", \"n_ctx\": 1024, \"n_embd\": 768,"
         " \"n_head\": 12, \"n_layer\": 6, \"n_positions\": 1024, \"resid_pdrop\": 0.1,"
         " \"summary_activation\": null, \"summary_first_dropout\": 0.1, \"summary_proj_to_labels\": true,"
         " \"summary_type\": \"cls_index\", \"summary_use_proj\": true,"
         " \"task_specific_params\": {\"text-generation\": {\"do_sample\": true, \"max_length\": 50}},"
         " \"vocab_size\": 50257}",
         6, 12, 768},
        {"{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"], \"attn_pdrop\": 0.1,"
         " \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256, \"initializer_range\": 0.02,"
         " \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", \"n_ctx\": 1024, \"n_embd\": 1600,"
         " \"n_head\": 25, \"n_layer\": 48, \"n_positions\": 1024, \"output_past\": true, \"resid_pdrop\": 0.1,"
         " \"summary_activation\": null, \"summary_first_dropout\": 0.1, \"summary_proj_to_labels\": true,"
         " \"summary_type\": \"cls_index\", \"summary_use_proj\": true, \"vocab_size\": 50257}",
         48, 25, 1600},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[4300], err[512];
        fx_write_config(fx, cases[i].text);
        fx_path(fx, "config.json", path, sizeof path);
        ModelConfig c = {0};
        if (!gpt2_hf_config_read(path, &c, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(c.n_layer, cases[i].layers);
        assert_int_equal(c.n_head, cases[i].heads);
        assert_int_equal(c.n_embd, cases[i].embd);
        assert_int_equal(c.n_embd / c.n_head, 64);
        assert_int_equal(c.n_ctx, 1024);
        assert_int_equal(c.n_vocab, 50257);
        assert_true(c.ln_eps == 1e-5f);
    }
}

/* ---- refusals: the folder --------------------------------------------------- */

static void remove_file(const Fixture *fx, const char *name) {
    char path[4300];
    fx_path(fx, name, path, sizeof path);
    assert_int_equal(unlink(path), 0);
}

static void test_refuses_missing_files(void **state) {
    Fixture *fx = *state;
    char err[1024];
    ConvertOptions o = {"/nonexistent/hf-folder", NULL, fx->out, DTYPE_F32, NULL};
    assert_false(gpt2_convert_hf(&o, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/hf-folder: No such file or directory"));
    assert_false(exists(fx->out));

    remove_file(fx, "vocab.json");
    refused(fx, "vocab.json: No such file or directory; give the folder holding GPT-2's vocab.json and merges.txt "
                "with --tokenizer DIR");
    remove_file(fx, "model.safetensors");
    refused(fx, "model.safetensors: No such file or directory");
    remove_file(fx, "config.json");
    refused(fx, "config.json: No such file or directory");
}

static void test_refuses_missing_merges_and_bad_tokenizer_dir(void **state) {
    Fixture *fx = *state;
    remove_file(fx, "merges.txt");
    refused(fx, "merges.txt: No such file or directory; give the folder");
    char err[1024];
    assert_false(convert_to(fx, fx->out, "/nonexistent/tok", DTYPE_F32, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/tok: No such file or directory (the --tokenizer folder)"));
}

/* Without model.safetensors the folder's other checkpoints are read, and
 * refused when damaged. */
static void test_refuses_damaged_sharded_and_pickled_checkpoints(void **state) {
    Fixture *fx = *state;
    char path[4300];
    remove_file(fx, "model.safetensors");
    fx_path(fx, "pytorch_model.bin", path, sizeof path);
    test_write_file(path, "PK", 2);
    refused(fx, "pytorch_model.bin: not a file torch.save writes");
    fx_path(fx, "model.safetensors.index.json", path, sizeof path);
    test_write_file(path, "{}", 2);
    refused(fx, "model.safetensors.index.json: no \"weight_map\"");
    test_write_file(path, "{\"weight_map\":{\"wte.weight\":\"../x.safetensors\"}}", 48);
    refused(fx, "weight_map entry \"wte.weight\" does not name a file in the same folder");
    /* A shard's name goes into messages: a line break in it is refused. */
    static const char broken[] = "{\"weight_map\":{\"wte.weight\":\"a\\nb.safetensors\"}}";
    test_write_file(path, broken, sizeof broken - 1);
    refused(fx, "weight_map entry \"wte.weight\" names the file \"a?b.safetensors\", with a control character");
}

/* ---- refusals: the tensors -------------------------------------------------- */

static void test_refuses_missing_tensor(void **state) {
    Fixture *fx = *state;
    remove_tensor(&fx->model, "h.1.ln_2.bias");
    fx_write_model(fx, NULL);
    refused(fx, "model.safetensors has no tensor \"h.1.ln_2.bias\"");
    /* With the prefix, the name in the message has it too. */
    StOptions o = {.prefix = "transformer."};
    fx_write_model(fx, &o);
    refused(fx, "no tensor \"transformer.h.1.ln_2.bias\"");
}

static void test_refuses_shape_that_disagrees_with_config(void **state) {
    Fixture *fx = *state;
    HfTensor *t = find(&fx->model, "h.0.mlp.c_fc.weight");
    t->shape[1] = 100;
    fx_write_model(fx, NULL);
    refused(fx, "tensor \"h.0.mlp.c_fc.weight\" has shape [32, 100], but config.json implies [32, 128]");
    t->shape[1] = 128;
    /* The Conv1D layout stored the other way round. */
    t->shape[0] = 128, t->shape[1] = 32;
    fx_write_model(fx, NULL);
    refused(fx, "tensor \"h.0.mlp.c_fc.weight\" has shape [128, 32], but config.json implies [32, 128]");
    t->shape[0] = 32, t->shape[1] = 128;
    /* A vector given two dimensions. */
    t = find(&fx->model, "ln_f.bias");
    t->n_dims = 2, t->shape[1] = 1;
    fx_write_model(fx, NULL);
    refused(fx, "tensor \"ln_f.bias\" has shape [32, 1], but config.json implies [32]");
    t->n_dims = 1;
    /* config.json with a different width than the weights. */
    fx_write_model(fx, NULL);
    fx_replace(fx, "config.json", "\"n_positions\": 8", "\"n_positions\": 16");
    refused(fx, "tensor \"wpe.weight\" has shape [8, 32], but config.json implies [16, 32]");
}

static void test_refuses_stray_tensors(void **state) {
    Fixture *fx = *state;
    uint64_t c[1] = {N_EMBD};
    add_tensor(&fx->model, "h.2.ln_1.weight", 1, c);
    fx_write_model(fx, NULL);
    refused(fx, "model.safetensors has tensor \"h.2.ln_1.weight\", but config.json says n_layer 2");
    remove_tensor(&fx->model, "h.2.ln_1.weight");
    uint64_t mask[4] = {1, 1, N_CTX, N_CTX};
    add_tensor(&fx->model, "h.7.attn.bias", 4, mask);
    fx_write_model(fx, NULL);
    refused(fx, "tensor \"h.7.attn.bias\", but config.json says n_layer 2");
    remove_tensor(&fx->model, "h.7.attn.bias");
    add_tensor(&fx->model, "score.weight", 1, c);
    fx_write_model(fx, NULL);
    refused(fx, "model.safetensors has tensor \"score.weight\", which a GPT-2 does not have");
}

static void test_refuses_untied_head(void **state) {
    Fixture *fx = *state;
    add_ignored_tensors(&fx->model);
    find(&fx->model, "lm_head.weight")->values[5 * N_EMBD + 3] += 1.0f;
    fx_write_model(fx, NULL);
    refused(fx, "lm_head.weight differs from wte.weight (row 5)");
    fx_write_model(fx, NULL);
    fx_replace(fx, "config.json", "\"n_inner\": null,", "\"tie_word_embeddings\": false,");
    refused(fx, "tie_word_embeddings must be true");
}

static void test_refuses_unsupported_dtype(void **state) {
    Fixture *fx = *state;
    static const uint8_t bytes[N_EMBD];
    HfTensor *t = find(&fx->model, "ln_f.bias");
    t->dtype = "I8", t->raw_bytes = bytes, t->raw_len = sizeof bytes;
    fx_write_model(fx, NULL);
    refused(fx, "tensor \"ln_f.bias\" has dtype I8; only F32, F16, BF16 and Q8_0 are supported");
}

/* ---- refusals: the safetensors structure ------------------------------------- */

/* model.safetensors becomes header (hlen bytes claimed) and data_len bytes. */
static void refused_st(Fixture *fx, uint64_t hlen, const char *header, size_t data_len, const char *phrase) {
    char path[4300];
    uint8_t *data = calloc(1, data_len ? data_len : 1);
    assert_non_null(data);
    fx_path(fx, "model.safetensors", path, sizeof path);
    write_safetensors_raw(path, hlen, header, strlen(header), data, data_len);
    free(data);
    refused(fx, phrase);
}

#define ST_REFUSED(fx, header, data_len, phrase) refused_st(fx, strlen(header), header, data_len, phrase)

static void test_refuses_bad_header_length(void **state) {
    Fixture *fx = *state;
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    refused_st(fx, strlen(h) + 5, h, 4, "header length 59 exceeds the file (66 bytes)");
    refused_st(fx, UINT64_MAX, h, 4, "exceeds the file");
    refused_st(fx, (uint64_t)1 << 63, h, 4, "exceeds the file");
    char path[4300];
    fx_path(fx, "model.safetensors", path, sizeof path);
    test_write_file(path, "\x10\0\0", 3);
    refused(fx, "not a safetensors file: only 3 bytes");
    test_write_file(path, "", 0);
    refused(fx, "not a safetensors file: only 0 bytes");
}

/* A header length within the file yet beyond the format's 100 MiB limit:
 * the file is sparse, so this costs no disk and, since the length is
 * refused before the header is read, no memory. */
static void test_refuses_absurd_header_length(void **state) {
    Fixture *fx = *state;
    char path[4300];
    fx_path(fx, "model.safetensors", path, sizeof path);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    uint8_t n[8];
    wr_u64(n, ST_MAX_HEADER + 1ull);
    assert_int_equal(write(fd, n, 8), 8);
    assert_int_equal(ftruncate(fd, ST_MAX_HEADER + 64ll), 0);
    assert_int_equal(close(fd), 0);
    refused(fx, "header length 104857601 is beyond the format's limit");
}

static void test_refuses_bad_offsets(void **state) {
    Fixture *fx = *state;
    ST_REFUSED(fx,
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
               6, "damaged safetensors file: tensors \"a\" and \"b\" overlap");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               "tensor \"a\": data_offsets end at byte 8 but the data has only 4 bytes");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
               "tensor \"a\": data_offsets must be two integers, begin <= end");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8, "data_offsets must be");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 8, "data_offsets must be");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 8,
               "data_offsets must be");
    ST_REFUSED(fx,
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, "data bytes 4..7 belong to no tensor");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9,
               "5 bytes after the last tensor belong to no tensor");
}

static void test_refuses_size_not_matching_shape(void **state) {
    Fixture *fx = *state;
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "tensor \"a\": 8 bytes of data do not match its shape and dtype F32");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 4,
               "4 bytes of data do not match its shape and dtype BF16");
    /* A shape whose product overflows 64 bits. */
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}}", 0,
               "0 bytes of data do not match");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "a dimension of its shape is not a non-negative integer");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
               "more than 8 dimensions");
}

static void test_refuses_unknown_dtype(void **state) {
    Fixture *fx = *state;
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "tensor \"a\": unknown dtype \"Q7\"");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\\u0000\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "needs dtype, shape and two data_offsets");
    ST_REFUSED(fx, "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "needs dtype, shape and two data_offsets");
}

static void test_refuses_malformed_header_json(void **state) {
    Fixture *fx = *state;
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"sha", 4, "damaged safetensors header: unterminated string");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],", 4, "damaged safetensors header: unterminated object");
    ST_REFUSED(fx, "{\"a\\q\":{}}", 0, "damaged safetensors header: bad escape in string");
    ST_REFUSED(fx, "{\"a\":{\"dtype\":\"F\\u00g2\"}}", 0, "bad \\u escape");
    ST_REFUSED(fx, "[1,2]", 0, "damaged safetensors header: not a JSON object");
    ST_REFUSED(fx, "", 0, "damaged safetensors header: unexpected end of input");
    ST_REFUSED(fx, "{} {}", 0, "trailing characters");
    char deep[200] = "{\"__metadata__\":";
    for (int i = 0; i < 70; i++) strcat(deep, "[");
    for (int i = 0; i < 70; i++) strcat(deep, "]");
    strcat(deep, "}");
    ST_REFUSED(fx, deep, 0, "damaged safetensors header: nesting too deep");
    ST_REFUSED(fx, "{\"__metadata__\":{\"format\":1}}", 0, "__metadata__ is not an object of strings");
    ST_REFUSED(fx, "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "a tensor name contains NUL");
}

static void test_refuses_duplicate_names(void **state) {
    Fixture *fx = *state;
    ST_REFUSED(fx,
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "damaged safetensors header: tensor \"a\" is listed twice");
}

/* Names come from the file: a message shows them on one line. */
static void test_messages_show_names_on_one_line(void **state) {
    Fixture *fx = *state;
    ST_REFUSED(fx, "{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "tensor \"a?b\"");
    uint64_t c[1] = {N_EMBD};
    add_tensor(&fx->model, "evil\\nname", 1, c); /* written into the header as is: an escaped newline */
    fx_write_model(fx, NULL);
    refused(fx, "tensor \"evil?name\"");
    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    char header[600];
    snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", long_name);
    ST_REFUSED(fx, header, 8, "xxx...\": 8 bytes");
}

/* ---- refusals: config.json -------------------------------------------------- */

static void test_refuses_bad_config(void **state) {
    Fixture *fx = *state;
    static const struct {
        const char *from, *to, *phrase;
    } cases[] = {
        {"\"n_embd\": 32", "\"n_embd\": \"32\"", "config.json: \"n_embd\" is not a positive integer"},
        {"\"n_embd\": 32", "\"n_embd\": 32.0", "\"n_embd\" is not a positive integer"},
        {"\"n_embd\": 32", "\"n_embd\": 0", "\"n_embd\" is not a positive integer"},
        {"\"n_embd\": 32", "\"n_embd\": 4294967296", "\"n_embd\" is not a positive integer"},
        {"\"n_layer\": 2,", "", "config.json has no \"n_layer\""},
        {"\"vocab_size\": 260", "\"vocab_size_\": 260", "config.json has no \"vocab_size\""},
        {"\"gelu_new\"", "\"relu\"", "activation_function \"relu\" is not supported; GPT-2 uses \"gelu_new\""},
        {"\"gelu_new\"", "\"gelu\"", "activation_function \"gelu\" is not supported"},
        {"\"gelu_new\"", "null", "activation_function"},
        {"\"n_head\": 2", "\"n_head\": 3", "config.json: n_embd 32 is not a multiple of n_head 3"},
        {"\"n_embd\": 32", "\"n_embd\": 65536", "n_embd is 65536, outside"},
        {"\"n_positions\": 8", "\"n_positions\": 100000", "n_ctx is 100000, outside"},
        {"\"model_type\": \"gpt2\"", "\"model_type\": \"gpt_neo\"", "model_type is not \"gpt2\""},
        {"\"n_inner\": null", "\"n_inner\": 100", "n_inner must be null or 4 * n_embd"},
        {"\"scale_attn_weights\": true", "\"scale_attn_weights\": false", "scale_attn_weights must be true"},
        {"\"scale_attn_weights\": true", "\"scale_attn_by_inverse_layer_idx\": true",
         "scale_attn_by_inverse_layer_idx must be false"},
        {"\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": 0", "layer_norm_epsilon must be a number in (0, 1)"},
        {"\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": 1e-60", "layer_norm_epsilon must be"},
        {"\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": \"1e-5\"", "layer_norm_epsilon must be"},
        {"\"vocab_size\": 260", "\"vocab_size\": 259", "has 260 tokens but config.json says vocab_size 259"},
        /* More rows than tokens would be padding ([PAD<id>] placeholders),
         * but these embeddings do not have them. */
        {"\"vocab_size\": 260", "\"vocab_size\": 261", "has shape [260, 32], but config.json implies [261, 32]"},
        {"\"n_layer\": 2,", "\"n_layer\": 2", "config.json: expected ',' or '}' at byte"},
        {"{", "[", "config.json: expected ',' or ']'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fx_write_config(fx, config_json);
        fx_replace(fx, "config.json", cases[i].from, cases[i].to);
        refused(fx, cases[i].phrase);
    }
    fx_write_config(fx, "{\"n_embd\": 32, \"n_lay");
    refused(fx, "config.json: unterminated string at byte");
    fx_write_config(fx, "[]");
    refused(fx, "config.json: not a JSON object");
}

/* ---- refusals: vocab.json and merges.txt --------------------------------------- */

static void test_refuses_damaged_tokenizer_files(void **state) {
    Fixture *fx = *state;
    static const struct {
        const char *file, *from, *to, *phrase;
    } cases[] = {
        {"vocab.json", "\"<|endoftext|>\":259", "\"<|endoftext|>\":258", "id 258 is given to both"},
        {"vocab.json", "\"<|endoftext|>\":259", "\"<|endoftext|>\":300",
         "token \"<|endoftext|>\" has id 300; with 260 tokens the ids must be 0..259"},
        {"vocab.json", "\"<|endoftext|>\":259", "\"<|endoftext|>\":-1", "the id is not a non-negative integer"},
        {"vocab.json", "\"he\":256", "\"h\\u4e00\":256", "character U+4E00 is not in GPT-2's byte map"},
        {"vocab.json", "\"he\":256", "\"h\\u0000\":256", "is not in GPT-2's byte map"},
        {"vocab.json", "\"<|endoftext|>\"", "\"<|end|>\"", "no \"<|endoftext|>\" token"},
        {"vocab.json", "\"he\":256", "\"a\":256", "appears again"},
        {"vocab.json", "\"he\":256,", "\"he\":256", "expected ',' or '}'"},
        {"merges.txt", "h e\n", "h z\n", "merges.txt:2: the merged token of \"h z\" is not in the vocabulary"},
        {"merges.txt", "h e\n", "h ee\n", "merges.txt:2: token \"ee\" is not in the vocabulary"},
        {"merges.txt", "h e\n", "h  e\n", "expected two tokens separated by one space"},
        {"merges.txt", "h e\n", "h e\n\n", "merges.txt:3: empty line"},
        {"merges.txt", "h e\n", "h e\nh e\n", "the rule of line 2 again"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_vocab(fx->hf);
        fx_replace(fx, cases[i].file, cases[i].from, cases[i].to);
        refused(fx, cases[i].phrase);
    }
}

/* ---- the output file -------------------------------------------------------- */

static void test_output_replaced_only_on_success(void **state) {
    Fixture *fx = *state;
    convert_ok(fx, fx->ref, DTYPE_F32);
    test_write_file(fx->out, "old model", 9);
    /* A failed conversion keeps the old file as it was. */
    fx_replace(fx, "config.json", "\"n_head\": 2", "\"n_head\": 3");
    char err[1024];
    assert_false(convert_to(fx, fx->out, NULL, DTYPE_F32, err, sizeof err));
    StrBuf old = {0};
    test_read_file(fx->out, &old);
    assert_int_equal(old.len, 9);
    assert_memory_equal(old.data, "old model", 9);
    gpt2_strbuf_free(&old);
    assert_false(test_has_partial(fx->out));
    /* A good one replaces it. */
    fx_write_config(fx, config_json);
    convert_ok(fx, fx->out, DTYPE_F32);
    assert_same_file(fx->out, fx->ref);
    assert_false(test_has_partial(fx->out));
}

/* ---- the command line ----------------------------------------------------------- */

/* Runs gpt2-convert with args (NULL-terminated), its output captured. */
static void run_convert(const char *const args[], RunResult *r) {
    char exe[4200];
    test_path(exe, sizeof exe, test_build_dir(), "gpt2-convert");
    const char *argv[16] = {exe};
    size_t n = 1;
    for (; args[n - 1]; n++) {
        assert_true(n < 15);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    test_run(argv, NULL, r);
    if (r->status == 127) fail_msg("cannot run %s", exe);
}

/* Exit status `status`, nothing on standard output, exactly one line on
 * standard error holding phrase, and no output file. */
static void cli_refuses(const Fixture *fx, const char *const args[], int status, const char *phrase) {
    RunResult r;
    run_convert(args, &r);
    test_expect_refusal(&r, status, "gpt2-convert: ", phrase);
    assert_false(exists(fx->out));
    assert_false(test_has_partial(fx->out));
    test_run_free(&r);
}

/* The temporary file is created exclusively: a link planted where the
 * old fixed name was is neither followed nor removed, and two converters
 * writing the same output at once each write their own file. */
static void test_output_created_exclusively(void **state) {
    Fixture *fx = *state;
    char victim[4300], link_path[4300], exe[4200];
    snprintf(victim, sizeof victim, "%s/victim", fx->dir);
    snprintf(link_path, sizeof link_path, "%s.partial", fx->out);
    test_write_file(victim, "keep me", 7);
    assert_int_equal(symlink(victim, link_path), 0);
    convert_ok(fx, fx->out, DTYPE_F32);
    StrBuf v = {0};
    test_read_file(victim, &v);
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.data, "keep me", 7);
    gpt2_strbuf_free(&v);
    struct stat sb;
    assert_int_equal(lstat(link_path, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_int_equal(unlink(link_path), 0);
    assert_false(test_has_partial(fx->out));
    /* Two at once. */
    test_path(exe, sizeof exe, test_build_dir(), "gpt2-convert");
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            execl(exe, exe, "--random", "2x2x64", fx->out, "--seed", i ? "2" : "1", "-q", (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_false(test_has_partial(fx->out));
    char err[512];
    Gpt2Options o = {.n_threads = 1, .n_batch = 1};
    Gpt2 *g = gpt2_open(fx->out, &o, err, sizeof err);
    if (!g) fail_msg("the output of two converters does not open: %s", err);
    gpt2_close(g);
}

static void test_cli_usage_errors(void **state) {
    Fixture *fx = *state;
    cli_refuses(fx, (const char *[]){fx->hf, fx->out, "--bogus", NULL}, 2, "unknown option: --bogus");
    cli_refuses(fx, (const char *[]){"-z", fx->hf, fx->out, NULL}, 2, "unknown option: -z");
    cli_refuses(fx, (const char *[]){fx->hf, fx->out, "--dtype", "f8", NULL}, 2,
                "--dtype must be f32, f16, bf16 or q8_0: f8");
    cli_refuses(fx, (const char *[]){fx->hf, fx->out, "--dtype=Q8_0x", NULL}, 2, "--dtype must be");
    cli_refuses(fx, (const char *[]){fx->hf, fx->out, "--dtype", NULL}, 2, "option needs a value: --dtype");
    cli_refuses(fx, (const char *[]){fx->hf, NULL}, 2, "missing SOURCE or OUT_FILE");
    cli_refuses(fx, (const char *[]){NULL}, 2, "missing SOURCE or OUT_FILE");
    cli_refuses(fx, (const char *[]){fx->hf, fx->out, "extra", NULL}, 2, "too many arguments");
    cli_refuses(fx, (const char *[]){"--random", "2x2", fx->out, NULL}, 2, "unknown shape: 2x2");
    cli_refuses(fx, (const char *[]){"--random", "2x2x16x", fx->out, NULL}, 2, "unknown shape");
    cli_refuses(fx, (const char *[]){"--random", "-1x2x16", fx->out, NULL}, 2, "unknown shape");
    cli_refuses(fx, (const char *[]){"--random", "2x2x16", fx->out, "--seed", "x", NULL}, 2,
                "--seed needs a non-negative integer");
    RunResult r;
    run_convert((const char *[]){"--help", NULL}, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out.data, "usage: gpt2-convert SOURCE OUT_FILE"));
    assert_non_null(strstr(r.out.data, "--tokenizer DIR"));
    assert_int_equal(r.err.len, 0);
    test_run_free(&r);
}

static void test_cli_bad_input(void **state) {
    Fixture *fx = *state;
    remove_file(fx, "vocab.json");
    cli_refuses(fx, (const char *[]){fx->hf, fx->out, NULL}, 1, "--tokenizer DIR");
    write_vocab(fx->hf);
    fx_replace(fx, "config.json", "\"n_head\": 2", "\"n_head\": 3");
    cli_refuses(fx, (const char *[]){fx->hf, fx->out, NULL}, 1, "not a multiple of n_head 3");
    cli_refuses(fx, (const char *[]){"/nonexistent/hf", fx->out, NULL}, 1, "/nonexistent/hf: No such file");
    /* The output's folder is checked before any work. */
    char nowhere[4300];
    test_path(nowhere, sizeof nowhere, fx->dir, "no/such/folder/model.bin");
    cli_refuses(fx, (const char *[]){fx->hf, nowhere, NULL}, 1, "folder");
    cli_refuses(fx, (const char *[]){fx->hf, fx->dir, NULL}, 1, "is a folder");
}

static void test_cli_converts(void **state) {
    Fixture *fx = *state;
    convert_ok(fx, fx->ref, DTYPE_Q8_0);
    test_write_file(fx->out, "old", 3);
    RunResult r;
    run_convert((const char *[]){fx->hf, fx->out, "--dtype", "q8_0", NULL}, &r);
    if (r.status != 0) fail_msg("exit status %d: %s", r.status, r.err.data);
    assert_int_equal(r.out.len, 0); /* progress goes to standard error */
    assert_non_null(strstr(r.err.data, "converting 2 layers"));
    assert_non_null(strstr(r.err.data, "100%"));
    test_run_free(&r);
    assert_same_file(fx->out, fx->ref);
    assert_false(test_has_partial(fx->out));
    run_convert((const char *[]){"-q", fx->hf, fx->out, "--dtype=q8_0", NULL}, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.out.len + r.err.len, 0);
    test_run_free(&r);
    assert_same_file(fx->out, fx->ref);
}

/* ---- the shared reference folders ----------------------------------------------- */

static void test_converts_reference_folders(void **state) {
    Fixture *fx = *state;
    REQUIRE_SHARED(shared);
    char tiny[4200], small[4200], tokenizer[4200];
    test_path(tiny, sizeof tiny, shared, "reference/tiny");
    test_path(small, sizeof small, shared, "reference/small");
    test_path(tokenizer, sizeof tokenizer, shared, "gpt2");
    /* The fixture has no tokenizer files of its own: the message says how
     * to give them. */
    cli_refuses(fx, (const char *[]){tiny, fx->out, "-q", NULL}, 1,
                "vocab.json: No such file or directory; give the folder holding GPT-2's vocab.json and "
                "merges.txt with --tokenizer DIR");
    const char *dirs[] = {tiny, small};
    const uint32_t embd[] = {16, 64};
    for (size_t i = 0; i < 2; i++) {
        RunResult r;
        run_convert((const char *[]){dirs[i], fx->out, "--tokenizer", tokenizer, "-q", NULL}, &r);
        if (r.status != 0) fail_msg("%s: exit status %d: %s", dirs[i], r.status, r.err.data);
        test_run_free(&r);
        char err[512];
        Gpt2 *g = gpt2_open(fx->out, NULL, err, sizeof err);
        if (!g) fail_msg("gpt2_open: %s", err);
        Gpt2Info info = gpt2_info(g);
        assert_int_equal(info.n_vocab, 50257);
        assert_int_equal(info.n_layer, 2);
        assert_int_equal(info.n_embd, embd[i]);
        assert_int_equal(info.eot_id, 50256);
        gpt2_close(g);
        assert_int_equal(unlink(fx->out), 0);
    }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_converts_plain_folder),
        T(test_unaligned_data_and_trailing_spaces),
        T(test_data_out_of_header_order),
        T(test_transformer_prefix),
        T(test_mask_buffers_and_tied_head_ignored),
        T(test_f16_and_bf16_tensors_convert_like_f32),
        T(test_every_output_dtype),
        T(test_config_variants_that_convert),
        T(test_published_configs),
        T(test_refuses_missing_files),
        T(test_refuses_missing_merges_and_bad_tokenizer_dir),
        T(test_refuses_damaged_sharded_and_pickled_checkpoints),
        T(test_refuses_missing_tensor),
        T(test_refuses_shape_that_disagrees_with_config),
        T(test_refuses_stray_tensors),
        T(test_refuses_untied_head),
        T(test_refuses_unsupported_dtype),
        T(test_refuses_bad_header_length),
        T(test_refuses_absurd_header_length),
        T(test_refuses_bad_offsets),
        T(test_refuses_size_not_matching_shape),
        T(test_refuses_unknown_dtype),
        T(test_refuses_malformed_header_json),
        T(test_refuses_duplicate_names),
        T(test_messages_show_names_on_one_line),
        T(test_refuses_bad_config),
        T(test_refuses_damaged_tokenizer_files),
        T(test_output_replaced_only_on_success),
        T(test_output_created_exclusively),
        T(test_cli_usage_errors),
        T(test_cli_bad_input),
        T(test_cli_converts),
        T(test_converts_reference_folders),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
