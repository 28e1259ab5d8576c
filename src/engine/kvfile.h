/* kvfile.h - the prompt cache file: a prompt's keys and values on disk.
 *
 * Owns the file format and the identity of the model a cache belongs to.
 * A cache holds the token ids of a prompt and the keys and values its
 * evaluation left in a sequence, exactly as computed (f32), so that a run
 * loading them goes on bit for bit as if it had evaluated the prompt.
 *
 * Layout, little-endian:
 *   0   char[8]  "GPT2KVC\0"
 *   8   u32      version (KVFILE_VERSION; another version is refused)
 *   12  u32      header bytes (64)
 *   16  u64      size of the model file
 *   24  u64      identity of the model file (gpt2_kvfile_model_id)
 *   32  u32 x 4  n_layer, n_head, n_embd, n_ctx
 *   48  u32      n: tokens held
 *   52  12 bytes zero
 *   64  i32[n]   the token ids, position 0 first
 *   then for each layer, each head: keys [n][head_dim] f32, values
 *        [n][head_dim] f32
 *   last u64     checksum of every byte before it
 * That is 2 x n_layer x n_embd x 4 bytes a token: 72 KiB for GPT-2 124M,
 * about 75 MB per 1024 tokens.
 *
 * The model's identity is cheap and does not depend on the weights' size:
 * a 64-bit hash of the file's 128-byte header (which holds the CRC-32s of
 * the directory, vocabulary and merges), its tensor directory, and the
 * first and last 4 KiB of every tensor; with the file size beside it.  A
 * different conversion, another model of the same shapes or a fine-tune
 * differs there; reading it touches about 1 MiB.
 *
 * A cache is written to PATH.tmp.PID and renamed over PATH, so a reader
 * never sees half a file.  A damaged, truncated or foreign file is refused
 * with a one-line reason, never half loaded.
 */
#ifndef GPT2_KVFILE_H
#define GPT2_KVFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "transformer.h"

#define KVFILE_VERSION 1

/* The identity of the model file m (see above). */
uint64_t gpt2_kvfile_model_id(const Model *m);

/* Reads the cache at path into sequence seq: the keys and values of the
 * longest common prefix of its tokens and ids[0..n), *n_loaded of them;
 * *n_cached gets how many the file holds.  False, with seq holding nothing
 * and the reason in err, when the file is missing, damaged, truncated, of
 * another version, or made with another model. */
bool gpt2_kvfile_read(Transformer *t, size_t seq, const char *path, const int32_t *ids, size_t n, size_t *n_loaded,
                      size_t *n_cached, char *err, size_t errsz);

/* Writes the first n positions of sequence seq, which must hold ids[0..n),
 * to path atomically. */
bool gpt2_kvfile_write(Transformer *t, size_t seq, const int32_t *ids, size_t n, const char *path, char *err,
                       size_t errsz);

#endif
