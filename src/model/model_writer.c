/* model_writer.c - see model_writer.h. */
#include "model_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where each section goes: header, directory, vocabulary, merges, then the
 * tensors in file order, each aligned to MODEL_ALIGN. */
typedef struct {
    uint64_t dir, vocab, vocab_bytes, merges, merges_bytes;
    uint64_t *tensor; /* [count] offsets */
    uint64_t file_bytes;
} Layout;

static bool plan_layout(const ModelConfig *c, const TokenizerData *v, Layout *lay, char *err, size_t errsz) {
    size_t count = gpt2_model_tensor_count(c);
    lay->tensor = malloc(count * sizeof *lay->tensor);
    if (!lay->tensor) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    lay->dir = MODEL_HEADER_BYTES;
    lay->vocab = align_up(lay->dir + count * MODEL_TENSOR_ENTRY_BYTES);
    lay->vocab_bytes = ((uint64_t)v->n_vocab + 1) * 4 + v->offsets[v->n_vocab];
    lay->merges = align_up(lay->vocab + lay->vocab_bytes);
    lay->merges_bytes = (uint64_t)v->n_merges * 12;
    uint64_t at = align_up(lay->merges + lay->merges_bytes);
    for (size_t i = 0; i < count; i++) {
        TensorSpec s;
        gpt2_model_tensor_spec(c, i, &s);
        lay->tensor[i] = at;
        at = align_up(at + gpt2_tensor_bytes(&s, gpt2_tensor_dtype(c, &s)));
    }
    lay->file_bytes = at;
    return true;
}

/* Header, directory, vocabulary and merges: everything before the first
 * tensor, assembled in memory and sealed with their checksums. */
static uint8_t *build_front(const ModelConfig *c, const TokenizerData *v, const Layout *lay) {
    size_t count = gpt2_model_tensor_count(c);
    size_t n = (size_t)lay->tensor[0];
    uint8_t *f = calloc(1, n);
    if (!f) return NULL;
    memcpy(f + HDR_MAGIC, MODEL_MAGIC, sizeof MODEL_MAGIC - 1);
    wr_u32(f + HDR_VERSION, MODEL_VERSION);
    wr_u32(f + HDR_HEADER_BYTES, MODEL_HEADER_BYTES);
    wr_u32(f + HDR_N_VOCAB, c->n_vocab);
    wr_u32(f + HDR_N_CTX, c->n_ctx);
    wr_u32(f + HDR_N_EMBD, c->n_embd);
    wr_u32(f + HDR_N_LAYER, c->n_layer);
    wr_u32(f + HDR_N_HEAD, c->n_head);
    wr_u32(f + HDR_DTYPE, (uint32_t)c->dtype);
    wr_u32(f + HDR_EOT_ID, c->eot_id);
    wr_u32(f + HDR_N_ADDED, c->n_added);
    uint32_t eps;
    memcpy(&eps, &c->ln_eps, sizeof eps);
    wr_u32(f + HDR_LN_EPS, eps);
    wr_u32(f + HDR_N_MERGES, v->n_merges);
    wr_u32(f + HDR_N_TENSORS, (uint32_t)count);
    wr_u64(f + HDR_FILE_BYTES, lay->file_bytes);
    wr_u64(f + HDR_VOCAB_OFFSET, lay->vocab);
    wr_u64(f + HDR_VOCAB_BYTES, lay->vocab_bytes);
    wr_u64(f + HDR_MERGES_OFFSET, lay->merges);
    wr_u64(f + HDR_TENSORS_OFFSET, lay->dir);
    for (size_t i = 0; i < count; i++) {
        TensorSpec s;
        gpt2_model_tensor_spec(c, i, &s);
        DType t = gpt2_tensor_dtype(c, &s);
        uint8_t *e = f + lay->dir + i * MODEL_TENSOR_ENTRY_BYTES;
        wr_u16(e + ENT_KIND, s.kind);
        wr_u16(e + ENT_LAYER, s.layer);
        wr_u32(e + ENT_DTYPE, t);
        wr_u32(e + ENT_ROWS, s.rows);
        wr_u32(e + ENT_COLS, s.cols);
        wr_u64(e + ENT_OFFSET, lay->tensor[i]);
        wr_u64(e + ENT_BYTES, gpt2_tensor_bytes(&s, t));
    }
    for (uint32_t i = 0; i <= v->n_vocab; i++) wr_u32(f + lay->vocab + 4 * i, v->offsets[i]);
    memcpy(f + lay->vocab + ((uint64_t)v->n_vocab + 1) * 4, v->bytes, v->offsets[v->n_vocab]);
    for (uint64_t i = 0; i < (uint64_t)v->n_merges * 3; i++) wr_u32(f + lay->merges + 4 * i, v->merges[i]);
    gpt2_model_seal(f, n);
    return f;
}

