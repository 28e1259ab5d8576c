/* tokenizer.c - see tokenizer.h.
 *
 * Spine: gpt2_tokenizer_encode cuts the text at its special tokens when asked
 * to ("<|endoftext|>" and the added tokens, found by narrowing a sorted list
 * one byte at a time), pre-tokenizes each part into pieces (pretokenize.h),
 * and turns each piece
 * into ids: one byte is its byte token, a piece seen recently comes from the
 * word cache, anything else goes through the BPE merge loop.
 *
 * The merge loop follows encoder.py's bpe(): repeatedly take the adjacent
 * pair of lowest rank and merge all its non-overlapping occurrences, left to
 * right, in the word as it was before this round.  Short pieces run that
 * literally over an array.  Long ones use a linked list of symbols and a
 * min-heap of (rank, position): popping gives each round's occurrences in
 * left-to-right order, and a pair created during a round whose rank is not
 * above the round's own is held back until the round ends, as encoder.py
 * only sees new pairs in its next round.  That makes the heap exact for any
 * merge table, not only for ones where merges only create higher ranks.
 */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "hash.h"
#include "pretokenize.h"

#define NONE UINT32_MAX /* no symbol / no node / no rank */

/* Far beyond any real vocabulary (GPT-2 has 50000 merges), and small
 * enough that the pair table's size cannot overflow on any platform. */
#define TOKENIZER_MAX_MERGES (1u << 24)
#define EOT_TEXT "<|endoftext|>"
#define EOT_LEN (sizeof EOT_TEXT - 1)

/* Word cache limits: pieces up to CACHE_MAX_PIECE bytes are kept, and the
 * whole cache is emptied when the table is half full or an arena is. */
#define CACHE_SLOTS (1u << 15)
#define CACHE_MAX_PIECE 255
#define CACHE_BYTES (1u << 19)
#define CACHE_IDS (1u << 17)

/* A special token: "<|endoftext|>" or an added token. */
typedef struct {
    const uint8_t *bytes;
    uint32_t len;
    uint32_t id;
} SpecialToken;

/* One merge rule in the pair table; left == NONE marks an empty slot. */
typedef struct {
    uint32_t left, right;
    uint32_t rank; /* row of the rule in TokenizerData.merges */
} PairSlot;

typedef struct {
    uint64_t hash;
    uint32_t bytes_at; /* piece bytes are cache.bytes[bytes_at .. + len) */
    uint32_t ids_at;   /* its ids are cache.ids[ids_at .. + n_ids) */
    uint16_t len;      /* 0: empty slot */
    uint16_t n_ids;
} CacheSlot;

typedef struct {
    CacheSlot *slots; /* [CACHE_SLOTS] */
    size_t used;      /* slots filled */
    uint8_t *bytes;   /* [CACHE_BYTES] */
    size_t bytes_used;
    int32_t *ids; /* [CACHE_IDS] */
    size_t ids_used;
} WordCache;

/* A growable array of heap keys: (rank << 32 | node). */
typedef struct {
    uint64_t *keys; /* [cap] */
    size_t n, cap;
} KeyArray;

/* Working memory of the merge loops, grown to the longest piece seen and
 * kept, so that encoding allocates nothing in the common case. */
typedef struct {
    size_t cap;        /* symbols the arrays below can hold */
    uint32_t *sym;     /* [cap] token id of each symbol; NONE once merged away */
    uint32_t *rank;    /* [cap] small loop: rank of the pair (i, i + 1) */
    uint32_t *next;    /* [cap] heap loop: next live node, NONE at the end */
    uint32_t *prev;    /* [cap] heap loop: previous live node, NONE at the start */
    KeyArray heap;     /* min-heap of candidate pairs */
    KeyArray deferred; /* pairs created in the current round at or below its rank */
} Scratch;

struct Tokenizer {
    TokenizerData data;    /* the caller's tables, checked by gpt2_tokenizer_build */
    HashKey key;           /* of every hash table below: random, drawn at build (tests may choose it) */
    uint32_t byte_id[256]; /* the single-byte token of each byte value */
    PairSlot *pairs;       /* [pair_mask + 1] open addressing on (left, right) */
    size_t pair_mask;
    unsigned pair_shift;    /* 64 - log2(pair_mask + 1) */
    size_t small_piece_max; /* TOKENIZER_SMALL_PIECE_MAX; tests may change it */
    SpecialToken *special;  /* [n_special] eot and the added tokens, sorted by bytes */
    uint32_t n_special;
    bool special_start[256]; /* whether some special token starts with this byte */
    int only_start;          /* the one byte every special token starts with, or -1 */
    WordCache cache;
    Scratch scratch;
#ifdef GPT2_TESTING
    TokenizerStats stats;
#endif
};

