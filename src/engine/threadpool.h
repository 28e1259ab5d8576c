/* threadpool.h - a small pool of persistent worker threads.
 *
 * Owns the threads that run the kernels.  The forward pass hands the pool
 * one loop at a time: a range of items that the threads (the caller
 * included, as thread 0) claim chunk by chunk until none is left.  Each
 * thread starts on a run of its own, an equal share of the items, and
 * walks it from the front, so that it reads its part of a matrix as one
 * stream; then it takes from the backs of the others' runs.  A decode
 * step hands out hundreds of such loops, each a few microseconds long, so:
 *
 *  - workers spin briefly between loops and sleep only when idle;
 *  - the caller never waits for a worker to start: it works through its
 *    own run and then the late worker's, and a worker that wakes late
 *    finds nothing left and stays out (on a busy machine a worker may not
 *    run for milliseconds);
 *  - a loop of one chunk runs on the caller alone, with no hand-over.
 *
 * Which thread does which chunk changes from run to run.  The kernels are
 * written so that it never changes a result (see kernels.h).
 */
#ifndef GPT2_THREADPOOL_H
#define GPT2_THREADPOOL_H

#include <stddef.h>

typedef struct ThreadPool ThreadPool;

/* Items [begin, end) of a loop, run by thread `thread` (0 .. size-1; per
 * thread scratch can be indexed by it). */
typedef void (*PoolTask)(void *ctx, size_t begin, size_t end, int thread);

/* One call per thread: job(ctx, i, n) for every i in [0, n). */
typedef void (*PoolJob)(void *ctx, int thread, int n_threads);

/* A pool of n_threads threads in all (the caller plus n_threads - 1
 * workers).  NULL when threads cannot be created. */
ThreadPool *gpt2_threadpool_create(int n_threads);
void gpt2_threadpool_free(ThreadPool *pool);
int gpt2_threadpool_size(const ThreadPool *pool);

/* Runs task over the items [0, n) and returns when all are done, each
 * item exactly once.  Chunks start at multiples of `grain` and are
 * multiples of it, but for one that ends at n; a thread's chunks halve
 * as its run empties, so that the threads finish together. */
void gpt2_threadpool_for(ThreadPool *pool, size_t n, size_t grain, PoolTask task, void *ctx);

/* Runs job on every thread of the pool at once, each exactly once, and
 * waits for all: for measurements that need every thread busy. */
void gpt2_threadpool_run(ThreadPool *pool, PoolJob job, void *ctx);

#endif
