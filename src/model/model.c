/* model.c - see model.h.  Validation happens in file order: identity,
 * header, the sections it places, the tokenizer tables, then the tensors;
 * only a file that passes all of it is handed to the engine.
 *
 * Each checksum is checked before the fields it covers are interpreted, so
 * that damage is reported as damage ("its checksum does not match") rather
 * than as whatever the damaged field happens to say.  The checks behind the
 * checksums still matter: they are what stands between a file sealed by a
 * buggy or hostile writer and an out-of-bounds read.  Every number from the
 * file is compared against bounds before it is used in arithmetic, and
 * every sum of an offset and a length goes through in_file, so nothing can
 * overflow; nothing is allocated in proportion to a field before the file
 * has been seen to hold what that field promises. */
#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define NOT_OURS "not a gpt2 model file"

static const char *const section_name[SECTION_COUNT] = {"tensor directory", "vocabulary", "merge table"};

/* Checks that [off, off+len) lies inside a file of n bytes, overflow-safe. */
static bool in_file(uint64_t off, uint64_t len, uint64_t n) { return off <= n && len <= n - off; }

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i]) return false;
    }
    return true;
}

/* ---- identity -------------------------------------------------------------- */

/* No control characters but whitespace in the first 512 bytes: a prompt,
 * a config.json, a web page saved instead of a download. */