/* The work counters exist only in the testing build (tokenizer.h);
 * TOK_PROBES records one search of a table that visited n slots. */
#ifdef GPT2_TESTING
#define TOK_COUNT(t, field, n) ((t)->stats.field += (n))
#define TOK_PROBES(t, table, n) probes_add(&(t)->stats.table, (n))
static void probes_add(TokenizerProbes *p, uint64_t slots) {
    p->searches++;
    p->slots += slots;
    if (slots > p->longest) p->longest = slots;
}
#else
#define TOK_COUNT(t, field, n) ((void)(t))
#define TOK_PROBES(t, table, n) ((void)(t), (void)(n))
#endif

/* ---- token lists ------------------------------------------------------- */

static bool token_list_reserve(TokenList *list, size_t extra) {
    if (extra > SIZE_MAX / sizeof(int32_t) - list->n) return false;
    size_t need = list->n + extra;
    if (need <= list->cap) return true;
    size_t cap = list->cap ? list->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / sizeof(int32_t) / 2 ? need : cap * 2;
    int32_t *ids = realloc(list->ids, cap * sizeof *ids);
    if (!ids) return false;
    list->ids = ids;
    list->cap = cap;
    return true;
}

bool gpt2_token_list_push(TokenList *list, int32_t id) {
    if (list->n == list->cap && !token_list_reserve(list, 1)) return false;
    list->ids[list->n++] = id;
    return true;
}

void gpt2_token_list_free(TokenList *list) {
    free(list->ids);
    list->ids = NULL;
    list->n = list->cap = 0;
}

/* ---- hashing ------------------------------------------------------------ */

/* Every table here is keyed with the tokenizer's own random key (hash.h):
 * a vocabulary, merge table or text made to collide cannot know it. */
static size_t pair_slot(const Tokenizer *t, uint32_t left, uint32_t right) {
    uint64_t key = (uint64_t)left << 32 | right;
    return (size_t)(gpt2_hash_u64(t->key, key) >> t->pair_shift);
}

/* Rank of the merge rule (left, right), or NONE. */
static inline uint32_t pair_rank(Tokenizer *t, uint32_t left, uint32_t right) {
    size_t i = pair_slot(t, left, right);
    for (uint64_t probes = 1;; probes++) {
        const PairSlot *s = &t->pairs[i];
        if (s->left == left && s->right == right) {
            TOK_PROBES(t, pair_table, probes);
            return s->rank;
        }
        if (s->left == NONE) {
            TOK_PROBES(t, pair_table, probes);
            return NONE;
        }
        i = (i + 1) & t->pair_mask;
    }
}

/* ---- building ----------------------------------------------------------- */

static size_t token_len(const TokenizerData *d, uint32_t id) { return d->offsets[id + 1] - d->offsets[id]; }
static const uint8_t *token_bytes(const TokenizerData *d, uint32_t id) { return d->bytes + d->offsets[id]; }

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p *= 2;
    return p;
}

static bool check_tokens(const TokenizerData *d, char *err, size_t errsz) {
    if (d->n_vocab == 0 || d->n_vocab > INT32_MAX) {
        snprintf(err, errsz, "tokenizer: vocabulary size %u is out of range", (unsigned)d->n_vocab);
        return false;
    }
    if (!d->offsets || (!d->bytes && d->offsets[d->n_vocab] > 0) || (!d->merges && d->n_merges > 0)) {
        snprintf(err, errsz, "tokenizer: missing tables");
        return false;
    }
    for (uint32_t i = 0; i < d->n_vocab; i++) {
        if (d->offsets[i + 1] <= d->offsets[i]) {
            snprintf(err, errsz, "tokenizer: token %u is empty or its offsets go backwards", (unsigned)i);
            return false;
        }
    }
    if (d->n_added >= d->n_vocab) {
        snprintf(err, errsz, "tokenizer: %u added tokens leave no room for the %u tokens of the vocabulary",
                 (unsigned)d->n_added, (unsigned)d->n_vocab);
        return false;
    }
    for (uint32_t i = d->n_vocab - d->n_added; i < d->n_vocab; i++) {
        if (d->offsets[i + 1] - d->offsets[i] > TOKENIZER_MAX_ADDED_BYTES) {
            snprintf(err, errsz, "tokenizer: added token %u is longer than %u bytes", (unsigned)i,
                     TOKENIZER_MAX_ADDED_BYTES);
            return false;
        }
    }
    if (d->eot_id >= d->n_vocab) {
        snprintf(err, errsz, "tokenizer: end-of-text id %u is not below the vocabulary size %u", (unsigned)d->eot_id,
                 (unsigned)d->n_vocab);
        return false;
    }
    if (token_len(d, d->eot_id) != EOT_LEN || memcmp(token_bytes(d, d->eot_id), EOT_TEXT, EOT_LEN) != 0) {
        snprintf(err, errsz, "tokenizer: end-of-text token %u is not \"%s\"", (unsigned)d->eot_id, EOT_TEXT);
        return false;
    }
    return true;
}

