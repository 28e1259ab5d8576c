/* kvfile.c - see kvfile.h.  gpt2_kvfile_read checks everything it reads
 * against the header and the final checksum before it reports success. */
#include "kvfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KVFILE_MAGIC "GPT2KVC" /* and a NUL: 8 bytes */
#define KVFILE_HEADER_BYTES 64
#define SAMPLE_BYTES 4096 /* of each end of each tensor, for the model's identity */

/* ---- a 64-bit hash, four lanes of 8-byte words --------------------------- */

typedef struct {
    uint64_t lane[4];
    uint8_t buf[32];
    size_t n_buf;
    uint64_t total;
} Hasher;

static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full;

static uint64_t rotl(uint64_t x, int r) { return x << r | x >> (64 - r); }
static uint64_t round64(uint64_t acc, uint64_t w) { return rotl(acc + w * P2, 31) * P1; }

static void hash_init(Hasher *h) {
    memset(h, 0, sizeof *h);
    h->lane[0] = P1 + P2, h->lane[1] = P2, h->lane[2] = 0, h->lane[3] = 0 - P1;
}

static void hash_block(Hasher *h, const uint8_t *p) {
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        h->lane[i] = round64(h->lane[i], w);
    }
}

static void hash_update(Hasher *h, const void *data, size_t n) {
    const uint8_t *p = data;
    h->total += n;
    if (h->n_buf) {
        size_t take = 32 - h->n_buf < n ? 32 - h->n_buf : n;
        memcpy(h->buf + h->n_buf, p, take);
        h->n_buf += take, p += take, n -= take;
        if (h->n_buf < 32) return;
        hash_block(h, h->buf);
        h->n_buf = 0;
    }
    for (; n >= 32; p += 32, n -= 32) hash_block(h, p);
    memcpy(h->buf, p, n);
    h->n_buf = n;
}

static uint64_t hash_final(Hasher *h) {
    uint64_t x = rotl(h->lane[0], 1) + rotl(h->lane[1], 7) + rotl(h->lane[2], 12) + rotl(h->lane[3], 18);
    for (size_t i = 0; i < h->n_buf; i++) x = rotl(x ^ h->buf[i] * P1, 11) * P2;
    x ^= h->total;
    x ^= x >> 33, x *= P2, x ^= x >> 29, x *= P1, x ^= x >> 32;
    return x;
}

/* ---- little-endian fields ------------------------------------------------- */

static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- the model's identity --------------------------------------------------- */

uint64_t gpt2_kvfile_model_id(const Model *m) {
    Hasher h;
    hash_init(&h);
    const uint8_t *b = m->bytes;
    const size_t size = m->n_bytes;
    if (size < MODEL_HEADER_BYTES) return 0;
    hash_update(&h, b, MODEL_HEADER_BYTES);
    uint64_t dir = get64(b + HDR_TENSORS_OFFSET), n_tensors = get32(b + HDR_N_TENSORS);
    if (dir > size || n_tensors > (size - dir) / MODEL_TENSOR_ENTRY_BYTES) return hash_final(&h);
    hash_update(&h, b + dir, n_tensors * MODEL_TENSOR_ENTRY_BYTES);
    for (uint64_t i = 0; i < n_tensors; i++) {
        const uint8_t *e = b + dir + i * MODEL_TENSOR_ENTRY_BYTES;
        uint64_t at = get64(e + ENT_OFFSET), bytes = get64(e + ENT_BYTES);
        if (at > size || bytes > size - at) continue; /* the loader refuses such a file anyway */
        size_t head = bytes < SAMPLE_BYTES ? (size_t)bytes : SAMPLE_BYTES;
        hash_update(&h, b + at, head);
        hash_update(&h, b + at + bytes - head, head);
    }
    return hash_final(&h);
}

/* ---- reading ------------------------------------------------------------------- */

/* Reads exactly n bytes; false at the end of the file or on an error. */
static bool read_all(int fd, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        p += got, n -= (size_t)got;
    }
    return true;
}