/* Refuses tables the reader would refuse (model.c checks the format's
 * limits, gpt2_tokenizer_build the rest), so that a conversion never ends in a
 * file that cannot be opened. */
static bool check_tables(const ModelConfig *c, const TokenizerData *v, char *err, size_t errsz) {
    if (v->n_vocab != c->n_vocab || v->eot_id != c->eot_id || v->n_added != c->n_added) {
        snprintf(err, errsz,
                 "the vocabulary (%u tokens, <|endoftext|> %u, %u added) disagrees with the config (%u, %u, %u)",
                 v->n_vocab, v->eot_id, v->n_added, c->n_vocab, c->eot_id, c->n_added);
        return false;
    }
    if (v->offsets[0] != 0) {
        snprintf(err, errsz, "bad vocabulary: the first token does not start at 0");
        return false;
    }
    for (uint32_t i = 0; i < v->n_vocab; i++) {
        uint32_t len = v->offsets[i + 1] - v->offsets[i];
        if (v->offsets[i + 1] <= v->offsets[i] || len > MAX_TOKEN_BYTES) {
            snprintf(err, errsz, "bad vocabulary: token %u is empty, out of order or longer than %u bytes", i,
                     MAX_TOKEN_BYTES);
            return false;
        }
    }
    if (v->n_merges >= v->n_vocab) {
        snprintf(err, errsz, "bad vocabulary: %u merges for %u tokens", v->n_merges, v->n_vocab);
        return false;
    }
    for (uint64_t i = 0; i < (uint64_t)v->n_merges * 3; i++) {
        if (v->merges[i] >= v->n_vocab) {
            snprintf(err, errsz, "bad vocabulary: merge %llu names token %u, beyond the vocabulary",
                     (unsigned long long)(i / 3), v->merges[i]);
            return false;
        }
    }
    Tokenizer *tok;
    char why[256];
    if (!gpt2_tokenizer_build(&tok, v, why, sizeof why)) {
        snprintf(err, errsz, "bad vocabulary: %s", why);
        return false;
    }
    gpt2_tokenizer_free(tok);
    return true;
}

#define WRITE_BUFFER_BYTES ((size_t)2 << 20) /* the size of a huge page */

/* The output file and how many bytes went into it. */
typedef struct {
    FILE *f;
    uint64_t pos;
} Out;

/* Writes p[0..n) at offset at >= out->pos, zero-filling the gap. */
static bool write_at(Out *out, uint64_t at, const void *p, size_t n) {
    static const uint8_t zeros[MODEL_ALIGN];
    while (out->pos < at) {
        size_t k = at - out->pos < sizeof zeros ? (size_t)(at - out->pos) : sizeof zeros;
        if (fwrite(zeros, 1, k, out->f) != k) return false;
        out->pos += k;
    }
    if (n && fwrite(p, 1, n, out->f) != n) return false;
    out->pos += n;
    return true;
}

/* Asks the source for matrix s's q8_0 blocks and packs them as they are. */
static bool carry_q8_0(const TensorSource *src, Q8Blocks q8_0, const TensorSpec *s, void *packed, bool *given,
                       char *err, size_t errsz) {
    size_t n = (size_t)s->rows * s->cols;
    int8_t *quants = malloc(n);
    uint16_t *scales = malloc(n / Q8_BLOCK * sizeof *scales + 1);
    bool ok = quants && scales;
    if (!ok) snprintf(err, errsz, "out of memory for %s (%zu values)", s->name, n);
    if (ok) ok = q8_0(src->ctx, s, quants, scales, given, err, errsz);
    if (ok && *given) gpt2_panel_pack_q8_0(quants, scales, s->rows, s->cols, packed);
    free(quants);
    free(scales);
    return ok;
}

static bool write_tensors(Out *out, const ModelConfig *c, const Layout *lay, const TensorSource *src, Q8Blocks q8_0,
                          char *err, size_t errsz) {
    size_t count = gpt2_model_tensor_count(c);
    for (size_t i = 0; i < count; i++) {
        TensorSpec s;
        gpt2_model_tensor_spec(c, i, &s);
        DType t = gpt2_tensor_dtype(c, &s);
        size_t n = (size_t)s.rows * s.cols;
        size_t bytes = (size_t)gpt2_tensor_bytes(&s, t);
        float *w = malloc(n * sizeof *w);
        void *packed = s.is_matrix ? malloc(bytes) : w;
        bool ok = w && packed;
        if (!ok) snprintf(err, errsz, "out of memory for %s (%zu values)", s.name, n);
        bool given = false;
        if (ok && s.is_matrix && t == DTYPE_Q8_0 && q8_0) ok = carry_q8_0(src, q8_0, &s, packed, &given, err, errsz);
        if (ok && !given) ok = src->tensor(src->ctx, &s, w, err, errsz);
        if (ok && s.is_matrix && !given) gpt2_panel_pack(t, w, s.rows, s.cols, packed);
        if (ok && !write_at(out, lay->tensor[i], packed, bytes)) {
            snprintf(err, errsz, "write failed: %s", strerror(errno));
            ok = false;
        }
        if (packed != w) free(packed);
        free(w);
        if (!ok) return false;
        if (src->progress) src->progress(src->ctx, i + 1, count, &s);
    }
    return true;
}