/* Refuses two tokens with the same bytes, using a temporary hash set: in
 * the pair table's memory, not yet filled, where it fits (fresh pages are
 * dear, gpt2_fileio_alloc_table).  The ids are visited in order, so the
 * pair named does not depend on the key. */
static bool check_unique(const Tokenizer *t, char *err, size_t errsz) {
    const TokenizerData *d = &t->data;
    size_t cap = pow2_at_least((size_t)d->n_vocab * 2);
    const bool own = cap * sizeof(uint32_t) > (t->pair_mask + 1) * sizeof *t->pairs;
    uint32_t *set = own ? gpt2_fileio_alloc_table(cap * sizeof *set) : (uint32_t *)(void *)t->pairs;
    if (!set) {
        snprintf(err, errsz, "tokenizer: out of memory");
        return false;
    }
    memset(set, 0xFF, cap * sizeof *set);
    const uint32_t first_added = d->n_vocab - d->n_added;
    bool ok = true;
    for (uint32_t id = 0; id < d->n_vocab && ok; id++) {
        const uint8_t *b = token_bytes(d, id);
        size_t n = token_len(d, id);
        size_t i = (size_t)gpt2_hash_bytes(t->key, b, n) & (cap - 1);
        while (set[i] != NONE) {
            uint32_t other = set[i];
            /* An added token may repeat an ordinary token other than
             * end-of-text (Hugging Face's add_tokens(" hello")): BPE never
             * makes it, and in special mode its text is it. */
            bool allowed = (other >= first_added) != (id >= first_added) && other != d->eot_id && id != d->eot_id;
            if (!allowed && token_len(d, other) == n && memcmp(token_bytes(d, other), b, n) == 0) {
                snprintf(err, errsz, "tokenizer: tokens %u and %u have the same bytes", (unsigned)other, (unsigned)id);
                ok = false;
                break;
            }
            i = (i + 1) & (cap - 1);
        }
        set[i] = id;
    }
    if (own) gpt2_fileio_free_table(set, cap * sizeof *set);
    return ok;
}

static bool find_byte_tokens(Tokenizer *t, char *err, size_t errsz) {
    const TokenizerData *d = &t->data;
    for (int b = 0; b < 256; b++) t->byte_id[b] = NONE;
    for (uint32_t id = 0; id < d->n_vocab - d->n_added; id++) { /* an added "\n" is not the byte's token */
        if (token_len(d, id) == 1) t->byte_id[token_bytes(d, id)[0]] = id;
    }
    for (int b = 0; b < 256; b++) {
        if (t->byte_id[b] == NONE) {
            snprintf(err, errsz, "tokenizer: no single-byte token for byte 0x%02X", b);
            return false;
        }
    }
    return true;
}

