/* inspect.h - what the model does with a prompt, exactly as computed.
 *
 * Owns inspection: it sets a Capture on the transformer for one forward
 * pass over the prompt (the only time one is set), so that the pass keeps
 * the attention weights and the residual stream after every layer, and
 * turns the logits of every position into the next-token distribution
 * (distribution.h) and, with the logit lens, every layer's residual too.
 * It also owns gpt2_capture_layer, the hook the forward pass calls.
 */
#ifndef GPT2_INSPECT_H
#define GPT2_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpt2.h"
#include "transformer.h"

/* Inspects ids[0..n) with sequence 0 of t; see gpt2_inspect in gpt2.h.
 * Returns false with a reason in err (and *x empty). */
bool gpt2_inspect_run(Transformer *t, const int32_t *ids, size_t n, const Gpt2InspectOptions *o, Gpt2Inspection *x,
                      char *err, size_t errsz);

void gpt2_inspect_free(Gpt2Inspection *x);

#endif
