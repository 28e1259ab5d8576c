/* prefault.h - mapping a model's pages, and a first pass's, in the background.
 *
 * Owns the thread that, right after a model is opened, brings in the pages
 * its first forward pass would otherwise fault in one by one: first the
 * fresh scratch and key/value pages that pass writes
 * (gpt2_transformer_populate_first), then the weights, mapped read-only in
 * the order a forward pass reads them (the layers' matrices first to last,
 * then the embedding, which is the output head), then the rest of the file.
 * Pages already in the page cache cost only their page-table entries: the
 * kernel maps them in one call per 2 MiB stretch (MADV_POPULATE_READ), and
 * the thread then reads one byte per 4 KiB page, which is what a virtual
 * machine's hypervisor charges for (prefault.c).  Paid inside the first
 * pass, these costs made the first token cost three or more decoding
 * steps; here they overlap with building the tokenizer, which the caller
 * does next, and with the first pass.  Opening a model blocks on nothing
 * that grows with its size, and no result depends on this thread.
 */
#ifndef GPT2_PREFAULT_H
#define GPT2_PREFAULT_H

#include "transformer.h"

typedef struct Prefault Prefault;

/* Starts bringing in t's first pages and its model's weights, in a thread
 * of its own.  NULL when no thread could be started; the model then works
 * the same, only its first pass pays the faults. */
Prefault *gpt2_prefault_start(Transformer *t);

/* Stops the thread (if it is still running) and frees p; NULL is fine.
 * Call before t or its model is freed. */
void gpt2_prefault_stop(Prefault *p);

#endif
