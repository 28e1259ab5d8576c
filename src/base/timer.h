/* timer.h - the one clock the program reads for its timings.
 *
 * Monotonic, so that a clock change during a run never makes a timing
 * negative.  Timings are reported, never used to decide anything.
 */
#ifndef GPT2_TIMER_H
#define GPT2_TIMER_H

#include <time.h>

/* Monotonic time in milliseconds. */
static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
