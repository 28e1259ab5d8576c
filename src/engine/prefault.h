/* prefault.h - mapping a model's pages in the background.
 *
 * Owns the thread that touches the weights of a freshly mapped model file,
 * one byte per page, in the order a forward pass reads them: the layers'
 * matrices first to last, then the embedding (the output head), then the
 * whole file.  A model in the page cache still costs a page fault per
 * 4 KiB the first time a page is read; paid one by one inside the first
 * forward pass they made the first token cost several decoding steps.
 * Touched from this thread they overlap with everything before and during
 * that pass, and opening a model blocks on nothing that grows with its
 * size.  Reading is all it does: no result depends on it.
 */
#ifndef GPT2_PREFAULT_H
#define GPT2_PREFAULT_H

#include <stddef.h>

#include "model.h"

typedef struct Prefault Prefault;

/* Starts touching m's pages in a thread of its own.  NULL when there is
 * nothing to do (a model not mapped from a file) or no thread could be
 * started; either way the model works the same, only its first pass pays
 * the faults. */
Prefault *gpt2_prefault_start(const Model *m);

/* Stops the thread (if it is still running) and frees p; NULL is fine.
 * Call before the model is closed. */
void gpt2_prefault_stop(Prefault *p);

#endif