char gpt2_model_writer_partial[4096];
volatile sig_atomic_t gpt2_model_writer_partial_live;

/* Creates path.partial.PID.N exclusively (O_EXCL: never a file that exists,
 * and never through a link), so that two writers of the same output never
 * share a file, and publishes its name for a signal handler.  Signals are
 * held while the file is created and named. */
static int create_partial(const char *path, char *tmp, size_t tmpsz) {
    static unsigned counter;
    sigset_t all, old;
    sigfillset(&all);
    for (int tries = 0; tries < 64; tries++) {
        snprintf(tmp, tmpsz, "%s" MODEL_PARTIAL_SUFFIX ".%ld.%u", path, (long)getpid(), counter++);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            memcpy(gpt2_model_writer_partial, tmp, tmpsz);
            gpt2_model_writer_partial_live = 1;
        }
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = e;
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

bool gpt2_model_write(const char *path, const ModelConfig *c, const TokenizerData *v, const TensorSource *src,
                      char *err, size_t errsz) {
    return gpt2_model_write_q8_0(path, c, v, src, NULL, err, errsz);
}

bool gpt2_model_write_q8_0(const char *path, const ModelConfig *c, const TokenizerData *v, const TensorSource *src,
                           Q8Blocks q8_0, char *err, size_t errsz) {
    char why[200];
    if (!gpt2_model_config_check(c, why, sizeof why)) {
        snprintf(err, errsz, "bad config: %s", why);
        return false;
    }
    if (!check_tables(c, v, err, errsz)) return false;
    char tmp[sizeof gpt2_model_writer_partial];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s" MODEL_PARTIAL_SUFFIX ".%ld.%u", path, (long)getpid(), 0u) >=
        sizeof tmp - 8) {
        snprintf(err, errsz, "the output path is too long");
        return false;
    }
    /* The rename would replace whatever is there: a device or a FIFO named
     * as the output (/dev/null, say) must not be. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "%s: exists and is not a regular file", path);
        return false;
    }
    Layout lay = {0};
    if (!plan_layout(c, v, &lay, err, errsz)) return false;
    uint8_t *front = build_front(c, v, &lay);
    FILE *f = NULL;
    if (front) {
        int fd = create_partial(path, tmp, sizeof tmp);
        f = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (fd >= 0 && !f) {
            int e = errno;
            close(fd);
            unlink(tmp);
            gpt2_model_writer_partial_live = 0;
            errno = e;
        }
    }
    /* Writes in whole 2 MiB blocks (glibc keeps large writes to multiples
     * of the buffer), so the page cache holds the new file in 2 MiB pages
     * that the loader can map as such (fileio.c): a model decoded right
     * after it is converted reads its weights at full speed.  Only speed
     * depends on it; without the memory, stdio's own buffer does. */
    char *wbuf = f ? malloc(WRITE_BUFFER_BYTES) : NULL;
    if (wbuf) (void)setvbuf(f, wbuf, _IOFBF, WRITE_BUFFER_BYTES);
    Out out = {f, 0};
    bool ok = f != NULL;
    if (!front) snprintf(err, errsz, "out of memory");
    else if (!f) snprintf(err, errsz, "%s: %s", tmp, strerror(errno));
    if (ok && !write_at(&out, 0, front, (size_t)lay.tensor[0])) {
        snprintf(err, errsz, "%s: write failed: %s", tmp, strerror(errno));
        ok = false;
    }
    if (ok) ok = write_tensors(&out, c, &lay, src, q8_0, err, errsz);
    if (ok && !write_at(&out, lay.file_bytes, NULL, 0)) { /* final padding */
        snprintf(err, errsz, "%s: write failed: %s", tmp, strerror(errno));
        ok = false;
    }
    /* On disk before the rename, or a crash could leave a short file
     * under the final name. */
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) {
        snprintf(err, errsz, "%s: write failed: %s", tmp, strerror(errno));
        ok = false;
    }
    if (f && fclose(f) != 0 && ok) {
        snprintf(err, errsz, "%s: write failed: %s", tmp, strerror(errno));
        ok = false;
    }
    if (ok && rename(tmp, path) != 0) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        ok = false;
    }
    if (!ok && f) remove(tmp);
    gpt2_model_writer_partial_live = 0;
    free(wbuf); /* after fclose, which flushes it */
    free(front);
    free(lay.tensor);
    return ok;
}