static bool check_merge(const TokenizerData *d, uint32_t r, char *err, size_t errsz) {
    const uint32_t *m = d->merges + (size_t)r * 3;
    for (int k = 0; k < 3; k++) {
        if (m[k] >= d->n_vocab) {
            snprintf(err, errsz, "tokenizer: merge %u names token %u, beyond the vocabulary of %u", (unsigned)r,
                     (unsigned)m[k], (unsigned)d->n_vocab);
            return false;
        }
    }
    uint32_t first_added = d->n_vocab - d->n_added;
    if (m[0] >= first_added || m[1] >= first_added || m[2] >= first_added) {
        snprintf(err, errsz, "tokenizer: merge %u names an added token (%u, %u -> %u)", (unsigned)r, (unsigned)m[0],
                 (unsigned)m[1], (unsigned)m[2]);
        return false;
    }
    size_t ll = token_len(d, m[0]), rl = token_len(d, m[1]);
    if (token_len(d, m[2]) != ll + rl || memcmp(token_bytes(d, m[2]), token_bytes(d, m[0]), ll) != 0 ||
        memcmp(token_bytes(d, m[2]) + ll, token_bytes(d, m[1]), rl) != 0) {
        snprintf(err, errsz, "tokenizer: merge %u: token %u is not token %u followed by token %u", (unsigned)r,
                 (unsigned)m[2], (unsigned)m[0], (unsigned)m[1]);
        return false;
    }
    return true;
}

/* The pair table's memory, filled by build_pair_table. */
static bool alloc_pair_table(Tokenizer *t, char *err, size_t errsz) {
    const TokenizerData *d = &t->data;
    if (d->n_merges > TOKENIZER_MAX_MERGES) {
        snprintf(err, errsz, "tokenizer: %u merges are too many", (unsigned)d->n_merges);
        return false;
    }
    size_t cap = pow2_at_least((size_t)d->n_merges * 2);
    t->pairs = gpt2_fileio_alloc_table(cap * sizeof *t->pairs);
    if (!t->pairs) {
        snprintf(err, errsz, "tokenizer: out of memory");
        return false;
    }
    t->pair_mask = cap - 1;
    unsigned bits = 0;
    while (((size_t)1 << bits) < cap) bits++;
    t->pair_shift = 64 - bits;
    return true;
}

static bool build_pair_table(Tokenizer *t, char *err, size_t errsz) {
    const TokenizerData *d = &t->data;
    memset(t->pairs, 0xFF, (t->pair_mask + 1) * sizeof *t->pairs);
    for (uint32_t r = 0; r < d->n_merges; r++) {
        if (!check_merge(d, r, err, errsz)) return false;
        const uint32_t *m = d->merges + (size_t)r * 3;
        size_t i = pair_slot(t, m[0], m[1]);
        uint64_t probes = 1;
        while (t->pairs[i].left != NONE) {
            if (t->pairs[i].left == m[0] && t->pairs[i].right == m[1]) {
                snprintf(err, errsz, "tokenizer: merge %u repeats the pair of merge %u (tokens %u and %u)", (unsigned)r,
                         (unsigned)t->pairs[i].rank, (unsigned)m[0], (unsigned)m[1]);
                return false;
            }
            i = (i + 1) & t->pair_mask;
            probes++;
        }
        TOK_PROBES(t, pair_build, probes);
        t->pairs[i] = (PairSlot){m[0], m[1], r};
    }
    return true;
}

/* Shorter first where one is a prefix of the other. */
static int by_bytes(const void *a, const void *b) {
    const SpecialToken *x = a, *y = b;
    int c = memcmp(x->bytes, y->bytes, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The special tokens, sorted by their bytes, and the bytes they start with. */
static bool build_specials(Tokenizer *t) {
    const TokenizerData *d = &t->data;
    t->special = malloc(((size_t)d->n_added + 1) * sizeof *t->special);
    if (!t->special) return false;
    t->special[0] = (SpecialToken){token_bytes(d, d->eot_id), (uint32_t)token_len(d, d->eot_id), d->eot_id};
    t->n_special = 1;
    for (uint32_t id = d->n_vocab - d->n_added; id < d->n_vocab; id++) {
        if (id != d->eot_id)
            t->special[t->n_special++] = (SpecialToken){token_bytes(d, id), (uint32_t)token_len(d, id), id};
    }
    qsort(t->special, t->n_special, sizeof *t->special, by_bytes);
    t->only_start = t->special[0].bytes[0];
    for (uint32_t k = 0; k < t->n_special; k++) {
        uint8_t b = t->special[k].bytes[0];
        t->special_start[b] = true;
        if (b != t->only_start) t->only_start = -1;
    }
    return true;
}

static bool build_cache(WordCache *c) {
    c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
    c->bytes = malloc(CACHE_BYTES);
    c->ids = malloc(CACHE_IDS * sizeof *c->ids);
    return c->slots && c->bytes && c->ids;
}

static void free_cache(WordCache *c) {
    free(c->slots);
    free(c->bytes);
    free(c->ids);
}

static void free_scratch(Scratch *s) {
    free(s->sym);
    free(s->rank);
    free(s->next);
    free(s->prev);
    free(s->heap.keys);
    free(s->deferred.keys);
}

static bool build_keyed(Tokenizer **out, const TokenizerData *data, HashKey key, char *err, size_t errsz) {
    *out = NULL;
    if (!check_tokens(data, err, errsz)) return false;
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errsz, "tokenizer: out of memory");
        return false;
    }
    t->data = *data;
    t->key = key;
    t->small_piece_max = TOKENIZER_SMALL_PIECE_MAX;
    if (!alloc_pair_table(t, err, errsz) || !check_unique(t, err, errsz) || !find_byte_tokens(t, err, errsz) ||
        !build_pair_table(t, err, errsz)) {
        gpt2_tokenizer_free(t);
        return false;
    }
    if (!build_specials(t) || !build_cache(&t->cache)) {
        snprintf(err, errsz, "tokenizer: out of memory");
        gpt2_tokenizer_free(t);
        return false;
    }
    *out = t;
    return true;
}