/* Checks the header against t's model; n_tokens from it. */
static bool check_header(const Transformer *t, const uint8_t *h, uint32_t *n_tokens, char *err, size_t errsz) {
    const ModelConfig *c = &t->model->config;
    if (memcmp(h, KVFILE_MAGIC, 8) != 0) {
        snprintf(err, errsz, "not a gpt2 prompt cache");
        return false;
    }
    if (get32(h + 8) != KVFILE_VERSION || get32(h + 12) != KVFILE_HEADER_BYTES) {
        snprintf(err, errsz, "made by another version of gpt2 (format %u, this one reads %u)", get32(h + 8),
                 KVFILE_VERSION);
        return false;
    }
    if (get64(h + 16) != t->model->n_bytes || get64(h + 24) != gpt2_kvfile_model_id(t->model) ||
        get32(h + 32) != c->n_layer || get32(h + 36) != c->n_head || get32(h + 40) != c->n_embd ||
        get32(h + 44) != c->n_ctx) {
        snprintf(err, errsz, "made with another model file");
        return false;
    }
    *n_tokens = get32(h + 48);
    if (*n_tokens == 0 || *n_tokens > c->n_ctx) {
        snprintf(err, errsz, "damaged (%u tokens, the context holds 1 to %u)", *n_tokens, c->n_ctx);
        return false;
    }
    return true;
}

/* The file's size for n tokens. */
static uint64_t file_bytes(const ModelConfig *c, uint64_t n) {
    return KVFILE_HEADER_BYTES + 4 * n + 2 * (uint64_t)c->n_layer * c->n_embd * n * 4 + 8;
}

bool gpt2_kvfile_read(Transformer *t, size_t seq, const char *path, const int32_t *ids, size_t n, size_t *n_loaded,
                      size_t *n_cached, char *err, size_t errsz) {
    const ModelConfig *c = &t->model->config;
    const size_t H = c->n_head, hd = c->n_embd / c->n_head;
    *n_loaded = *n_cached = 0;
    gpt2_transformer_reset(t, seq);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "%s", strerror(errno));
        return false;
    }
    struct stat st;
    uint8_t header[KVFILE_HEADER_BYTES];
    uint32_t n_tokens = 0;
    int32_t *tokens = NULL;
    float *block = NULL;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (!ok) snprintf(err, errsz, "not a regular file");
    if (ok && !(ok = read_all(fd, header, sizeof header))) snprintf(err, errsz, "truncated");
    ok = ok && check_header(t, header, &n_tokens, err, errsz);
    if (ok && (uint64_t)st.st_size != file_bytes(c, n_tokens)) {
        snprintf(err, errsz, "%s (%lld bytes, %u tokens need %llu)",
                 (uint64_t)st.st_size < file_bytes(c, n_tokens) ? "truncated" : "damaged", (long long)st.st_size,
                 n_tokens, (unsigned long long)file_bytes(c, n_tokens));
        ok = false;
    }
    Hasher h;
    hash_init(&h);
    hash_update(&h, header, sizeof header);
    if (ok) {
        tokens = malloc(n_tokens * sizeof *tokens);
        block = malloc(2 * (size_t)n_tokens * hd * sizeof *block);
        if (!tokens || !block) snprintf(err, errsz, "out of memory");
        ok = tokens && block;
    }
    if (ok && !(ok = read_all(fd, tokens, n_tokens * sizeof *tokens))) snprintf(err, errsz, "truncated");
    size_t use = 0; /* positions to load: the common prefix with ids */
    if (ok) {
        hash_update(&h, tokens, n_tokens * sizeof *tokens);
        for (uint32_t i = 0; i < n_tokens; i++) {
            if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->n_vocab) {
                snprintf(err, errsz, "damaged (token id %d)", tokens[i]);
                ok = false;
                break;
            }
        }
        while (use < n_tokens && use < n && tokens[use] == ids[use]) use++;
    }
    KVCache *kv = &t->caches[seq];
    for (size_t lh = 0; ok && lh < c->n_layer * H; lh++) {
        if (!(ok = read_all(fd, block, 2 * (size_t)n_tokens * hd * sizeof *block))) {
            snprintf(err, errsz, "truncated");
            break;
        }
        hash_update(&h, block, 2 * (size_t)n_tokens * hd * sizeof *block);
        const float *keys = block, *values = block + (size_t)n_tokens * hd;
        for (size_t p = 0; p < use; p++) {
            float *key = kv->kt + gpt2_kv_key(t, lh, p);
            for (size_t d = 0; d < hd; d++) key[d * 16] = keys[p * hd + d];
            memcpy(kv->v + gpt2_kv_offset(t, lh, p), values + p * hd, hd * sizeof *values);
        }
    }
    uint8_t sum[8];
    if (ok && !(ok = read_all(fd, sum, sizeof sum))) snprintf(err, errsz, "truncated");
    if (ok && get64(sum) != hash_final(&h)) {
        snprintf(err, errsz, "damaged (checksum mismatch)");
        ok = false;
    }
    if (ok) {
        memcpy(kv->tokens, tokens, use * sizeof *tokens);
        kv->len = (uint32_t)use;
        *n_loaded = use;
        *n_cached = n_tokens;
    }
    free(tokens);
    free(block);
    close(fd);
    return ok;
}

