/* test_threadpool.c - the thread pool hands out every item of a loop once.
 *
 * Each thread of a loop starts on a run of its own and then takes what is
 * left of the others' from their backs (threadpool.c).  Whatever the
 * threads, the grain and the number of items: every item runs exactly
 * once, in chunks that start at multiples of the grain; a thread that is
 * slow has its run taken by the others; loops of more items than a run
 * holds go in parts; and the runs' tags, 16 bits of each loop's
 * generation, never let a run of a loop 65,536 loops back pass for one of
 * the current loop.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "test_util.h"
#include "threadpool.h"

/* What a loop's chunks did: how often each item ran and by which thread,
 * and whether some chunk broke the rules.  Chunks run on several threads,
 * so nothing here calls cmocka; the test checks the record afterwards. */
typedef struct {
    size_t n, grain;
    atomic_int *runs;   /* [n]: times item i ran */
    atomic_int *thread; /* [n]: the thread that last ran item i */
    atomic_bool bad_chunk;
    int slow_thread; /* this thread sleeps in every chunk (-1: none) */
} Record;

static void record_chunk(void *ctx, size_t begin, size_t end, int thread) {
    Record *r = ctx;
    if (begin >= end || end > r->n || begin % r->grain != 0 || (end % r->grain != 0 && end != r->n))
        atomic_store(&r->bad_chunk, true);
    if (thread == r->slow_thread) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = begin; i < end && i < r->n; i++) {
        atomic_fetch_add(&r->runs[i], 1);
        atomic_store(&r->thread[i], thread);
    }
}

static void record_init(Record *r, size_t n, size_t grain) {
    r->n = n;
    r->grain = grain;
    r->runs = calloc(n, sizeof *r->runs);
    r->thread = calloc(n, sizeof *r->thread);
    assert_non_null(r->runs);
    assert_non_null(r->thread);
    atomic_init(&r->bad_chunk, false);
    r->slow_thread = -1;
}

static void record_free(Record *r) {
    free(r->runs);
    free(r->thread);
}

/* Runs one loop of n items and checks that each ran exactly once. */
static void check_loop(ThreadPool *pool, size_t n, size_t grain) {
    Record r;
    record_init(&r, n, grain);
    gpt2_threadpool_for(pool, n, grain, record_chunk, &r);
    if (atomic_load(&r.bad_chunk))
        fail_msg("%d threads, %zu items, grain %zu: a chunk out of bounds or not at a multiple of the grain",
                 gpt2_threadpool_size(pool), n, grain);
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&r.runs[i]) != 1)
            fail_msg("%d threads, %zu items, grain %zu: item %zu ran %d times", gpt2_threadpool_size(pool), n, grain, i,
                     atomic_load(&r.runs[i]));
    record_free(&r);
}

static void test_every_item_once(void **state) {
    (void)state;
    static const int threads[] = {1, 2, 3, 5, 8};
    static const size_t grains[] = {1, 3, 4, 16};
    static const size_t counts[] = {1, 2, 3, 7, 16, 17, 64, 100, 1000, 4099};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        ThreadPool *pool = gpt2_threadpool_create(threads[t]);
        assert_non_null(pool);
        for (int round = 0; round < 3; round++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
                for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) check_loop(pool, counts[c], grains[g]);
        gpt2_threadpool_free(pool);
    }
}

/* The second thread sleeps 20 ms in every chunk it takes: the caller,
 * done with its own run, takes the back of the sleeper's. */
static void test_slow_thread_run_is_taken(void **state) {
    (void)state;
    ThreadPool *pool = gpt2_threadpool_create(2);
    assert_non_null(pool);
    Record r;
    record_init(&r, 64, 1);
    r.slow_thread = 1;
    gpt2_threadpool_for(pool, 64, 1, record_chunk, &r);
    assert_false(atomic_load(&r.bad_chunk));
    int taken = 0;
    for (size_t i = 0; i < 64; i++) {
        assert_int_equal(atomic_load(&r.runs[i]), 1);
        if (i >= 48 && atomic_load(&r.thread[i]) == 0) taken++;
    }
    /* The sleeper's run is [32, 64), and its first chunk [32, 48). */
    if (taken == 0) fail_msg("the caller took nothing of the slow thread's run");
    record_free(&r);
    gpt2_threadpool_free(pool);
}

/* More items than a run holds (2^24 - 1): the loop goes in parts, and
 * the chunks still cover every item once, at multiples of the grain. */
typedef struct {
    pthread_mutex_t lock;
    size_t (*chunks)[2];
    size_t n_chunks, cap;
} ChunkList;

static void list_chunk(void *ctx, size_t begin, size_t end, int thread) {
    (void)thread;
    ChunkList *l = ctx;
    pthread_mutex_lock(&l->lock);
    if (l->n_chunks < l->cap) {
        l->chunks[l->n_chunks][0] = begin;
        l->chunks[l->n_chunks][1] = end;
    }
    l->n_chunks++;
    pthread_mutex_unlock(&l->lock);
}

static int by_begin(const void *a, const void *b) {
    const size_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

static void test_loop_larger_than_a_run(void **state) {
    (void)state;
    const size_t n = ((size_t)1 << 24) + 5, grain = (size_t)1 << 20;
    ChunkList l = {.cap = 256};
    pthread_mutex_init(&l.lock, NULL);
    l.chunks = calloc(l.cap, sizeof *l.chunks);
    assert_non_null(l.chunks);
    ThreadPool *pool = gpt2_threadpool_create(3);
    assert_non_null(pool);
    gpt2_threadpool_for(pool, n, grain, list_chunk, &l);
    gpt2_threadpool_free(pool);
    assert_true(l.n_chunks <= l.cap);
    qsort(l.chunks, l.n_chunks, sizeof *l.chunks, by_begin);
    size_t next = 0;
    for (size_t i = 0; i < l.n_chunks; i++) {
        assert_int_equal(l.chunks[i][0], next);
        assert_int_equal(l.chunks[i][0] % grain, 0);
        assert_true(l.chunks[i][1] > l.chunks[i][0]);
        next = l.chunks[i][1];
    }
    assert_int_equal(next, n);
    free(l.chunks);
    pthread_mutex_destroy(&l.lock);
}

/* A loop whose items give threads 0 and 2 of 4 empty runs leaves their
 * runs' words as the loop before wrote them.  After 65,535 such loops
 * the tag comes round to that loop's again: the words must not pass for
 * the current loop's (they would say their runs are empty, and those
 * items would never run). */
static void test_runs_across_tag_wraparound(void **state) {
    (void)state;
    ThreadPool *pool = gpt2_threadpool_create(4);
    assert_non_null(pool);
    check_loop(pool, 1000, 1);
    Record small;
    record_init(&small, 2, 1);
    for (long i = 0; i < 65535; i++) gpt2_threadpool_for(pool, 2, 1, record_chunk, &small);
    for (size_t i = 0; i < 2; i++) assert_int_equal(atomic_load(&small.runs[i]), 65535);
    record_free(&small);
    check_loop(pool, 1000, 1);
    check_loop(pool, 1000, 1);
    gpt2_threadpool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_item_once),
        cmocka_unit_test(test_slow_thread_run_is_taken),
        cmocka_unit_test(test_loop_larger_than_a_run),
        cmocka_unit_test(test_runs_across_tag_wraparound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
