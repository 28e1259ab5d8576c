/* convert.h - making model files: from a Hugging Face folder, or at random.
 *
 * Owns the mapping from the Hugging Face GPT-2 distribution (config.json,
 * model.safetensors, vocab.json, merges.txt) to our model file: which
 * config keys give which hyperparameter, which tensor names map to which
 * weights (with or without the "transformer." prefix; the attention mask
 * buffers and a tied lm_head.weight are ignored), and the transposition of
 * the Conv1D weights, which Hugging Face stores [in][out].
 *
 * It also writes models with random weights of any shape, which the
 * benchmark and the tests use when no real checkpoint is at hand.
 */
#ifndef GPT2_CONVERT_H
#define GPT2_CONVERT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model_format.h"

typedef struct {
    const char *source;        /* a Hugging Face folder, or a checkpoint file */
    const char *tokenizer_dir; /* vocab.json and merges.txt; NULL: the folder of source */
    const char *out_path;
    DType dtype;    /* of the weight matrices */
    FILE *progress; /* where to report progress, or NULL */
} ConvertOptions;

bool gpt2_convert_hf(const ConvertOptions *o, char *err, size_t errsz);

/* Reads a Hugging Face GPT-2 config.json into c (dtype and eot_id are left
 * as they were).  Refuses configurations this engine does not compute,
 * such as another activation function. */
bool gpt2_hf_config_read(const char *path, ModelConfig *c, char *err, size_t errsz);
/* The same from text already in memory; name is used in messages.  On
 * failure c is left as it was. */
bool gpt2_hf_config_parse(const char *text, size_t len, const char *name, ModelConfig *c, char *err, size_t errsz);

/* The shape of a published GPT-2 by name ("124M", "355M", "774M", "1558M",
 * "distil"), or "LAYERSxHEADSxEMBD[xCTX]" such as "2x2x16x160". */
bool gpt2_model_shape_from_name(const char *name, ModelConfig *c);

/* Writes a model of shape c (its dtype included) with random weights drawn
 * from seed.  The tokenizer comes from tokenizer_dir's vocab.json and
 * merges.txt, or, when that is NULL, is a synthetic byte-pair vocabulary
 * of c->n_vocab tokens. */
bool gpt2_convert_random(const ModelConfig *c, uint64_t seed, const char *tokenizer_dir, const char *out_path,
                         FILE *progress, char *err, size_t errsz);

#endif
