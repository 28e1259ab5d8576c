/* prefault.c - see prefault.h. */
#include "prefault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

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
    Range *ranges; /* in the order to touch them */
    size_t n_ranges;
};

/* Reads one byte of every page of r; false once asked to stop. */
static bool touch(Prefault *pf, Range r) {
    volatile uint8_t sink = 0;
    for (size_t off = 0; off < r.n; off += STEP_BYTES) {
        if (atomic_load_explicit(&pf->stop, memory_order_relaxed)) return false;
        const size_t end = r.n - off < STEP_BYTES ? r.n : off + STEP_BYTES;
        for (size_t i = off; i < end; i += PAGE_BYTES) sink ^= r.p[i];
    }
    (void)sink;
    return true;
}

static void *prefault_main(void *arg) {
    Prefault *pf = arg;
    for (size_t i = 0; i < pf->n_ranges; i++)
        if (!touch(pf, pf->ranges[i])) break;
    return NULL;
}

static Range matrix_range(const Matrix *w) {
    Range r = {w->data, (size_t)gpt2_panel_matrix_bytes(w->dtype, w->rows, w->cols)};
    return r;
}

Prefault *gpt2_prefault_start(const Model *m) {
    if (!m->mapped || m->n_bytes == 0) return NULL;
    Prefault *pf = calloc(1, sizeof *pf);
    const size_t n_layer = m->config.n_layer;
    const size_t n_ranges = 4 * n_layer + 2;
    if (!pf || !(pf->ranges = malloc(n_ranges * sizeof *pf->ranges))) {
        free(pf);
        return NULL;
    }
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
