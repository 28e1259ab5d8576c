/* tokenizer.h - GPT-2's byte-level BPE tokenizer: text bytes <-> token ids.
 *
 * Owns pre-tokenization (GPT-2's split pattern, implemented without a regex
 * engine, see pretokenize.h), the BPE merge loop with its word cache, and
 * decoding.  Encoding gives exactly the ids of OpenAI's encoder.py for every
 * valid UTF-8 text; any byte string, valid or not, encodes and decodes back
 * to itself.
 *
 * The vocabulary itself is not owned here: TokenizerData is a view of tables
 * that live in the model file (or in an HfVocab while converting), and they
 * must outlive the Tokenizer built on them.
 *
 * A Tokenizer is not safe to share between threads while encoding (its word
 * cache changes); decoding and token lookups are read-only.
 */
#ifndef GPT2_TOKENIZER_H
#define GPT2_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* A growable list of token ids. */
typedef struct {
    int32_t *ids; /* [cap] */
    size_t n;     /* ids in use */
    size_t cap;
} TokenList;

bool gpt2_token_list_push(TokenList *list, int32_t id); /* false on OOM */
void gpt2_token_list_free(TokenList *list);

typedef struct {
    uint32_t n_vocab;
    const uint32_t *offsets; /* [n_vocab + 1]: token i is bytes[offsets[i] .. offsets[i+1]) */
    const uint8_t *bytes;    /* [offsets[n_vocab]] */
    uint32_t n_merges;
    const uint32_t *merges; /* [n_merges][3]: left id, right id, merged id; row index = rank */
    uint32_t eot_id;        /* <|endoftext|> */
    uint32_t n_added;       /* the last n_added ids are added tokens (a fine-tune's <|pad|>, ...) */
} TokenizerData;

/* Added tokens are special tokens that a fine-tune appended to the
 * vocabulary: their bytes are their text, no merge makes them, and in
 * special mode their text becomes their id, as "<|endoftext|>" does.  Each is
 * at most this many bytes, which bounds the cost of matching them. */
#define TOKENIZER_MAX_ADDED_BYTES 256u

typedef struct Tokenizer Tokenizer;

/* Builds a tokenizer over data, checking that the tables make sense: ids in
 * range, offsets non-decreasing, non-empty tokens, no two tokens with the
 * same bytes (so merging ids is merging strings, as encoder.py does) except
 * that an added token may repeat an ordinary token other than eot_id's, a
 * single-byte token for each of the 256 bytes, eot_id's bytes being
 * "<|endoftext|>", each merge's bytes equal to the concatenation of its
 * parts, no pair listed twice, fewer added tokens than tokens and none
 * longer than TOKENIZER_MAX_ADDED_BYTES.  On failure returns false with a one-line
 * reason in err. */
bool gpt2_tokenizer_build(Tokenizer **out, const TokenizerData *data, char *err, size_t errsz);
void gpt2_tokenizer_free(Tokenizer *t);

/* Appends the ids of text[0..len) to out.  With special, each occurrence of
 * the bytes of a special token ("<|endoftext|>" and the added tokens) becomes
 * its id, the leftmost first and the longest where two start at the same
 * byte (as Hugging Face's tokenizers match added tokens); the text between
 * them is encoded as usual.  Without special, all of it is ordinary text (as
 * in OpenAI's encoder).  Returns false only when memory runs out (a
 * single pre-tokenized piece of 4 GiB or more counts as that); out then
 * holds some prefix of the ids. */
bool gpt2_tokenizer_encode(Tokenizer *t, const uint8_t *text, size_t len, bool special, TokenList *out);

/* The bytes of token id, or NULL when id is out of range. */
const uint8_t *gpt2_tokenizer_token(const Tokenizer *t, int32_t id, size_t *len);

/* Appends the bytes of ids[0..n) to out.  False when an id is out of range
 * (nothing appended) or memory runs out. */
bool gpt2_tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, StrBuf *out);

uint32_t gpt2_tokenizer_vocab_size(const Tokenizer *t);
int32_t gpt2_tokenizer_eot(const Tokenizer *t);

#define TOKENIZER_SMALL_PIECE_MAX 48

#ifdef GPT2_TESTING
#include "hash.h"

/* Test hooks, compiled only into the testing build of this layer (the
 * archive the tests and fuzzers link; never libgpt2).
 *
 * Searches of one of the open-addressing tables: how many, the slots they
 * visited in all and the most that one search visited.  Under the keyed
 * hash, slots / searches stays near 1 and longest near log n whatever the
 * keys are; keys made to collide in an unkeyed hash make both grow with the
 * number of keys. */
typedef struct {
    uint64_t searches, slots, longest;
} TokenizerProbes;

/* Work done since the tokenizer was built (pair_build: by the build
 * itself; the rest: by gpt2_tokenizer_encode), counted in steps that do not
 * depend on the machine, so that tests can check the cost of a text (e.g.
 * that a long run costs O(n log n)) without timing. */
typedef struct {
    uint64_t pieces;            /* pre-tokenized pieces encoded */
    uint64_t cache_hits;        /* pieces answered by the word cache */
    uint64_t merges;            /* BPE merges applied */
    uint64_t heap_steps;        /* heap pushes and pops, and each of their sift steps */
    uint64_t scan_steps;        /* pair ranks visited by the loop for small pieces */
    TokenizerProbes pair_build; /* the merge-pair table: inserting every rule */
    TokenizerProbes pair_table; /* the merge-pair table: the rank of a pair, while encoding */
    TokenizerProbes word_cache; /* the word cache: a piece looked up, and inserted after a miss */
} TokenizerStats;

TokenizerStats gpt2_tokenizer_stats(const Tokenizer *t);

/* gpt2_tokenizer_build with key for every hash table instead of a fresh
 * random one, so that tests can check that the key decides where entries
 * sit and nothing else. */
bool gpt2_tokenizer_build_keyed(Tokenizer **out, const TokenizerData *data, HashKey key, char *err, size_t errsz);

/* The key the tokenizer's tables were built with. */
HashKey gpt2_tokenizer_key(const Tokenizer *t);

/* Pieces of at most this many bytes are merged by a direct loop over an
 * array (fast when short, quadratic when long); longer ones by a linked list
 * and a min-heap.  Both give the same ids; the knob exists so tests can run
 * the two against each other.  Setting it empties the word cache. */
void gpt2_tokenizer_set_small_piece_max(Tokenizer *t, size_t max_bytes);
#endif

#endif