bool gpt2_tokenizer_build(Tokenizer **out, const TokenizerData *data, char *err, size_t errsz) {
    return build_keyed(out, data, gpt2_hash_new_key(), err, errsz);
}

void gpt2_tokenizer_free(Tokenizer *t) {
    if (!t) return;
    if (t->pairs) gpt2_fileio_free_table(t->pairs, (t->pair_mask + 1) * sizeof *t->pairs);
    free(t->special);
    free_cache(&t->cache);
    free_scratch(&t->scratch);
    free(t);
}

/* ---- word cache --------------------------------------------------------- */

static void cache_clear(WordCache *c) {
    memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    c->used = c->bytes_used = c->ids_used = 0;
}

/* The slot of t's word cache holding piece p[0..n) of hash h, or the empty
 * slot where it would go. */
static CacheSlot *cache_slot(Tokenizer *t, uint64_t h, const uint8_t *p, size_t n) {
    WordCache *c = &t->cache;
    size_t i = (size_t)h & (CACHE_SLOTS - 1);
    for (uint64_t probes = 1;; probes++) {
        CacheSlot *s = &c->slots[i];
        if (s->len == 0 || (s->hash == h && s->len == n && memcmp(c->bytes + s->bytes_at, p, n) == 0)) {
            TOK_PROBES(t, word_cache, probes);
            return s;
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
}

static void cache_insert(Tokenizer *t, uint64_t h, const uint8_t *p, size_t n, const int32_t *ids, size_t n_ids) {
    WordCache *c = &t->cache;
    if (c->used >= CACHE_SLOTS / 2 || c->bytes_used + n > CACHE_BYTES || c->ids_used + n_ids > CACHE_IDS) {
        cache_clear(c);
    }
    CacheSlot *s = cache_slot(t, h, p, n);
    memcpy(c->bytes + c->bytes_used, p, n);
    memcpy(c->ids + c->ids_used, ids, n_ids * sizeof *ids);
    *s = (CacheSlot){h, (uint32_t)c->bytes_used, (uint32_t)c->ids_used, (uint16_t)n, (uint16_t)n_ids};
    c->bytes_used += n;
    c->ids_used += n_ids;
    c->used++;
}

/* ---- the merge loops ---------------------------------------------------- */

static bool grow_u32(uint32_t **a, size_t n) {
    uint32_t *p = realloc(*a, n * sizeof *p);
    if (!p) return false;
    *a = p;
    return true;
}

static bool scratch_reserve(Scratch *s, size_t n) {
    if (n <= s->cap) return true;
    if (n > SIZE_MAX / 2 / sizeof(uint64_t)) return false;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < n) cap *= 2;
    if (!grow_u32(&s->sym, cap) || !grow_u32(&s->rank, cap) || !grow_u32(&s->next, cap) || !grow_u32(&s->prev, cap)) {
        return false;
    }
    s->cap = cap;
    return true;
}

static bool key_array_reserve(KeyArray *a, size_t n) {
    if (n <= a->cap) return true;
    if (n > SIZE_MAX / 2 / sizeof(uint64_t)) return false;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < n) cap *= 2;
    uint64_t *k = realloc(a->keys, cap * sizeof *k);
    if (!k) return false;
    a->keys = k;
    a->cap = cap;
    return true;
}

