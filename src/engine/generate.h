/* generate.h - completions: from prompt tokens to streamed text.
 *
 * Owns the generation loop around the transformer: feeding prompts,
 * sampling, stopping (length, end of text, stop strings), keeping a
 * sequence going past the context length, and releasing the text of each
 * completion as it becomes final.  The request and result types are the
 * public ones of gpt2.h.
 *
 * Many completions run together: each takes one of the transformer's
 * sequences, and every step evaluates one batch holding the pending prompt
 * tokens and the newest token of every running completion.  Because a
 * row's result does not depend on the rest of its batch, each completion
 * comes out exactly as it would alone.
 *
 * Shared prefixes.  The transformer records the tokens each sequence holds,
 * and those records outlive a completion and a call.  A completion starts
 * in the free sequence holding the longest prefix of its window, takes a
 * longer prefix from any other sequence by copying its keys and values,
 * and waits, evaluating nothing, while a running completion evaluates a
 * still longer one (the same few-shot header, the same prompt with another
 * seed).  Its last prompt token is always its own, for the logits.
 *
 * Context.  When a completion's tokens fill the context, the newest half
 * is kept and evaluated again from position 0 (GPT-2's positions are
 * absolute, so cached keys cannot be shifted), and generation goes on.
 * A prompt longer than the context keeps its newest n_ctx tokens.
 *
 * Released text never ends inside a UTF-8 character or inside what may
 * become a stop string; when a completion ends, everything left that
 * precedes a stop string is released, bytes exactly as the tokens make them.
 */
#ifndef GPT2_GENERATE_H
#define GPT2_GENERATE_H

#include <stdbool.h>
#include <stddef.h>

#include "gpt2.h"
#include "tokenizer.h"
#include "transformer.h"

/* Runs the completions feed gives, as many at once as t has sequences (see
 * gpt2_generate_feed). */
bool gpt2_generate_run(Transformer *t, Tokenizer *tok, const Gpt2Feed *feed, const Gpt2Callbacks *cb, char *err,
                       size_t errsz);

/* Runs completions c[0..n) (see gpt2_generate). */
bool gpt2_generate_list(Transformer *t, Tokenizer *tok, Gpt2Completion *c, size_t n, const Gpt2Callbacks *cb, char *err,
                        size_t errsz);

#endif
