/* gguf.h - reading GPT-2 models from llama.cpp's GGUF files.
 *
 * Owns the GGUF container (version 2 and 3, little-endian): the header, the
 * key-value metadata, the tensor directory and the aligned data section,
 * and the mapping of a model of architecture "gpt2" onto Hugging Face's
 * names and shapes, so that the converter treats it like any checkpoint:
 *   token_embd -> wte, position_embd -> wpe, output_norm -> ln_f,
 *   blk.N.attn_norm -> h.N.ln_1, attn_qkv -> attn.c_attn,
 *   attn_output -> attn.c_proj, ffn_norm -> ln_2, ffn_up -> mlp.c_fc,
 *   ffn_down -> mlp.c_proj.
 * GGUF stores a matrix [out][in] (ne0 = in); a Conv1D weight is presented
 * as Hugging Face's [in][out] by its strides, without copying.  Tensors may
 * be F32, F16, BF16 or Q8_0; any other type is refused by name.  The tied
 * head llama.cpp stores again as output.weight must equal token_embd.weight
 * byte for byte (in its own type), or the file is refused.
 *
 * The hyperparameters come from gpt2.* keys, the tokenizer from
 * tokenizer.ggml.tokens (byte-level strings as in vocab.json) and
 * tokenizer.ggml.merges ("a b" strings as in merges.txt), which are handed
 * to the strict readers of hf_vocab.h.
 */
#ifndef GPT2_GGUF_H
#define GPT2_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "hf_vocab.h"
#include "model_format.h"

bool gpt2_gguf_is_gguf(const uint8_t *b, size_t n);

/* Reads the GGUF file b[0..n) (which must outlive ck): its tensors into ck
 * under Hugging Face's names, its hyperparameters into c (n_vocab, n_ctx,
 * n_embd, n_layer, n_head, ln_eps), and, when vocab is not NULL, its
 * tokenizer into vocab. */
bool gpt2_gguf_parse(Checkpoint *ck, ModelConfig *c, HfVocab *vocab, const uint8_t *b, size_t n, char *err,
                     size_t errsz);

/* The same for the file at path, which ck keeps mapped. */
bool gpt2_gguf_open(Checkpoint *ck, ModelConfig *c, HfVocab *vocab, const char *path, char *err, size_t errsz);

#endif