/* encoder.py's loop, literally, over sym[0..n); returns the new length. */
static size_t bpe_small(Tokenizer *t, uint32_t *sym, uint32_t *rank, size_t n) {
    const uint32_t *merges = t->data.merges;
    for (size_t i = 0; i + 1 < n; i++) rank[i] = pair_rank(t, sym[i], sym[i + 1]);
    while (n > 1) {
        uint32_t best = NONE;
        size_t at = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (rank[i] < best) {
                best = rank[i];
                at = i;
            }
        }
        TOK_COUNT(t, scan_steps, n - 1);
        if (best == NONE) break;
        uint32_t merged = merges[(size_t)best * 3 + 2];
        /* All occurrences in this round: after a merge at i, the pair at
         * i + 1 is the next one of the old word not overlapping it.  New
         * pairs never have this round's rank, as the merged token is longer
         * than both parts, so they are not taken here. */
        for (size_t i = at; i + 1 < n; i++) {
            TOK_COUNT(t, scan_steps, 1);
            if (rank[i] != best) continue;
            sym[i] = merged;
            memmove(sym + i + 1, sym + i + 2, (n - i - 2) * sizeof *sym);
            if (n >= i + 3) memmove(rank + i + 1, rank + i + 2, (n - i - 3) * sizeof *rank);
            n--;
            if (i > 0) rank[i - 1] = pair_rank(t, sym[i - 1], merged);
            if (i + 1 < n) rank[i] = pair_rank(t, merged, sym[i + 1]);
            TOK_COUNT(t, merges, 1);
        }
    }
    return n;
}

static inline uint64_t heap_key(uint32_t rank, uint32_t node) { return (uint64_t)rank << 32 | node; }

static void sift_down(Tokenizer *t, uint64_t *h, size_t n, size_t i) {
    uint64_t k = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= k) break;
        h[i] = h[c];
        i = c;
        TOK_COUNT(t, heap_steps, 1);
    }
    h[i] = k;
}

static bool heap_push(Tokenizer *t, KeyArray *heap, uint64_t k) {
    if (!key_array_reserve(heap, heap->n + 1)) return false;
    uint64_t *h = heap->keys;
    size_t i = heap->n++;
    TOK_COUNT(t, heap_steps, 1);
    while (i > 0 && h[(i - 1) / 2] > k) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
        TOK_COUNT(t, heap_steps, 1);
    }
    h[i] = k;
    return true;
}

static uint64_t heap_pop(Tokenizer *t, KeyArray *heap) {
    uint64_t top = heap->keys[0];
    heap->keys[0] = heap->keys[--heap->n];
    TOK_COUNT(t, heap_steps, 1);
    if (heap->n > 1) sift_down(t, heap->keys, heap->n, 0);
    return top;
}

/* A pair created in the round of rank `round`: heap now, or after the round. */
static bool add_pair(Tokenizer *t, uint32_t rank, uint32_t node, uint32_t round) {
    if (rank == NONE) return true;
    Scratch *s = &t->scratch;
    if (rank > round) return heap_push(t, &s->heap, heap_key(rank, node));
    if (!key_array_reserve(&s->deferred, s->deferred.n + 1)) return false;
    s->deferred.keys[s->deferred.n++] = heap_key(rank, node);
    return true;
}

static bool flush_deferred(Tokenizer *t) {
    Scratch *s = &t->scratch;
    for (size_t i = 0; i < s->deferred.n; i++) {
        if (!heap_push(t, &s->heap, s->deferred.keys[i])) return false;
    }
    s->deferred.n = 0;
    return true;
}

/* Merges the two live nodes i and j = next[i] by the rule of rank r. */
static bool merge_nodes(Tokenizer *t, uint32_t i, uint32_t j, uint32_t r) {
    Scratch *s = &t->scratch;
    uint32_t merged = t->data.merges[(size_t)r * 3 + 2];
    uint32_t k = s->next[j];
    s->sym[i] = merged;
    s->sym[j] = NONE;
    s->next[i] = k;
    if (k != NONE) s->prev[k] = i;
    TOK_COUNT(t, merges, 1);
    uint32_t p = s->prev[i];
    if (p != NONE && !add_pair(t, pair_rank(t, s->sym[p], merged), p, r)) return false;
    if (k != NONE && !add_pair(t, pair_rank(t, merged, s->sym[k]), i, r)) return false;
    return true;
}

/* The heap loop over scratch.sym[0..n); leaves the result at the front of
 * sym and its length in *out_n.  False when memory runs out. */
