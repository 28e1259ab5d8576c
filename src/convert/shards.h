/* shards.h - checkpoints in one or several safetensors or torch files.
 *
 * Owns filling a Checkpoint from a safetensors file, and from the index
 * that transformers' save_pretrained writes beside the shards of a large
 * checkpoint (model.safetensors.index.json, pytorch_model.bin.index.json):
 * {"metadata": {...}, "weight_map": {tensor name: shard file name}}.  The
 * shards must be plain file names in the index's folder, without control
 * characters (they go into messages); every tensor the index lists must be
 * in its shard, and the shards hold nothing else.
 */
#ifndef GPT2_SHARDS_H
#define GPT2_SHARDS_H

#include <stdbool.h>
#include <stddef.h>

#include "checkpoint.h"

/* Adds every tensor of the safetensors file at path. */
bool gpt2_shards_add_safetensors(Checkpoint *ck, const char *path, char *err, size_t errsz);

/* Adds every tensor of the shards that the index at index_path names;
 * torch tells whether they are torch.save files or safetensors. */
bool gpt2_shards_add_index(Checkpoint *ck, const char *index_path, bool torch, char *err, size_t errsz);

/* The same for the index's text, already in memory: the shards are still
 * read from index_path's folder, and index_path names the index in
 * messages. */
bool gpt2_shards_add_index_text(Checkpoint *ck, const char *text, size_t len, const char *index_path, bool torch,
                                char *err, size_t errsz);

#endif