/* ---- writing -------------------------------------------------------------------- */

static bool write_all(int fd, const void *buf, size_t n, Hasher *h) {
    if (h) hash_update(h, buf, n);
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return false;
        p += put, n -= (size_t)put;
    }
    return true;
}

bool gpt2_kvfile_write(Transformer *t, size_t seq, const int32_t *ids, size_t n, const char *path, char *err,
                       size_t errsz) {
    const ModelConfig *c = &t->model->config;
    const size_t H = c->n_head, hd = c->n_embd / c->n_head;
    gpt2_transformer_own(t, seq); /* read below in place */
    const KVCache *kv = &t->caches[seq];
    if (n == 0 || n > kv->len || memcmp(kv->tokens, ids, n * sizeof *ids) != 0) {
        snprintf(err, errsz, "the prompt's keys and values are no longer held");
        return false;
    }
    uint8_t header[KVFILE_HEADER_BYTES] = {0};
    memcpy(header, KVFILE_MAGIC, 8);
    put32(header + 8, KVFILE_VERSION);
    put32(header + 12, KVFILE_HEADER_BYTES);
    put64(header + 16, t->model->n_bytes);
    put64(header + 24, gpt2_kvfile_model_id(t->model));
    put32(header + 32, c->n_layer);
    put32(header + 36, c->n_head);
    put32(header + 40, c->n_embd);
    put32(header + 44, c->n_ctx);
    put32(header + 48, (uint32_t)n);
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        snprintf(err, errsz, "the file name is too long");
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errsz, "cannot create %s: %s", tmp, strerror(errno));
        return false;
    }
    float *block = malloc(2 * n * hd * sizeof *block);
    Hasher h;
    hash_init(&h);
    bool ok = block && write_all(fd, header, sizeof header, &h) && write_all(fd, ids, n * sizeof *ids, &h);
    for (size_t lh = 0; ok && lh < c->n_layer * H; lh++) {
        for (size_t p = 0; p < n; p++) {
            const float *key = kv->kt + gpt2_kv_key(t, lh, p);
            for (size_t d = 0; d < hd; d++) block[p * hd + d] = key[d * 16];
            memcpy(block + (n + p) * hd, kv->v + gpt2_kv_offset(t, lh, p), hd * sizeof *block);
        }
        ok = write_all(fd, block, 2 * n * hd * sizeof *block, &h);
    }
    uint8_t sum[8];
    put64(sum, hash_final(&h));
    ok = ok && write_all(fd, sum, sizeof sum, NULL);
    int saved = errno;
    if (close(fd) != 0 && ok) ok = false, saved = errno;
    if (ok && rename(tmp, path) != 0) ok = false, saved = errno;
    if (!ok) {
        snprintf(err, errsz, "cannot write %s: %s", path, block ? strerror(saved ? saved : EIO) : "out of memory");
        unlink(tmp);
    }
    free(block);
    return ok;
}
