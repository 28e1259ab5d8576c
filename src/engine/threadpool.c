/* threadpool.c - see threadpool.h.
 *
 * A loop is published by bumping `generation`.  Workers watch it, spinning
 * for a while, then yielding, then sleeping on a condition variable; the
 * publisher only takes the mutex when someone sleeps.  Both sides use
 * sequentially consistent atomics, so either the worker sees the new
 * generation before it sleeps or the publisher sees the sleeper and wakes
 * it.
 *
 * Sharing.  A loop's items are dealt out in equal runs, one per thread.
 * A thread takes chunks from the front of its own run, so that it walks
 * its part of a matrix as one stream that the prefetchers follow, and
 * when its run is empty it takes half of what is left of another's, from
 * the back.  A thread that never comes (asleep, or descheduled by a busy
 * machine) has its run taken by the others.  Each run is one 64-bit word
 * on a cache line of its own, changed by compare-and-swap: the loop's tag
 * (the low 16 bits of its generation), front and back.  A word that
 * carries an older tag stands for the run as dealt, which every thread
 * can work out from the loop (deal_edge): so publishing a loop writes no
 * thread's word, and a thread's first claim finds its word in its own
 * cache.  Once every 65,536 generations the publisher writes every word
 * afresh, so that an old tag can never pass for the current one.
 *
 * Joining.  `ticket` holds the generation of the loop being run, a CLOSED
 * bit and the number of workers inside it.  A worker enters with a
 * compare-and-swap that fails once the caller has closed the loop (or a
 * newer one has started); the caller closes it when every run is empty
 * and then waits only for the workers inside.  So the loop's context, on
 * the caller's stack, is never read after gpt2_threadpool_for returns, and a
 * worker that was asleep or descheduled costs the caller nothing.
 */
#include "threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define SPIN_ROUNDS 20000 /* polls before yielding: some 300 us */
#define YIELD_ROUNDS 100  /* sched_yield polls before sleeping */

#define TICKET_CLOSED ((uint64_t)1 << 31)
#define TICKET_COUNT ((uint64_t)TICKET_CLOSED - 1)
#define RUN_BITS 24
#define RUN_MAX (((size_t)1 << RUN_BITS) - 1) /* most items of one loop; more go in parts */
#define TAG_SHIFT (2 * RUN_BITS)
#define TAG_MASK 0xffffu

/* One thread's run of a loop's items, [front, back), with the loop's tag:
 * tag << 48 | front << 24 | back.  Alone on its cache line. */
typedef struct {
    _Alignas(64) _Atomic uint64_t word;
} Run;

struct ThreadPool {
    int n_threads;
    pthread_t *workers; /* [n_threads - 1] */
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint generation; /* bumped once per loop */
    atomic_int sleepers;    /* workers waiting on `wake` */
    atomic_bool stop;
    _Atomic uint64_t ticket; /* generation << 32 | CLOSED | workers inside */
    atomic_int joined;       /* workers that entered this loop */
    Run *runs;               /* [n_threads]: each thread's run of the loop's items */
    unsigned tag;            /* the loop's tag: its generation & TAG_MASK */
    unsigned epoch;          /* generation >> 16 when every run was last written */
    /* The loop, written before it is published. */
    size_t n, grain;
    PoolTask task; /* NULL: run `job` once per thread */
    PoolJob job;
    void *ctx;
};

typedef struct {
    ThreadPool *pool;
    int index;
} WorkerArg;

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until `generation` differs from seen and returns it. */
static unsigned wait_for_generation(ThreadPool *p, unsigned seen) {
    unsigned g;
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if ((g = atomic_load(&p->generation)) != seen) return g;
        cpu_relax();
    }
    /* The machine may be busy: let whatever waits for this CPU run. */
    for (int i = 0; i < YIELD_ROUNDS; i++) {
        if ((g = atomic_load(&p->generation)) != seen) return g;
        sched_yield();
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

/* Enters loop `gen` unless it is closed or over. */
static bool join(ThreadPool *p, unsigned gen) {
    uint64_t t = atomic_load(&p->ticket);
    do {
        if ((unsigned)(t >> 32) != gen || (t & TICKET_CLOSED)) return false;
    } while (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1));
    atomic_fetch_add(&p->joined, 1);
    return true;
}

