/* prefault.c - see prefault.h. */
#include "prefault.h"

#include "fileio.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* A page, and the stretch of bytes between two looks at the stop flag. */
#define PAGE_BYTES 4096
#define STEP_BYTES ((size_t)1 << 21)

typedef struct {
    const uint8_t *p;
    size_t n;
} Range;

struct Prefault {
    pthread_t thread;
    atomic_bool stop;
    Transformer *t;
    Range *ranges; /* the model's, in the order to map them */
    size_t n_ranges;
    bool populate; /* MADV_POPULATE_READ works here */
};

/* Maps [p, p + n) for reading, then reads a byte of every 4 KiB page of
 * it.  The kernel maps a stretch in one call where it has
 * MADV_POPULATE_READ (Linux 5.14); the reads do it otherwise.  They also
 * pay what a virtual machine's hypervisor charges for a page's first
 * access from a new address space (on the virtual machines this was
 * measured on, 85 ns per 4 KiB page, 12 ms for a 124M f32 model, a first
 * pass 2 to 4 times slower); where nothing is charged, they cost 2 ms for
 * the same model. */
static void map_stretch(Prefault *pf, const uint8_t *p, size_t n) {
#ifdef MADV_POPULATE_READ
    if (pf->populate) {
        const uintptr_t begin = (uintptr_t)p / PAGE_BYTES * PAGE_BYTES;
        if (madvise((void *)begin, (uintptr_t)p + n - begin, MADV_POPULATE_READ) != 0 &&
            (errno == EINVAL || errno == ENOSYS))
            pf->populate = false; /* an older kernel: the reads map the pages */
    }
#endif
    gpt2_fileio_touch(p, n);
}

/* Maps r, STEP_BYTES at a time; false once asked to stop. */
static bool map_range(Prefault *pf, Range r) {
    for (size_t off = 0; off < r.n; off += STEP_BYTES) {
        if (atomic_load_explicit(&pf->stop, memory_order_relaxed)) return false;
        map_stretch(pf, r.p + off, r.n - off < STEP_BYTES ? r.n - off : STEP_BYTES);
    }
    return true;
}

static void *prefault_main(void *arg) {
    Prefault *pf = arg;
    gpt2_transformer_populate_first(pf->t, &pf->stop);
    for (size_t i = 0; i < pf->n_ranges; i++)
        if (!map_range(pf, pf->ranges[i])) break;
    return NULL;
}

static Range matrix_range(const Matrix *w) {
    Range r = {w->data, (size_t)gpt2_panel_matrix_bytes(w->dtype, w->rows, w->cols)};
    return r;
}

Prefault *gpt2_prefault_start(Transformer *t) {
    const Model *m = t->model;
    Prefault *pf = calloc(1, sizeof *pf);
    const size_t n_layer = m->config.n_layer;
    const size_t n_ranges = 4 * n_layer + 2;
    if (!pf || !(pf->ranges = malloc(n_ranges * sizeof *pf->ranges))) {
        free(pf);
        return NULL;
    }
    pf->t = t;
    pf->populate = true;
    if (m->mapped && m->n_bytes > 0) {
        const TransformerWeights *w = &m->weights;
        for (size_t l = 0; l < n_layer; l++) {
            const LayerWeights *lw = &w->layers[l];
            pf->ranges[pf->n_ranges++] = matrix_range(&lw->qkv);
            pf->ranges[pf->n_ranges++] = matrix_range(&lw->proj);
            pf->ranges[pf->n_ranges++] = matrix_range(&lw->fc);
            pf->ranges[pf->n_ranges++] = matrix_range(&lw->mlp);
        }
        pf->ranges[pf->n_ranges++] = matrix_range(&w->wte);
        pf->ranges[pf->n_ranges++] = (Range){m->bytes, m->n_bytes}; /* the rest: vectors, tables */
    }
    atomic_init(&pf->stop, false);
    if (pthread_create(&pf->thread, NULL, prefault_main, pf) != 0) {
        free(pf->ranges);
        free(pf);
        return NULL;
    }
    return pf;
}

void gpt2_prefault_stop(Prefault *pf) {
    if (!pf) return;
    atomic_store(&pf->stop, true);
    pthread_join(pf->thread, NULL);
    free(pf->ranges);
    free(pf);
}
