/* hf_vocab.h - reading a GPT-2 tokenizer in the Hugging Face file layout.
 *
 * Owns the parsing of `vocab.json` (token string -> id) and `merges.txt`
 * (one merge rule "A B" a line, rank = order) into the tables a Tokenizer
 * is built on.  OpenAI's `encoder.json` and `vocab.bpe` have the same
 * formats and load the same way.
 *
 * Token strings use GPT-2's byte-to-character map: bytes 0x21-0x7E,
 * 0xA1-0xAC and 0xAE-0xFF stand for themselves, the other 68 bytes, in
 * increasing order, for U+0100, U+0101, ...; any other character is an
 * error.  Reading is strict, and every refusal is one line naming the file
 * and the line or token at fault:
 *   vocab.json: a JSON object of non-empty token strings to integer ids, the
 *     ids exactly 0..n-1 once each, no token twice, "<|endoftext|>" present;
 *   merges.txt: an optional first line "#version: ...", then lines of two
 *     tokens separated by one space, each part and their concatenation in
 *     the vocabulary, no pair twice.  Lines may end in LF or CRLF; the last
 *     may lack its newline, and one empty line may end the file.  Any other
 *     empty line is an error.
 *   added tokens: see gpt2_hf_vocab_append_added.
 * Finally the tables are checked by gpt2_tokenizer_build, so a loaded HfVocab
 * always builds.
 */
#ifndef GPT2_HF_VOCAB_H
#define GPT2_HF_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

typedef struct {
    TokenizerData data; /* a view of the arrays below */
    uint32_t *offsets;  /* [data.n_vocab + 1] */
    uint8_t *bytes;     /* [offsets[data.n_vocab]] token bytes, by id */
    uint32_t *merges;   /* [data.n_merges * 3] left id, right id, merged id */
} HfVocab;

/* Reads the two files into out.  On failure returns false with a one-line
 * message in err, and out needs no freeing. */
bool gpt2_hf_vocab_load(HfVocab *out, const char *vocab_json_path, const char *merges_path, char *err, size_t errsz);

/* The same from text already in memory; the names are used in messages. */
bool gpt2_hf_vocab_parse(HfVocab *out, const char *vocab_json, size_t vocab_len, const char *vocab_name,
                         const char *merges_txt, size_t merges_len, const char *merges_name, char *err, size_t errsz);

/* The same from a tokenizer.json: its model.vocab and model.merges, the
 * merges written as "a b" strings or as ["a", "b"] pairs. */
bool gpt2_hf_vocab_load_tokenizer_json(HfVocab *out, const char *path, char *err, size_t errsz);
/* The same from the text of a tokenizer.json already in memory; name is
 * used in messages. */
bool gpt2_hf_vocab_parse_tokenizer_json(HfVocab *out, const char *text, size_t len, const char *name, char *err,
                                        size_t errsz);

/* One added token: its text (raw UTF-8, not in the byte map) and id. */
typedef struct {
    const char *text;
    size_t len;
    uint64_t id;
} HfAddedToken;

/* Grows v to n_vocab tokens with the added tokens list[0..n), a fine-tune's
 * <|pad|> and the like (tokenizer.h): ids from v's size to n_vocab - 1,
 * each named at most once; an id that none names (the padding of a
 * vocabulary rounded up) becomes the placeholder "[PAD<id>]", as llama.cpp
 * names it.  An entry with an id v already has must have that token's text
 * (tokenizer.json lists "<|endoftext|>" so) and adds nothing; one at or past
 * n_vocab is refused.  `name` names the list in messages. */
bool gpt2_hf_vocab_append_added(HfVocab *v, const HfAddedToken *list, size_t n, uint32_t n_vocab, const char *name,
                                char *err, size_t errsz);

/* The same with the added tokens of a file: added_tokens.json (an object of
 * texts to ids) or, with tokenizer_json, the "added_tokens" list of a
 * tokenizer.json. */
bool gpt2_hf_vocab_load_added(HfVocab *v, const char *path, bool tokenizer_json, uint32_t n_vocab, char *err,
                              size_t errsz);

void gpt2_hf_vocab_free(HfVocab *v);

#endif
