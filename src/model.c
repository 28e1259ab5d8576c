/* model.c - see model.h.  Validation happens in file order: identity, header,
 * directory, then every section against the file length; only a file that
 * passes all of it is handed to the engine. */
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONVERT_HINT "convert Hugging Face weights with gpt2-convert, or fetch a model with scripts/download-model.sh"

/* Explains what a file that is not ours seems to be. */
static void explain_foreign(const uint8_t *b, size_t n, char *err, size_t errsz) {
    if (n >= 4 && memcmp(b, "GGUF", 4) == 0)
        snprintf(err, errsz, "not a gpt2 model file: this is a GGUF (llama.cpp) file; " CONVERT_HINT);
    else if (n >= 9 && rd_u64(b) > 1 && rd_u64(b) < n && b[8] == '{')
        snprintf(err, errsz, "not a gpt2 model file: this looks like a safetensors file; run gpt2-convert on its folder");
    else if (n >= 4 && rd_u32(b) == 20240326)
        snprintf(err, errsz, "not a gpt2 model file: this looks like an llm.c checkpoint; " CONVERT_HINT);
    else
        snprintf(err, errsz, "not a gpt2 model file (bad magic); " CONVERT_HINT);
}

typedef struct {
    uint64_t start, end;
    const char *what;
} Region;

