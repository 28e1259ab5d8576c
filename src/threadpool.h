/* threadpool.h - a small pool of persistent worker threads.
 *
 * Owns the threads that run the kernels.  The forward pass hands the pool
 * one function at a time; every thread (the caller included, as thread 0)
 * runs it with its own index and the call returns when all have finished.
 * Workers spin briefly between jobs, because a token's forward pass hands
 * out hundreds of short jobs, and sleep when idle.
 *
 * Which thread does which part of a job is the job's own business; the
 * kernels are written so that the split never changes a result.
 */
#ifndef GPT2_THREADPOOL_H
#define GPT2_THREADPOOL_H

typedef struct ThreadPool ThreadPool;

typedef void (*PoolJob)(void *ctx, int thread, int n_threads);

/* A pool of n_threads threads in all (the caller plus n_threads - 1
 * workers).  NULL when threads cannot be created. */
ThreadPool *threadpool_create(int n_threads);
void threadpool_free(ThreadPool *pool);
int threadpool_size(const ThreadPool *pool);

/* Runs job(ctx, i, n) for every i in [0, n) at once and waits for all. */
void threadpool_run(ThreadPool *pool, PoolJob job, void *ctx);

/* The number of CPUs this process may use (at least 1). */
int cpu_count(void);

#endif