static bool bpe_heap(Tokenizer *t, size_t n, size_t *out_n) {
    Scratch *s = &t->scratch;
    const uint32_t *merges = t->data.merges;
    uint32_t *sym = s->sym, *next = s->next, *prev = s->prev;
    if (!key_array_reserve(&s->heap, n)) return false;
    s->heap.n = 0;
    s->deferred.n = 0;
    for (size_t i = 0; i < n; i++) {
        next[i] = i + 1 < n ? (uint32_t)(i + 1) : NONE;
        prev[i] = i > 0 ? (uint32_t)(i - 1) : NONE;
        if (i + 1 < n) {
            uint32_t r = pair_rank(t, sym[i], sym[i + 1]);
            if (r != NONE) s->heap.keys[s->heap.n++] = heap_key(r, (uint32_t)i);
        }
    }
    TOK_COUNT(t, heap_steps, s->heap.n);
    for (size_t i = s->heap.n / 2; i-- > 0;) sift_down(t, s->heap.keys, s->heap.n, i);

    uint32_t round = NONE; /* rank being applied, NONE between rounds */
    for (;;) {
        if (s->heap.n == 0 || (uint32_t)(s->heap.keys[0] >> 32) != round) {
            round = NONE; /* the round is over: its held-back pairs may go */
            if (!flush_deferred(t)) return false;
            if (s->heap.n == 0) break;
        }
        uint64_t top = heap_pop(t, &s->heap);
        uint32_t r = (uint32_t)(top >> 32), i = (uint32_t)top;
        uint32_t j = next[i];
        /* Entries go stale when a neighbour merges; the rule itself tells
         * whether the pair is still there. */
        if (sym[i] == NONE || j == NONE || sym[i] != merges[(size_t)r * 3] || sym[j] != merges[(size_t)r * 3 + 1]) {
            continue;
        }
        round = r;
        if (!merge_nodes(t, i, j, r)) return false;
    }
    size_t w = 0;
    for (uint32_t i = 0; i != NONE; i = next[i]) sym[w++] = sym[i]; /* node 0 is never merged away */
    *out_n = w;
    return true;
}

/* ---- encoding ----------------------------------------------------------- */

static bool append_ids(TokenList *out, const int32_t *ids, size_t n) {
    if (!token_list_reserve(out, n)) return false;
    memcpy(out->ids + out->n, ids, n * sizeof *ids);
    out->n += n;
    return true;
}

/* BPE of piece p[0..n), n >= 2, without the cache; the ids are left in
 * scratch.sym[0..*n_ids), as int32_t. */
static bool bpe_piece(Tokenizer *t, const uint8_t *p, size_t n, size_t *n_ids) {
    Scratch *s = &t->scratch;
    if (n >= NONE || !scratch_reserve(s, n)) return false;
    for (size_t i = 0; i < n; i++) s->sym[i] = t->byte_id[p[i]];
    size_t m = n;
    if (n <= t->small_piece_max) m = bpe_small(t, s->sym, s->rank, n);
    else if (!bpe_heap(t, n, &m)) return false;
    /* Ids are below n_vocab <= INT32_MAX, so the bits are the same. */
    *n_ids = m;
    return true;
}

static bool encode_piece(Tokenizer *t, const uint8_t *p, size_t n, TokenList *out) {
    TOK_COUNT(t, pieces, 1);
    if (n == 1) return gpt2_token_list_push(out, (int32_t)t->byte_id[p[0]]);
    uint64_t h = 0;
    if (n <= CACHE_MAX_PIECE) {
        h = gpt2_hash_bytes(t->key, p, n);
        const CacheSlot *hit = cache_slot(t, h, p, n);
        if (hit->len != 0) {
            TOK_COUNT(t, cache_hits, 1);
            return append_ids(out, t->cache.ids + hit->ids_at, hit->n_ids);
        }
    }
    size_t m;
    if (!bpe_piece(t, p, n, &m)) return false;
    const int32_t *ids = (const int32_t *)(const void *)t->scratch.sym;
    if (n <= CACHE_MAX_PIECE) cache_insert(t, h, p, n, ids, m);
    return append_ids(out, ids, m);
}

static bool encode_ordinary(Tokenizer *t, const uint8_t *text, size_t len, TokenList *out) {
    PreTokenizer pt;
    gpt2_pretok_init(&pt, text, len);
    size_t at, n;
    while (gpt2_pretok_next(&pt, &at, &n)) {
        if (!encode_piece(t, text + at, n, out)) return false;
    }
    return true;
}