static int region_cmp(const void *a, const void *b) {
    const Region *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Checks that [off, off+len) lies inside a file of n bytes, overflow-safe. */
static bool in_file(uint64_t off, uint64_t len, uint64_t n) { return off <= n && len <= n - off; }

static bool read_config(const uint8_t *h, ModelConfig *c, char *err, size_t errsz) {
    c->n_vocab = rd_u32(h + HDR_N_VOCAB);
    c->n_ctx = rd_u32(h + HDR_N_CTX);
    c->n_embd = rd_u32(h + HDR_N_EMBD);
    c->n_layer = rd_u32(h + HDR_N_LAYER);
    c->n_head = rd_u32(h + HDR_N_HEAD);
    c->dtype = (DType)rd_u32(h + HDR_DTYPE);
    c->eot_id = rd_u32(h + HDR_EOT_ID);
    uint32_t eps_bits = rd_u32(h + HDR_LN_EPS);
    memcpy(&c->ln_eps, &eps_bits, sizeof c->ln_eps);
    char why[160];
    if (!model_config_check(c, why, sizeof why)) {
        snprintf(err, errsz, "damaged header: %s", why);
        return false;
    }
    return true;
}

static bool check_vocab(Model *m, uint64_t off, uint64_t len, char *err, size_t errsz) {
    const uint32_t n_vocab = m->config.n_vocab;
    uint64_t table = ((uint64_t)n_vocab + 1) * 4;
    if (off % MODEL_ALIGN || len < table) {
        snprintf(err, errsz, "damaged header: the vocabulary section is misplaced or too small");
        return false;
    }
    const uint8_t *v = m->bytes + off;
    uint64_t blob = len - table;
    uint32_t prev = rd_u32(v);
    if (prev != 0) {
        snprintf(err, errsz, "damaged vocabulary: the first token does not start at 0");
        return false;
    }
    for (uint32_t i = 0; i < n_vocab; i++) {
        uint32_t next = rd_u32(v + 4 * (i + 1));
        if (next <= prev || next - prev > MAX_TOKEN_BYTES || next > blob) {
            snprintf(err, errsz, "damaged vocabulary: token %u has a bad length or offset", i);
            return false;
        }
        prev = next;
    }
    if (prev != blob) {
        snprintf(err, errsz, "damaged vocabulary: the token bytes do not fill the section");
        return false;
    }
    m->vocab.n_vocab = n_vocab;
    m->vocab.offsets = (const uint32_t *)v;
    m->vocab.bytes = v + table;
    m->vocab.eot_id = m->config.eot_id;
    return true;
}

static bool check_merges(Model *m, uint64_t off, uint32_t n_merges, char *err, size_t errsz) {
    if (off % MODEL_ALIGN || n_merges >= m->config.n_vocab || !in_file(off, (uint64_t)n_merges * 12, m->n_bytes)) {
        snprintf(err, errsz, "damaged header: the merge table is misplaced or too large");
        return false;
    }
    m->vocab.n_merges = n_merges;
    m->vocab.merges = (const uint32_t *)(m->bytes + off);
    return true;
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

static bool check_tensors(Model *m, uint64_t dir, Region *regions, size_t *n_regions, char *err, size_t errsz) {
    const ModelConfig *c = &m->config;
    size_t count = model_tensor_count(c);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = m->bytes + dir + i * MODEL_TENSOR_ENTRY_BYTES;
        TensorSpec s;
        model_tensor_spec(c, i, &s);
        DType t = (DType)rd_u32(e + ENT_DTYPE);
        uint64_t off = rd_u64(e + ENT_OFFSET), len = rd_u64(e + ENT_BYTES);
        if (rd_u16(e + ENT_KIND) != s.kind || rd_u16(e + ENT_LAYER) != s.layer) {
            snprintf(err, errsz, "damaged tensor directory: entry %zu should be %s", i, s.name);
            return false;
        }
        if (rd_u32(e + ENT_ROWS) != s.rows || rd_u32(e + ENT_COLS) != s.cols) {
            snprintf(err, errsz, "damaged tensor directory: %s is %ux%u, the config says %ux%u", s.name,
                     rd_u32(e + ENT_ROWS), rd_u32(e + ENT_COLS), s.rows, s.cols);
            return false;
        }
        uint64_t want = (unsigned)t < DTYPE_COUNT ? tensor_bytes(&s, t) : 0;
        if (want == 0) {
            snprintf(err, errsz, "damaged tensor directory: %s cannot be stored as type %u", s.name, (unsigned)t);
            return false;
        }
        if (len != want) {
            snprintf(err, errsz, "damaged tensor directory: %s has %llu bytes, its shape needs %llu", s.name,
                     (unsigned long long)len, (unsigned long long)want);
            return false;
        }
        if (off % MODEL_ALIGN || !in_file(off, len, m->n_bytes)) {
            snprintf(err, errsz, "damaged tensor directory: %s lies outside the file or is misaligned", s.name);
            return false;
        }
        regions[(*n_regions)++] = (Region){off, off + len, "a tensor"};
        bind_tensor(&m->weights, &s, t, m->bytes + off);
    }
    return true;
}

bool model_open_memory(Model *m, const uint8_t *b, size_t n, char *err, size_t errsz) {
    memset(m, 0, sizeof *m);
    const uint32_t one = 1;
    if (*(const uint8_t *)&one != 1) {
        snprintf(err, errsz, "this build runs on little-endian machines only");
        return false;
    }
    if (n < sizeof MODEL_MAGIC - 1 || memcmp(b, MODEL_MAGIC, sizeof MODEL_MAGIC - 1) != 0) {
        if (n == 0) snprintf(err, errsz, "the file is empty; " CONVERT_HINT);
        else explain_foreign(b, n, err, errsz);
        return false;
    }
    if (n < MODEL_HEADER_BYTES) {
        snprintf(err, errsz, "truncated: %zu bytes, not even the %d-byte header", n, MODEL_HEADER_BYTES);
        return false;
    }
    uint32_t version = rd_u32(b + HDR_VERSION);
    if (version != MODEL_VERSION) {
        snprintf(err, errsz, "format version %u is not supported (this gpt2 reads version %d); convert the model again",
                 version, MODEL_VERSION);
        return false;
    }
    uint64_t file_bytes = rd_u64(b + HDR_FILE_BYTES);
    if (n < file_bytes) {
        snprintf(err, errsz, "truncated: %zu of %llu bytes (an interrupted download or copy?)", n,
                 (unsigned long long)file_bytes);
        return false;
    }
    if (n > file_bytes) {
        snprintf(err, errsz, "damaged: the file has %zu bytes but its header says %llu", n,
                 (unsigned long long)file_bytes);
        return false;
    }
    if (rd_u32(b + HDR_HEADER_BYTES) != MODEL_HEADER_BYTES) {
        snprintf(err, errsz, "damaged header: header size %u, expected %d", rd_u32(b + HDR_HEADER_BYTES),
                 MODEL_HEADER_BYTES);
        return false;
    }
    m->bytes = b;
    m->n_bytes = n;
    if (!read_config(b, &m->config, err, errsz)) return false;

    size_t count = model_tensor_count(&m->config);
    if (rd_u32(b + HDR_N_TENSORS) != count) {
        snprintf(err, errsz, "damaged header: %u tensors listed, a %u-layer model has %zu", rd_u32(b + HDR_N_TENSORS),
                 m->config.n_layer, count);
        goto fail;
    }
    uint64_t dir = rd_u64(b + HDR_TENSORS_OFFSET), dir_len = (uint64_t)count * MODEL_TENSOR_ENTRY_BYTES;
    uint64_t vocab_off = rd_u64(b + HDR_VOCAB_OFFSET), vocab_len = rd_u64(b + HDR_VOCAB_BYTES);
    uint64_t merges_off = rd_u64(b + HDR_MERGES_OFFSET);
    uint32_t n_merges = rd_u32(b + HDR_N_MERGES);
    if (dir % 8 || !in_file(dir, dir_len, n)) {
        snprintf(err, errsz, "damaged header: the tensor directory lies outside the file");
        goto fail;
    }
    if (!in_file(vocab_off, vocab_len, n)) {
        snprintf(err, errsz, "damaged header: the vocabulary section lies outside the file");
        goto fail;
    }
    if (!check_vocab(m, vocab_off, vocab_len, err, errsz)) goto fail;
    if (!check_merges(m, merges_off, n_merges, err, errsz)) goto fail;

    m->weights.layers = calloc(m->config.n_layer, sizeof *m->weights.layers);
    Region *regions = malloc((count + 4) * sizeof *regions);
    if (!m->weights.layers || !regions) {
        free(regions);
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    size_t n_regions = 0;
    regions[n_regions++] = (Region){0, MODEL_HEADER_BYTES, "the header"};
    regions[n_regions++] = (Region){dir, dir + dir_len, "the tensor directory"};
    regions[n_regions++] = (Region){vocab_off, vocab_off + vocab_len, "the vocabulary"};
    regions[n_regions++] = (Region){merges_off, merges_off + (uint64_t)n_merges * 12, "the merge table"};
    bool ok = check_tensors(m, dir, regions, &n_regions, err, errsz);
    if (ok) {
        qsort(regions, n_regions, sizeof *regions, region_cmp);
        for (size_t i = 1; i < n_regions && ok; i++) {
            if (regions[i].start < regions[i - 1].end) {
                snprintf(err, errsz, "damaged: %s overlaps %s", regions[i].what, regions[i - 1].what);
                ok = false;
            }
        }
    }
    free(regions);
    if (ok) return true;
fail:
    free(m->weights.layers);
    memset(m, 0, sizeof *m);
    return false;
}

bool model_open(Model *m, const char *path, char *err, size_t errsz) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errsz, "%s", strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "not a regular file");
        close(fd);
        return false;
    }
    size_t n = (size_t)st.st_size;
    if (n == 0) {
        close(fd);
        return model_open_memory(m, (const uint8_t *)"", 0, err, errsz);
    }
    void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errsz, "cannot map the file: %s", strerror(errno));
        return false;
    }
    if (!model_open_memory(m, p, n, err, errsz)) {
        munmap(p, n);
        return false;
    }
    m->mapped = true;
    return true;
}

void model_close(Model *m) {
    free(m->weights.layers);
    if (m->mapped) munmap((void *)m->bytes, m->n_bytes);
    memset(m, 0, sizeof *m);
}
