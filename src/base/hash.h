/* hash.h - keyed hashing for tables built from untrusted input.
 *
 * Owns the one hash function of every table whose keys come from a file
 * (vocabularies, merge rules, the tokenizer's word cache): SipHash-1-3
 * under a key drawn at random when the table is made.  Whoever writes the
 * file cannot know the key, so cannot choose keys that collide, and a table
 * of n keys costs O(n) expected whatever they are.  Tables must not let the
 * key change any result, only where keys sit.
 */
#ifndef GPT2_HASH_H
#define GPT2_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t k0, k1;
} HashKey;

/* A fresh random key (getrandom, else /dev/urandom, else the clock, the
 * process id and addresses, mixed). */
HashKey gpt2_hash_new_key(void);

/* SipHash-1-3 of p[0..n) under key. */
uint64_t gpt2_hash_bytes(HashKey key, const void *p, size_t n);

/* SipHash-1-3 of the 8 bytes of x, in a register. */
uint64_t gpt2_hash_u64(HashKey key, uint64_t x);

#endif