static void leave(ThreadPool *p) {
    uint64_t t = atomic_fetch_sub(&p->ticket, 1);
    if ((t & TICKET_COUNT) == 1 && (t & TICKET_CLOSED)) { /* the caller may be asleep */
        pthread_mutex_lock(&p->mutex);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mutex);
    }
}

static uint64_t pack_run(unsigned tag, size_t front, size_t back) {
    return (uint64_t)tag << TAG_SHIFT | (uint64_t)front << RUN_BITS | (uint64_t)back;
}

/* Where the loop deals thread i's run to start (and thread i - 1's to
 * end): an equal share of the grains, so at a multiple of the grain. */
static size_t deal_edge(const ThreadPool *p, size_t i) {
    if (i >= (size_t)p->n_threads) return p->n;
    const uint64_t grains = (p->n + p->grain - 1) / p->grain; /* <= RUN_MAX */
    const size_t edge = (size_t)(grains * i / (uint64_t)p->n_threads) * p->grain;
    return edge < p->n ? edge : p->n;
}

/* Thread i's run in the current loop, from its word. */
static void read_run(const ThreadPool *p, size_t i, uint64_t word, size_t *front, size_t *back) {
    if ((unsigned)(word >> TAG_SHIFT) == p->tag) {
        *front = (size_t)(word >> RUN_BITS & RUN_MAX);
        *back = (size_t)(word & RUN_MAX);
    } else {
        *front = deal_edge(p, i);
        *back = deal_edge(p, i + 1);
    }
}

/* Takes a chunk of thread `owner`'s run: the owner takes from its front
 * (half of what is left, rounded up to the grain, so its chunks shrink
 * towards the end of the run and follow one another), another thread
 * from its back (about half, from a multiple of the grain: every run's
 * front is one). */
static bool claim(ThreadPool *p, int owner, bool from_back, size_t *begin, size_t *end) {
    _Atomic uint64_t *word = &p->runs[owner].word;
    uint64_t w = atomic_load(word);
    for (;;) {
        size_t front, back;
        read_run(p, (size_t)owner, w, &front, &back);
        if (front >= back) return false;
        const size_t half = (back - front + 1) / 2;
        size_t cut;
        if (from_back) {
            cut = (back - half) / p->grain * p->grain;
            if (cut < front) cut = front;
        } else {
            const size_t size = (half + p->grain - 1) / p->grain * p->grain;
            cut = back - front < size ? back : front + size;
        }
        const uint64_t rest = from_back ? pack_run(p->tag, front, cut) : pack_run(p->tag, cut, back);
        if (atomic_compare_exchange_weak(word, &w, rest)) {
            *begin = from_back ? cut : front;
            *end = from_back ? back : cut;
            return true;
        }
    }
}

/* Thread `index` runs its own run, then empties the others' in turn.
 * Runs only shrink, so when it is done every run is empty. */
static void work(ThreadPool *p, int index) {
    if (!p->task) {
        p->job(p->ctx, index, p->n_threads);
        return;
    }
    size_t begin, end;
    while (claim(p, index, false, &begin, &end)) p->task(p->ctx, begin, end, index);
    for (int k = 1; k < p->n_threads; k++) {
        int victim = (index + k) % p->n_threads;
        while (claim(p, victim, true, &begin, &end)) p->task(p->ctx, begin, end, index);
    }
}

static void *worker_main(void *arg) {
    WorkerArg *w = arg;
    ThreadPool *p = w->pool;
    int index = w->index;
    free(w);
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_generation(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        if (!join(p, seen)) continue;
        work(p, index);
        leave(p);
    }
}