static bool looks_like_text(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n && i < 512; i++) {
        if ((b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') || b[i] == 0x7F) return false;
    }
    return true;
}

/* A legacy torch.save file: a pickled magic number after protocol 2. */
static const uint8_t torch_legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                             0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

ModelFileKind gpt2_model_identify(const uint8_t *b, size_t n, uint64_t file_size) {
    static const char lfs[] = "version https://git-lfs";
    const size_t magic = sizeof MODEL_MAGIC - 1;
    if (n == 0) return MODEL_KIND_EMPTY;
    if (memcmp(b, MODEL_MAGIC, n < magic ? n : magic) == 0) return MODEL_KIND_MODEL;
    if (n >= 4 && memcmp(b, "GGUF", 4) == 0) return MODEL_KIND_GGUF;
    if (n >= 9 && rd_u64(b) > 1 && rd_u64(b) < file_size && b[8] == '{') return MODEL_KIND_SAFETENSORS;
    if (n >= 4 && rd_u32(b) == 20240326) return MODEL_KIND_LLMC;
    if (n >= 4 && memcmp(b, "PK\3\4", 4) == 0) return MODEL_KIND_PYTORCH;
    if (n >= sizeof torch_legacy_magic && memcmp(b, torch_legacy_magic, sizeof torch_legacy_magic) == 0)
        return MODEL_KIND_PYTORCH;
    if (n >= sizeof lfs - 1 && memcmp(b, lfs, sizeof lfs - 1) == 0) return MODEL_KIND_LFS_POINTER;
    if (looks_like_text(b, n)) return MODEL_KIND_TEXT;
    return MODEL_KIND_UNKNOWN;
}

/* Says what a file that is not ours seems to be.  What to do about it is
 * the caller's to say (the command line names the converter). */
static void explain_foreign(const uint8_t *b, size_t n, char *err, size_t errsz) {
    switch (gpt2_model_identify(b, n, n)) {
    case MODEL_KIND_EMPTY: snprintf(err, errsz, NOT_OURS ": the file is empty"); break;
    case MODEL_KIND_GGUF: snprintf(err, errsz, NOT_OURS ": this is a GGUF (llama.cpp) file"); break;
    case MODEL_KIND_SAFETENSORS: snprintf(err, errsz, NOT_OURS ": this looks like a safetensors file"); break;
    case MODEL_KIND_LLMC: snprintf(err, errsz, NOT_OURS ": this looks like an llm.c checkpoint"); break;
    case MODEL_KIND_PYTORCH: snprintf(err, errsz, NOT_OURS ": this looks like a PyTorch checkpoint"); break;
    case MODEL_KIND_LFS_POINTER:
        snprintf(err, errsz,
                 NOT_OURS ": this is a Git LFS pointer, not the file it points to (git lfs pull fetches it)");
        break;
    case MODEL_KIND_TEXT: snprintf(err, errsz, NOT_OURS ": this is a text file"); break;
    default: snprintf(err, errsz, NOT_OURS " (bad magic)"); break;
    }
}

/* The magic, or a beginning of it cut short. */
static bool check_identity(const uint8_t *b, size_t n, char *err, size_t errsz) {
    const size_t magic = sizeof MODEL_MAGIC - 1;
    if (n == 0 || memcmp(b, MODEL_MAGIC, n < magic ? n : magic) != 0) {
        explain_foreign(b, n, err, errsz);
        return false;
    }
    if (n < MODEL_HEADER_BYTES) {
        snprintf(err, errsz, "truncated: the file has %zu byte%s, less than the %d-byte header", n, n == 1 ? "" : "s",
                 MODEL_HEADER_BYTES);
        return false;
    }
    return true;
}

/* ---- the header ------------------------------------------------------------ */

/* A version other than ours is named as such only when it looks genuine:
 * version 1 had no checksums and ends its header with 32 zero bytes, and
 * later versions keep the header checksum where it is (docs/model-format.md,
 * "Versions").  Anything else is a damaged version field. */
static bool check_version(const uint8_t *b, char *err, size_t errsz) {
    uint32_t version = rd_u32(b + HDR_VERSION);
    if (version >= MODEL_VERSION_OLDEST && version <= MODEL_VERSION) return true;
    bool version_1 = version == 1 && all_zero(b + HDR_HEADER_CRC, MODEL_HEADER_BYTES - HDR_HEADER_CRC);
    bool sealed = rd_u32(b + HDR_HEADER_CRC) == gpt2_model_header_crc(b);
    if (version_1 || sealed)
        snprintf(err, errsz,
                 "format version %u is not supported (this gpt2 reads versions %d to %d); convert the model "
                 "again with this gpt2-convert",
                 version, MODEL_VERSION_OLDEST, MODEL_VERSION);
    else snprintf(err, errsz, "damaged header: its checksum does not match");
    return false;
}

/* Version, checksum, the fixed fields, and the length against the file's. */
static bool check_header(const uint8_t *b, size_t n, char *err, size_t errsz) {
    if (!check_version(b, err, errsz)) return false;
    if (rd_u32(b + HDR_HEADER_CRC) != gpt2_model_header_crc(b)) {
        snprintf(err, errsz, "damaged header: its checksum does not match");
        return false;
    }
    if (rd_u32(b + HDR_HEADER_BYTES) != MODEL_HEADER_BYTES) {
        snprintf(err, errsz, "damaged header: header size %u, expected %d", rd_u32(b + HDR_HEADER_BYTES),
                 MODEL_HEADER_BYTES);
        return false;
    }
    /* Version 2 reserved the bytes that version 3 gives n_added. */
    size_t reserved = rd_u32(b + HDR_VERSION) < 3 ? HDR_N_ADDED : HDR_RESERVED;
    if (!all_zero(b + reserved, MODEL_HEADER_BYTES - reserved)) {
        snprintf(err, errsz, "damaged header: reserved bytes %zu..%d are not zero", reserved, MODEL_HEADER_BYTES - 1);
        return false;
    }
    /* The header is intact, so a file shorter than it says was cut short. */
    uint64_t file_bytes = rd_u64(b + HDR_FILE_BYTES);
    if (n < file_bytes) {
        snprintf(err, errsz, "truncated: the file has %zu of its %llu bytes (an interrupted download or copy?)", n,
                 (unsigned long long)file_bytes);
        return false;
    }
    if (n > file_bytes) {
        snprintf(err, errsz, "damaged: the file has %zu bytes but its header says %llu", n,
                 (unsigned long long)file_bytes);
        return false;
    }
    return true;
}

static bool read_config(const uint8_t *h, ModelConfig *c, char *err, size_t errsz) {
    c->n_vocab = rd_u32(h + HDR_N_VOCAB);
    c->n_ctx = rd_u32(h + HDR_N_CTX);
    c->n_embd = rd_u32(h + HDR_N_EMBD);
    c->n_layer = rd_u32(h + HDR_N_LAYER);
    c->n_head = rd_u32(h + HDR_N_HEAD);
    c->dtype = (DType)rd_u32(h + HDR_DTYPE);
    c->eot_id = rd_u32(h + HDR_EOT_ID);
    c->n_added = rd_u32(h + HDR_N_ADDED); /* zero in a version 2 file (check_header) */
    uint32_t eps_bits = rd_u32(h + HDR_LN_EPS);
    memcpy(&c->ln_eps, &eps_bits, sizeof c->ln_eps);
    char why[160];
    if (!gpt2_model_config_check(c, why, sizeof why)) {
        snprintf(err, errsz, "damaged header: %s", why);
        return false;
    }
    return true;
}

/* ---- sections -------------------------------------------------------------- */

/* The counts that size the sections, then each section's place and sum. */
static bool check_sections(const Model *m, char *err, size_t errsz) {
    const uint8_t *b = m->bytes;
    const ModelConfig *c = &m->config;
    size_t count = gpt2_model_tensor_count(c);
    if (rd_u32(b + HDR_N_TENSORS) != count) {
        snprintf(err, errsz, "damaged header: %u tensors listed, a %u-layer model has %zu", rd_u32(b + HDR_N_TENSORS),
                 c->n_layer, count);
        return false;
    }
    /* Each merge makes a token of two or more bytes, so there are fewer
     * merges than tokens; this also bounds the tokenizer's pair table. */
    if (rd_u32(b + HDR_N_MERGES) >= c->n_vocab) {
        snprintf(err, errsz, "damaged header: %u merges listed, more than a vocabulary of %u tokens can have",
                 rd_u32(b + HDR_N_MERGES), c->n_vocab);
        return false;
    }
    for (Section s = 0; s < SECTION_COUNT; s++) {
        uint64_t off, len;
        gpt2_model_section(b, s, &off, &len);
        /* Bounded before it is summed, so that a forged length cannot make
         * opening read the whole file. */
        if (s == SECTION_VOCAB && len > ((uint64_t)c->n_vocab + 1) * 4 + (uint64_t)c->n_vocab * MAX_TOKEN_BYTES) {
            snprintf(err, errsz, "damaged header: the vocabulary section has %llu bytes, more than %u tokens can take",
                     (unsigned long long)len, c->n_vocab);
            return false;
        }
        if (!in_file(off, len, m->n_bytes)) {
            snprintf(err, errsz, "damaged header: the %s (%llu bytes at offset %llu) lies outside the file",
                     section_name[s], (unsigned long long)len, (unsigned long long)off);
            return false;
        }
        if (off % MODEL_ALIGN) {
            snprintf(err, errsz, "damaged header: the %s starts at offset %llu, not a multiple of %d", section_name[s],
                     (unsigned long long)off, MODEL_ALIGN);
            return false;
        }
        if (rd_u32(b + gpt2_model_section_crc_field(s)) != gpt2_crc32_update(0, b + off, (size_t)len)) {
            snprintf(err, errsz, "damaged %s: its checksum does not match", section_name[s]);
            return false;
        }
    }
    return true;
}

/* The tokenizer's tables are read at every encode and decode, long after
 * they were checked.  A mapping follows later writes to the file, so they
 * are copied out of it first, and it is the copy that is checked and used:
 * whatever happens to the file then, no read is steered by it.  The
 * sections lie within the file (check_sections), which bounds the copy. */
static uint64_t merges_at(uint64_t vocab_len) { return (vocab_len + 7) & ~(uint64_t)7; } /* aligned for u32 */

static bool copy_tables(Model *m, char *err, size_t errsz) {
    uint64_t voff, vlen, moff, mlen;
    gpt2_model_section(m->bytes, SECTION_VOCAB, &voff, &vlen);
    gpt2_model_section(m->bytes, SECTION_MERGES, &moff, &mlen);
    m->tables_bytes = (size_t)(merges_at(vlen) + mlen) + 1;
    m->tables = gpt2_fileio_alloc_table(m->tables_bytes);
    if (!m->tables) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    memcpy(m->tables, m->bytes + voff, (size_t)vlen);
    memcpy(m->tables + merges_at(vlen), m->bytes + moff, (size_t)mlen);
    return true;
}

/* The vocabulary: n_vocab + 1 u32 offsets into the token bytes that follow
 * them, starting at 0, strictly increasing by at most MAX_TOKEN_BYTES, the
 * last one the end of the section. */
static bool check_vocab(Model *m, char *err, size_t errsz) {
    const uint32_t n_vocab = m->config.n_vocab;
    uint64_t off, len;
    gpt2_model_section(m->bytes, SECTION_VOCAB, &off, &len);
    off = 0; /* in the copy */
    const uint64_t table = ((uint64_t)n_vocab + 1) * 4;
    if (len < table) {
        snprintf(err, errsz, "damaged header: the vocabulary section has %llu bytes, too few for %u tokens",
                 (unsigned long long)len, n_vocab);
        return false;
    }
    const uint8_t *v = m->tables + off;
    const uint64_t blob = len - table;
    if (rd_u32(v) != 0) {
        snprintf(err, errsz, "damaged vocabulary: the first token does not start at 0");
        return false;
    }
    uint32_t prev = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        uint32_t next = rd_u32(v + 4 * ((size_t)i + 1));
        if (next <= prev) {
            snprintf(err, errsz, "damaged vocabulary: token %u is empty or its offsets go backwards", i);
            return false;
        }
        if (next - prev > MAX_TOKEN_BYTES) {
            snprintf(err, errsz, "damaged vocabulary: token %u is %u bytes long, more than %u", i, next - prev,
                     MAX_TOKEN_BYTES);
            return false;
        }
        if (next > blob) {
            snprintf(err, errsz, "damaged vocabulary: token %u ends past the vocabulary section", i);
            return false;
        }
        prev = next;
    }
    if (prev != blob) {
        snprintf(err, errsz, "damaged vocabulary: the tokens end %llu bytes before the section does",
                 (unsigned long long)(blob - prev));
        return false;
    }
    m->vocab.n_vocab = n_vocab;
    m->vocab.offsets = (const uint32_t *)v;
    m->vocab.bytes = v + table;
    m->vocab.eot_id = m->config.eot_id;
    m->vocab.n_added = m->config.n_added;
    return true;
}

