/* torch_checkpoint.h - reading the state dicts torch.save writes.
 *
 * Owns the two file formats of torch.save, mapped and read in place:
 *   the zip archive (torch 1.6 and later): one top-level folder of any name
 *     holding data.pkl (the pickled state dict), data/KEY (each storage's
 *     bytes, stored uncompressed) and a few small files; past 4 GiB the
 *     archive has zip64 records;
 *   the legacy format: a magic number, the protocol version and system
 *     information as three pickles, then the pickled state dict, the list of
 *     storage keys, and each storage as an 8-byte element count and its
 *     bytes, in the order of that list.
 * The pickle is read by the restricted reader of pickle.h; each tensor
 * becomes a view (offset, shape, strides) into its storage's bytes, checked
 * to lie inside them.  Several tensors may share one storage.
 */
#ifndef GPT2_TORCH_CHECKPOINT_H
#define GPT2_TORCH_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"

/* Whether b[0..n) starts like a file torch.save wrote (zip or legacy). */
bool gpt2_torch_is_torch(const uint8_t *b, size_t n);

/* Adds every tensor of the torch.save file at path to ck. */
bool gpt2_torch_checkpoint_add(Checkpoint *ck, const char *path, char *err, size_t errsz);

/* The same for a file already in memory (which must outlive ck); name is
 * used in messages. */
bool gpt2_torch_checkpoint_parse(Checkpoint *ck, const uint8_t *b, size_t n, const char *name, char *err, size_t errsz);

#endif
