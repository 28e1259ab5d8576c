/* model_writer.h - writing a model file.
 *
 * Owns producing files in the format of model_format.h: laying out the
 * sections, packing every matrix into panels in the requested dtype
 * (quantizing to q8_0 if asked), and writing atomically (a temporary file
 * renamed into place, so a failed conversion never leaves a half file
 * behind).  The weights come from a callback, one tensor at a time, so a
 * converter never holds more than one tensor in float32.
 */
#ifndef GPT2_MODEL_WRITER_H
#define GPT2_MODEL_WRITER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model_format.h"
#include "tokenizer.h"

typedef struct {
    /* Fills out[rows * cols] with tensor s as row-major float32 in the
     * file's orientation (y = W x: one row per output).  Returns false with
     * a reason in err to abandon the write. */
    bool (*tensor)(void *ctx, const TensorSpec *s, float *out, char *err, size_t errsz);
    /* Called after each tensor, when not NULL. */
    void (*progress)(void *ctx, size_t done, size_t total, const TensorSpec *s);
    void *ctx;
} TensorSource;

/* What the file is called while it is written: path + this + ".PID.N",
 * created exclusively in the output's folder (never an existing file,
 * never through a link) and renamed to path at the end. */
#define MODEL_PARTIAL_SUFFIX ".partial"

/* The temporary file this process is writing, for a signal handler: when
 * gpt2_model_writer_partial_live is set, gpt2_model_writer_partial names a
 * file that this process created and may remove (unlink is
 * async-signal-safe).  Nothing else is ever removed. */
extern char gpt2_model_writer_partial[4096];
extern volatile sig_atomic_t gpt2_model_writer_partial_live;

/* Writes a complete model file to path.  The config is checked first. */
bool gpt2_model_write(const char *path, const ModelConfig *c, const TokenizerData *vocab, const TensorSource *src,
                      char *err, size_t errsz);

/* A source of q8_0 blocks: for a matrix s that the file stores as q8_0,
 * may fill quants[rows * cols] and scales[rows * cols / 32] (float16 bits),
 * row by row, from blocks the source already holds, and set *given; the
 * blocks are then written unchanged instead of quantizing what the
 * TensorSource gives.  Leaving *given false falls back to it. */
typedef bool (*Q8Blocks)(void *ctx, const TensorSpec *s, int8_t *quants, uint16_t *scales, bool *given, char *err,
                         size_t errsz);

/* gpt2_model_write, taking q8_0 matrices from q8_0 (with src's ctx) when it
 * gives them. */
bool gpt2_model_write_q8_0(const char *path, const ModelConfig *c, const TokenizerData *vocab, const TensorSource *src,
                           Q8Blocks q8_0, char *err, size_t errsz);

#endif