/* In special[*lo .. *hi), which share their first d bytes, the range whose
 * byte d is c (every token there being longer than d). */
static void narrow(const SpecialToken *special, uint32_t *lo, uint32_t *hi, size_t d, uint8_t c) {
    uint32_t a = *lo, b = *hi;
    while (a < b) { /* first with byte d >= c */
        uint32_t m = a + (b - a) / 2;
        if (special[m].bytes[d] < c) a = m + 1;
        else b = m;
    }
    uint32_t e = a;
    b = *hi;
    while (e < b) { /* first with byte d > c */
        uint32_t m = e + (b - e) / 2;
        if (special[m].bytes[d] <= c) e = m + 1;
        else b = m;
    }
    *lo = a, *hi = e;
}

/* The longest special token that s[0..n) starts with, or NULL.  Sorted by
 * bytes, the tokens that start with s[0..d) form a range, the one exactly
 * s[0..d) (if any) first; each further byte narrows it.  The walk is at most
 * TOKENIZER_MAX_ADDED_BYTES deep. */
static const SpecialToken *special_at(const Tokenizer *t, const uint8_t *s, size_t n) {
    const SpecialToken *best = NULL;
    uint32_t lo = 0, hi = t->n_special;
    for (size_t d = 0; lo < hi; d++) {
        if (t->special[lo].len == d) best = &t->special[lo++];
        if (d == n || lo == hi) break;
        narrow(t->special, &lo, &hi, d, s[d]);
    }
    return best;
}

/* Where the next special token starts in s[0..n) (n when none does), and
 * which one. */
static size_t next_special(const Tokenizer *t, const uint8_t *s, size_t n, const SpecialToken **found) {
    for (size_t i = 0; i < n; i++) {
        if (t->only_start >= 0) {
            const uint8_t *p = memchr(s + i, t->only_start, n - i);
            if (!p) break;
            i = (size_t)(p - s);
        } else if (!t->special_start[s[i]]) {
            continue;
        }
        if ((*found = special_at(t, s + i, n - i)) != NULL) return i;
    }
    *found = NULL;
    return n;
}

bool gpt2_tokenizer_encode(Tokenizer *t, const uint8_t *text, size_t len, bool special, TokenList *out) {
    if (!special) return encode_ordinary(t, text, len, out);
    for (;;) {
        const SpecialToken *s;
        size_t at = next_special(t, text, len, &s);
        if (!encode_ordinary(t, text, at, out)) return false;
        if (!s) return true;
        if (!gpt2_token_list_push(out, (int32_t)s->id)) return false;
        text += at + s->len;
        len -= at + s->len;
    }
}

/* ---- decoding and lookups ----------------------------------------------- */

const uint8_t *gpt2_tokenizer_token(const Tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (uint32_t)id >= t->data.n_vocab) return NULL;
    *len = token_len(&t->data, (uint32_t)id);
    return token_bytes(&t->data, (uint32_t)id);
}

bool gpt2_tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, StrBuf *out) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= t->data.n_vocab) return false;
        size_t l = token_len(&t->data, (uint32_t)ids[i]);
        if (l > SIZE_MAX - total) return false;
        total += l;
    }
    if (!gpt2_strbuf_reserve(out, total)) return false;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const uint8_t *b = gpt2_tokenizer_token(t, ids[i], &len);
        gpt2_strbuf_append(out, b, len); /* cannot fail: reserved above */
    }
    return true;
}

uint32_t gpt2_tokenizer_vocab_size(const Tokenizer *t) { return t->data.n_vocab; }

int32_t gpt2_tokenizer_eot(const Tokenizer *t) { return (int32_t)t->data.eot_id; }

#ifdef GPT2_TESTING
TokenizerStats gpt2_tokenizer_stats(const Tokenizer *t) { return t->stats; }

void gpt2_tokenizer_set_small_piece_max(Tokenizer *t, size_t max_bytes) {
    t->small_piece_max = max_bytes;
    cache_clear(&t->cache);
}

bool gpt2_tokenizer_build_keyed(Tokenizer **out, const TokenizerData *data, HashKey key, char *err, size_t errsz) {
    return build_keyed(out, data, key, err, errsz);
}

HashKey gpt2_tokenizer_key(const Tokenizer *t) { return t->key; }
#endif