/* The merge table: rows of (left, right, merged), every id a token.  That
 * the merged token is the concatenation is gpt2_tokenizer_build's check. */
static bool check_merges(Model *m, char *err, size_t errsz) {
    uint64_t voff, vlen, off, len;
    gpt2_model_section(m->bytes, SECTION_VOCAB, &voff, &vlen);
    gpt2_model_section(m->bytes, SECTION_MERGES, &off, &len);
    const uint32_t n_merges = (uint32_t)(len / 12);
    const uint8_t *t = m->tables + merges_at(vlen); /* in the copy */
    for (size_t i = 0; i < (size_t)n_merges * 3; i++) {
        if (rd_u32(t + 4 * i) >= m->config.n_vocab) {
            snprintf(err, errsz, "damaged merge table: merge %zu names token %u, beyond the vocabulary of %u", i / 3,
                     rd_u32(t + 4 * i), m->config.n_vocab);
            return false;
        }
    }
    m->vocab.n_merges = n_merges;
    m->vocab.merges = (const uint32_t *)t;
    return true;
}

/* ---- tensors --------------------------------------------------------------- */

/* A stretch of the file something occupies, for the overlap check. */
typedef struct {
    uint64_t start, end;
    char what[64];
} Region;

static int region_cmp(const void *a, const void *b) {
    const Region *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Points w's field for spec s at data. */
static void bind_tensor(TransformerWeights *w, const TensorSpec *s, DType t, const void *data) {
    Matrix mat = {t, s->rows, s->cols, data};
    const float *f = data;
    LayerWeights *l = s->kind >= TK_LN1_W ? &w->layers[s->layer] : NULL;
    switch (s->kind) {
    case TK_WTE: w->wte = mat; break;
    case TK_WPE: w->wpe = f; break;
    case TK_LNF_W: w->lnf_w = f; break;
    case TK_LNF_B: w->lnf_b = f; break;
    case TK_LN1_W: l->ln1_w = f; break;
    case TK_LN1_B: l->ln1_b = f; break;
    case TK_QKV_W: l->qkv = mat; break;
    case TK_QKV_B: l->qkv_b = f; break;
    case TK_PROJ_W: l->proj = mat; break;
    case TK_PROJ_B: l->proj_b = f; break;
    case TK_LN2_W: l->ln2_w = f; break;
    case TK_LN2_B: l->ln2_b = f; break;
    case TK_FC_W: l->fc = mat; break;
    case TK_FC_B: l->fc_b = f; break;
    case TK_MLP_W: l->mlp = mat; break;
    case TK_MLP_B: l->mlp_b = f; break;
    case TK_COUNT: break;
    }
}

/* Directory entry i against the tensor the config says comes i-th. */
static bool check_entry(const Model *m, const uint8_t *e, const TensorSpec *s, size_t i, char *err, size_t errsz) {
    const ModelConfig *c = &m->config;
    if (rd_u16(e + ENT_KIND) != s->kind || rd_u16(e + ENT_LAYER) != s->layer) {
        snprintf(err, errsz, "damaged tensor directory: entry %zu should be %s", i, s->name);
        return false;
    }
    if (rd_u32(e + ENT_ROWS) != s->rows || rd_u32(e + ENT_COLS) != s->cols) {
        snprintf(err, errsz, "damaged tensor directory: %s is %ux%u, the config says %ux%u", s->name,
                 rd_u32(e + ENT_ROWS), rd_u32(e + ENT_COLS), s->rows, s->cols);
        return false;
    }
    DType want_type = gpt2_tensor_dtype(c, s);
    uint32_t type = rd_u32(e + ENT_DTYPE);
    if (type != (uint32_t)want_type) {
        snprintf(err, errsz, "damaged tensor directory: %s has type %u, a %s model stores it as %s", s->name, type,
                 gpt2_dtype_name(c->dtype), gpt2_dtype_name(want_type));
        return false;
    }
    uint64_t off = rd_u64(e + ENT_OFFSET), len = rd_u64(e + ENT_BYTES), want = gpt2_tensor_bytes(s, want_type);
    if (len != want) {
        snprintf(err, errsz, "damaged tensor directory: %s has %llu bytes, its shape needs %llu", s->name,
                 (unsigned long long)len, (unsigned long long)want);
        return false;
    }
    if (!in_file(off, len, m->n_bytes)) {
        snprintf(err, errsz, "damaged tensor directory: %s (%llu bytes at offset %llu) lies outside the file", s->name,
                 (unsigned long long)len, (unsigned long long)off);
        return false;
    }
    if (off % MODEL_ALIGN) {
        snprintf(err, errsz, "damaged tensor directory: %s starts at offset %llu, not a multiple of %d", s->name,
                 (unsigned long long)off, MODEL_ALIGN);
        return false;
    }
    return true;
}

/* Every entry, then that nothing overlaps and that the file ends where its
 * last occupant (padded) does.  regions has room for the header, the three
 * sections and every tensor. */
static bool check_tensors(Model *m, Region *regions, char *err, size_t errsz) {
    const ModelConfig *c = &m->config;
    size_t count = gpt2_model_tensor_count(c), n_regions = 0;
    regions[n_regions++] = (Region){0, MODEL_HEADER_BYTES, "the header"};
    for (Section s = 0; s < SECTION_COUNT; s++) {
        uint64_t off, len;
        gpt2_model_section(m->bytes, s, &off, &len);
        Region r = {off, off + len, ""};
        snprintf(r.what, sizeof r.what, "the %s", section_name[s]);
        if (len) regions[n_regions++] = r; /* an empty merge table occupies nothing */
    }
    uint64_t dir = rd_u64(m->bytes + HDR_TENSORS_OFFSET);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = m->bytes + dir + i * MODEL_TENSOR_ENTRY_BYTES;
        TensorSpec s;
        gpt2_model_tensor_spec(c, i, &s);
        if (!check_entry(m, e, &s, i, err, errsz)) return false;
        uint64_t off = rd_u64(e + ENT_OFFSET);
        Region r = {off, off + rd_u64(e + ENT_BYTES), ""};
        snprintf(r.what, sizeof r.what, "tensor %s", s.name);
        regions[n_regions++] = r;
        bind_tensor(&m->weights, &s, gpt2_tensor_dtype(c, &s), m->bytes + off);
    }
    qsort(regions, n_regions, sizeof *regions, region_cmp);
    uint64_t end = regions[0].end;
    for (size_t i = 1; i < n_regions; i++) {
        if (regions[i].start < regions[i - 1].end) {
            snprintf(err, errsz, "damaged: %s overlaps %s", regions[i].what, regions[i - 1].what);
            return false;
        }
        end = regions[i].end;
    }
    /* The file ends with the padding after its last occupant, no more and
     * no less; anything else is a writer's mistake or stray data. */
    if (align_up(end) < m->n_bytes) {
        uint64_t stray = m->n_bytes - align_up(end);
        snprintf(err, errsz, "damaged: %llu stray byte%s after the last tensor", (unsigned long long)stray,
                 stray == 1 ? "" : "s");
        return false;
    }
    if (align_up(end) > m->n_bytes) {
        snprintf(err, errsz,
                 "damaged: the file has %zu bytes, not a multiple of %d (the padding after its last "
                 "tensor is missing)",
                 m->n_bytes, MODEL_ALIGN);
        return false;
    }
    return true;
}