static void publish(ThreadPool *p) {
    unsigned gen = atomic_load(&p->generation) + 1;
    atomic_store(&p->joined, 0);
    atomic_store(&p->ticket, (uint64_t)gen << 32);
    atomic_store(&p->generation, gen);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
}

/* Closes the current loop and waits for the workers inside it. */
static void close_and_wait(ThreadPool *p) {
    atomic_fetch_or(&p->ticket, TICKET_CLOSED);
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if ((atomic_load(&p->ticket) & TICKET_COUNT) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mutex);
    while ((atomic_load(&p->ticket) & TICKET_COUNT) != 0) pthread_cond_wait(&p->done, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}

ThreadPool *gpt2_threadpool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    ThreadPool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    p->runs = aligned_alloc(_Alignof(Run), (size_t)n_threads * sizeof *p->runs);
    if (!p->workers || !p->runs) {
        free(p->workers);
        free(p->runs);
        free(p);
        return NULL;
    }
    for (int i = 0; i < n_threads; i++) atomic_init(&p->runs[i].word, 0);
    p->epoch = UINT_MAX; /* no generation's: the first loop writes every run */
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n_threads; i++) {
        WorkerArg *arg = malloc(sizeof *arg);
        if (arg) *arg = (WorkerArg){p, i};
        if (!arg || pthread_create(&p->workers[i - 1], NULL, worker_main, arg) != 0) {
            free(arg);
            p->n_threads = i; /* stop the ones already started */
            gpt2_threadpool_free(p);
            return NULL;
        }
    }
    return p;
}

void gpt2_threadpool_free(ThreadPool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    publish(p);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p->runs);
    free(p);
}

int gpt2_threadpool_size(const ThreadPool *p) { return p->n_threads; }

/* A loop of more items than a run can hold, in parts that can: each
 * part's items are passed on shifted by its start. */
typedef struct {
    PoolTask task;
    void *ctx;
    size_t offset;
} Part;

static void run_part(void *ctx, size_t begin, size_t end, int thread) {
    Part *part = ctx;
    part->task(part->ctx, part->offset + begin, part->offset + end, thread);
}

void gpt2_threadpool_for(ThreadPool *p, size_t n, size_t grain, PoolTask task, void *ctx) {
    if (grain == 0) grain = 1;
    if (n == 0) return;
    if (p->n_threads == 1 || n <= grain) {
        task(ctx, 0, n, 0);
        return;
    }
    if (n > RUN_MAX) {
        const size_t part_max = grain < RUN_MAX ? RUN_MAX / grain * grain : grain;
        for (size_t offset = 0; offset < n;) {
            const size_t len = n - offset < part_max ? n - offset : part_max;
            Part part = {task, ctx, offset};
            gpt2_threadpool_for(p, len, grain, run_part, &part);
            offset += len;
        }
        return;
    }
    p->n = n;
    p->grain = grain;
    p->task = task;
    p->job = NULL;
    p->ctx = ctx;
    const unsigned gen = atomic_load(&p->generation) + 1; /* publish's */
    p->tag = gen & TAG_MASK;
    if (gen >> 16 != p->epoch) { /* tags start again: no word may keep an old one */
        p->epoch = gen >> 16;
        for (int i = 0; i < p->n_threads; i++)
            atomic_store(&p->runs[i].word, pack_run(p->tag, deal_edge(p, (size_t)i), deal_edge(p, (size_t)i + 1)));
    }
    publish(p);
    work(p, 0);
    close_and_wait(p);
}

void gpt2_threadpool_run(ThreadPool *p, PoolJob job, void *ctx) {
    if (p->n_threads == 1) {
        job(ctx, 0, 1);
        return;
    }
    p->task = NULL;
    p->job = job;
    p->ctx = ctx;
    publish(p);
    job(ctx, 0, p->n_threads);
    /* Every worker must take part: keep the loop open until all are in. */
    while (atomic_load(&p->joined) < p->n_threads - 1) sched_yield();
    close_and_wait(p);
}