/* ---- opening ----------------------------------------------------------------- */

bool gpt2_model_open_memory(Model *m, const uint8_t *b, size_t n, char *err, size_t errsz) {
    memset(m, 0, sizeof *m);
    const uint32_t one = 1;
    if (*(const uint8_t *)&one != 1) {
        snprintf(err, errsz, "this build runs on little-endian machines only");
        return false;
    }
    if (n > 0 && (uintptr_t)b % MODEL_ALIGN) { /* a caller's mistake, not the file's */
        snprintf(err, errsz, "the model is not at a %d-byte aligned address in memory", MODEL_ALIGN);
        return false;
    }
    if (!check_identity(b, n, err, errsz) || !check_header(b, n, err, errsz)) return false;
    m->bytes = b;
    m->n_bytes = n;
    if (!read_config(b, &m->config, err, errsz) || !check_sections(m, err, errsz) || !copy_tables(m, err, errsz) ||
        !check_vocab(m, err, errsz) || !check_merges(m, err, errsz)) {
        gpt2_fileio_free_table(m->tables, m->tables_bytes);
        memset(m, 0, sizeof *m);
        return false;
    }
    /* The directory, which lies in the file, bounds both allocations. */
    size_t count = gpt2_model_tensor_count(&m->config);
    m->weights.layers = calloc(m->config.n_layer, sizeof *m->weights.layers);
    Region *regions = malloc((count + 1 + SECTION_COUNT) * sizeof *regions);
    bool ok = m->weights.layers && regions;
    if (!ok) snprintf(err, errsz, "out of memory");
    if (ok) ok = check_tensors(m, regions, err, errsz);
    free(regions);
    if (!ok) {
        free(m->weights.layers);
        gpt2_fileio_free_table(m->tables, m->tables_bytes);
        memset(m, 0, sizeof *m);
    }
    return ok;
}

bool gpt2_model_open(Model *m, const char *path, char *err, size_t errsz) {
    memset(m, 0, sizeof *m);
    const void *p;
    size_t n;
    if (!gpt2_fileio_map(path, "a model file", &p, &n, err, errsz)) return false;
    if (!gpt2_model_open_memory(m, p, n, err, errsz)) {
        gpt2_fileio_unmap(p, n);
        return false;
    }
    m->mapped = true;
    return true;
}

void gpt2_model_close(Model *m) {
    free(m->weights.layers);
    gpt2_fileio_free_table(m->tables, m->tables_bytes);
    if (m->mapped) gpt2_fileio_unmap(m->bytes, m->n_bytes);
    memset(m, 0, sizeof *m);
}
