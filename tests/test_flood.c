/* test_flood.c - tables built from a file cannot be flooded.
 *
 * The tokenizer's token table and gpt2-convert's vocab.json index were once
 * open-addressing tables under fixed, unkeyed hashes, so a vocabulary whose
 * tokens all fall in one bucket made building them quadratic: a million
 * such tokens took about 25 minutes.  The generators below make exactly
 * such vocabularies against those old hashes, kept here verbatim.  Since the
 * tables are keyed with a random key (hash.h), the same vocabularies must
 * load at the speed of any other; the ctest TIMEOUT of this test (60 s) is
 * what fails when they do not.  The elapsed times are printed for the
 * record, never asserted.  The tokenizer's merge-pair table and word cache
 * are flooded the same way further down, and checked by the slots their
 * searches visit (the probe counters of tokenizer.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convert.h"
#include "gpt2.h"
#include "hf_vocab.h"
#include "json.h"
#include "test_util.h"
#include "tokenizer.h"
#include "utf8.h"

#define N_FLOOD 1000000u
#define BUCKET_BITS 21 /* both tables held 2^21 slots for a million tokens */

/* ---- the old hashes and their collisions --------------------------------------- */

/* The tokenizer's hash_bytes, for 8-byte input. */
static uint64_t old_tokenizer_hash8(uint64_t w) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ 8;
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    h = h * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

static uint64_t inverse_odd(uint64_t a) { /* a * x == 1 mod 2^64, Newton */
    uint64_t x = a;
    for (int i = 0; i < 6; i++) x *= 2 - a * x;
    return x;
}

static uint64_t undo_xorshift(uint64_t y, unsigned s) {
    uint64_t x = y;
    for (unsigned k = s; k < 64; k += s) x ^= y >> k;
    return x;
}

/* The 8 bytes whose old tokenizer hash is g: each step of the hash is
 * invertible. */
static uint64_t old_tokenizer_preimage(uint64_t g) {
    uint64_t h = undo_xorshift(g, 29) * inverse_odd(0xC4CEB9FE1A85EC53ull);
    h = undo_xorshift(h, 32) * inverse_odd(0xFF51AFD7ED558CCDull);
    return h ^ (0x9E3779B97F4A7C15ull ^ 8);
}

/* n distinct 8-byte tokens whose old tokenizer hashes agree in the low
 * BUCKET_BITS bits. */
static uint8_t *tokenizer_collisions(size_t n) {
    uint8_t *out = malloc(n * 8);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        uint64_t w = old_tokenizer_preimage((uint64_t)(i + 1) << BUCKET_BITS);
        assert_true((old_tokenizer_hash8(w) & ((1u << BUCKET_BITS) - 1)) == 0);
        for (int k = 0; k < 8; k++) out[i * 8 + k] = (uint8_t)(w >> (8 * k));
    }
    return out;
}

#define FNV_PRIME 0x100000001B3ull
#define MASK ((1u << BUCKET_BITS) - 1)

/* n distinct 7-byte tokens whose FNV-1a hashes (the old vocab.json index)
 * agree in the low BUCKET_BITS bits: a 4-byte prefix, then the 3-byte
 * suffix that leads from the prefix's state to bucket 0, found in a table
 * of every suffix worked backwards from it. */
static uint8_t *fnv_collisions(size_t n) {
    uint32_t *suffix_from = calloc((size_t)MASK + 1, sizeof *suffix_from); /* state -> suffix + 1 */
    uint8_t *out = malloc(n * 7);
    assert_non_null(suffix_from);
    assert_non_null(out);
    const uint64_t pinv = inverse_odd(FNV_PRIME);
    for (uint32_t sfx = 0; sfx < (1u << 24); sfx++) {
        uint64_t s = 0; /* the target state */
        for (int k = 2; k >= 0; k--) s = (s * pinv) ^ ((sfx >> (8 * k)) & 0xFF);
        suffix_from[s & MASK] = sfx + 1;
    }
    size_t made = 0;
    for (uint32_t prefix = 0; made < n; prefix++) {
        uint64_t h = 0xCBF29CE484222325ull;
        for (int k = 0; k < 4; k++) h = (h ^ ((prefix >> (8 * k)) & 0xFF)) * FNV_PRIME;
        uint32_t sfx = suffix_from[h & MASK];
        if (!sfx--) continue;
        uint8_t *t = out + made++ * 7;
        for (int k = 0; k < 4; k++) t[k] = (uint8_t)(prefix >> (8 * k));
        for (int k = 0; k < 3; k++) t[4 + k] = (uint8_t)(sfx >> (8 * k));
        uint64_t check = 0xCBF29CE484222325ull;
        for (int k = 0; k < 7; k++) check = (check ^ t[k]) * FNV_PRIME;
        assert_true((check & MASK) == 0);
    }
    free(suffix_from);
    return out;
}

/* ---- writing a vocabulary -------------------------------------------------------- */

/* GPT-2's bytes_to_unicode: printable Latin-1 stands for itself, every
 * other byte for U+0100 upwards, in order. */
static uint32_t byte_char(uint8_t b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable) return b;
    uint32_t n = 0;
    for (uint32_t c = 0; c < b; c++) n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
    return 256 + n;
}

static void append_token(StrBuf *json, const uint8_t *bytes, size_t n, size_t id, bool first) {
    char utf8[8 * 4];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += gpt2_utf8_encode(byte_char(bytes[i]), utf8 + len);
    assert_true(gpt2_strbuf_append_str(json, first ? "{" : ","));
    assert_true(gpt2_json_append_string(json, utf8, len));
    assert_true(gpt2_strbuf_printf(json, ":%zu", id));
}

/* vocab.json: the 256 bytes, n tokens of `width` bytes, <|endoftext|>. */
static void vocab_json(StrBuf *json, const uint8_t *tokens, size_t n, size_t width) {
    for (size_t b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        append_token(json, &byte, 1, b, b == 0);
    }
    for (size_t i = 0; i < n; i++) append_token(json, tokens + i * width, width, 256 + i, false);
    assert_true(gpt2_strbuf_printf(json, ",\"<|endoftext|>\":%zu}", 256 + n));
}

static const char merges_txt[] = "#version: 0.2\n";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* gpt2-convert's reading of vocab.json (the index by bytes, then the
 * tokenizer built on it) with tokens that collided in each old hash. */
static void parse_vocab(const uint8_t *tokens, size_t width, const char *what) {
    StrBuf json = {0};
    vocab_json(&json, tokens, N_FLOOD, width);
    HfVocab v;
    char err[512];
    double t0 = now_s();
    if (!gpt2_hf_vocab_parse(&v, json.data, json.len, "vocab.json", merges_txt, strlen(merges_txt), "merges.txt", err,
                             sizeof err))
        fail_msg("%s: %s", what, err);
    printf("vocab.json of %u tokens colliding in %s: parsed in %.2f s (%.1f MB)\n", N_FLOOD, what, now_s() - t0,
           json.len / 1e6);
    assert_int_equal(v.data.n_vocab, N_FLOOD + 257);
    gpt2_hf_vocab_free(&v);
    gpt2_strbuf_free(&json);
}

static void test_vocab_json_colliding_in_the_old_index(void **state) {
    (void)state;
    uint8_t *tokens = fnv_collisions(N_FLOOD);
    parse_vocab(tokens, 7, "the old vocab.json index (FNV-1a)");
    free(tokens);
}

static void test_vocab_json_colliding_in_the_old_token_table(void **state) {
    (void)state;
    uint8_t *tokens = tokenizer_collisions(N_FLOOD);
    parse_vocab(tokens, 8, "the old tokenizer table");
    free(tokens);
}

/* A model file whose vocabulary collided in the old token table: made by
 * gpt2_convert_random from such a vocab.json, then opened as a user would. */
static void test_model_file_colliding_in_the_old_token_table(void **state) {
    (void)state;
    char dir[4096], path[4200];
    test_mkdtemp(dir, sizeof dir);
    uint8_t *tokens = tokenizer_collisions(N_FLOOD);
    StrBuf json = {0};
    vocab_json(&json, tokens, N_FLOOD, 8);
    free(tokens);
    test_path(path, sizeof path, dir, "vocab.json");
    test_write_file(path, json.data, json.len);
    gpt2_strbuf_free(&json);
    test_path(path, sizeof path, dir, "merges.txt");
    test_write_file(path, merges_txt, strlen(merges_txt));

    ModelConfig c = {.n_ctx = 16, .n_embd = 32, .n_layer = 1, .n_head = 1, .dtype = DTYPE_Q8_0, .ln_eps = 1e-5f};
    char model[4200], err[512];
    test_path(model, sizeof model, dir, "flood.bin");
    if (!gpt2_convert_random(&c, 1, dir, model, NULL, err, sizeof err)) fail_msg("gpt2_convert_random: %s", err);

    Gpt2Options o = {.n_threads = 1};
    double t0 = now_s();
    Gpt2 *g = gpt2_open(model, &o, err, sizeof err);
    if (!g) fail_msg("gpt2_open: %s", err);
    printf("model file with %u tokens colliding in the old tokenizer table: opened in %.2f s\n", N_FLOOD, now_s() - t0);
    assert_int_equal(gpt2_info(g).n_vocab, N_FLOOD + 257);
    gpt2_close(g);
    test_rmtree(dir);
}

/* ---- the merge-pair table and the word cache -------------------------------------- */

/* The tokenizer's merge-pair table and its word cache were open-addressing
 * tables under fixed hashes too: a merge table whose pairs fall in a few
 * neighbouring slots, or a text of distinct words that do, made each search
 * walk all of them.  The tests below make such merge tables and texts
 * against the old hashes, kept here verbatim, and read the slots the keyed
 * tables visit from the tokenizer's probe counters (tokenizer.h, testing
 * build): no clock. */

/* Searches visiting more than this many slots on average, or one visiting
 * more than PROBES_LONGEST, mean that keys collide.  The tables below are
 * at most about a quarter full: under 10000 random keys the means stayed
 * below 1.6 and no search visited more than 24 slots; under the old hashes
 * the means are in the hundreds. */
#define PROBES_MEAN_MAX 3
#define PROBES_LONGEST 64

/* The tokenizer's old pair_slot: Fibonacci hashing of (left << 32 | right),
 * the top `bits` bits for a table of 2^bits slots. */
static size_t old_pair_slot(uint32_t left, uint32_t right, unsigned bits) {
    uint64_t key = (uint64_t)left << 32 | right;
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

/* log2 of the old pair table's size for n merges: the least power of two
 * of at least 16 and 2 n. */
static unsigned old_pair_bits(size_t n_merges) {
    unsigned bits = 4;
    while (((size_t)1 << bits) < 2 * n_merges) bits++;
    return bits;
}

/* The tokenizer's old hash_bytes, of which the word cache took the low 15
 * bits (old_tokenizer_hash8 above is its 8-byte case). */
static uint64_t old_tokenizer_hash(const uint8_t *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

#define OLD_CACHE_SLOTS (1u << 15)

/* Slots visited inserting keys whose home slots are home[0..n), in order,
 * into an empty linear-probing table of cap slots (a power of two): what
 * the old tables paid for them. */
static uint64_t linear_probing_cost(const size_t *home, size_t n, size_t cap) {
    bool *used = calloc(cap, sizeof *used);
    assert_non_null(used);
    uint64_t cost = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = home[k];
        for (cost++; used[i]; cost++) i = (i + 1) & (cap - 1);
        used[i] = true;
    }
    free(used);
    return cost;
}

/* Fails when the searches of a table visited too many slots. */
static void check_probes(const TokenizerProbes *p, const char *what) {
    printf("%s: %llu searches, %.3f slots each on average, %llu at most\n", what, (unsigned long long)p->searches,
           p->searches ? (double)p->slots / (double)p->searches : 0.0, (unsigned long long)p->longest);
    assert_true(p->searches > 0);
    if (p->slots > PROBES_MEAN_MAX * p->searches || p->longest > PROBES_LONGEST) {
        fail_msg("%s: %llu slots for %llu searches, %llu for one: keys collide", what, (unsigned long long)p->slots,
                 (unsigned long long)p->searches, (unsigned long long)p->longest);
    }
}

/* A vocabulary made for the pair table: the 256 bytes (id = byte),
 * <|endoftext|> (256), the 676 tokens "Xy" of an upper-case letter and a
 * lower-case one (ids 257 + 26 X + y, merge ranks 0..675), then for each
 * quad q the token "XyZw" of "Xy" number q / 676 and "Zw" number q % 676.
 * A piece " XyZw" encodes to ' ' and its quad's token where the quad is a
 * merge, else to ' ', "Xy", "Zw". */
#define N_LETTER_PAIRS 676u
#define FIRST_PAIR_ID 257u
#define EOT_ID 256u

typedef struct {
    uint32_t *offsets, *merges;
    uint8_t *bytes;
    TokenizerData data;
} PairVocab;

static uint32_t quad_left(uint32_t q) { return FIRST_PAIR_ID + q / N_LETTER_PAIRS; }
static uint32_t quad_right(uint32_t q) { return FIRST_PAIR_ID + q % N_LETTER_PAIRS; }

static void letter_pair(uint32_t k, uint8_t out[2]) {
    out[0] = (uint8_t)('A' + k / 26);
    out[1] = (uint8_t)('a' + k % 26);
}

/* The piece " XyZw" of quad q. */
static void quad_word(uint32_t q, uint8_t out[5]) {
    out[0] = ' ';
    letter_pair(q / N_LETTER_PAIRS, out + 1);
    letter_pair(q % N_LETTER_PAIRS, out + 3);
}

/* The vocabulary with the quads quads[0..n) as merges of ranks 676... */
static void pair_vocab_make(PairVocab *v, const uint32_t *quads, size_t n) {
    uint32_t n_vocab = FIRST_PAIR_ID + N_LETTER_PAIRS + (uint32_t)n;
    uint32_t n_merges = N_LETTER_PAIRS + (uint32_t)n;
    v->offsets = malloc(((size_t)n_vocab + 1) * sizeof *v->offsets);
    v->bytes = malloc(256 + 13 + 2 * N_LETTER_PAIRS + 4 * n);
    v->merges = malloc((size_t)n_merges * 3 * sizeof *v->merges);
    assert_non_null(v->offsets);
    assert_non_null(v->bytes);
    assert_non_null(v->merges);
    uint32_t at = 0, id = 0;
    for (; id < 256; id++) {
        v->offsets[id] = at;
        v->bytes[at++] = (uint8_t)id;
    }
    v->offsets[id++] = at;
    memcpy(v->bytes + at, "<|endoftext|>", 13);
    at += 13;
    for (uint32_t k = 0; k < N_LETTER_PAIRS; k++, id++) {
        v->offsets[id] = at;
        letter_pair(k, v->bytes + at);
        uint32_t *m = v->merges + (size_t)k * 3;
        m[0] = v->bytes[at];
        m[1] = v->bytes[at + 1];
        m[2] = id;
        at += 2;
    }
    for (size_t i = 0; i < n; i++, id++) {
        v->offsets[id] = at;
        uint8_t word[5];
        quad_word(quads[i], word);
        memcpy(v->bytes + at, word + 1, 4);
        at += 4;
        uint32_t *m = v->merges + (N_LETTER_PAIRS + i) * 3;
        m[0] = quad_left(quads[i]);
        m[1] = quad_right(quads[i]);
        m[2] = id;
    }
    v->offsets[id] = at;
    v->data = (TokenizerData){.n_vocab = n_vocab,
                              .offsets = v->offsets,
                              .bytes = v->bytes,
                              .n_merges = n_merges,
                              .merges = v->merges,
                              .eot_id = EOT_ID};
}

static void pair_vocab_free(PairVocab *v) {
    free(v->offsets);
    free(v->bytes);
    free(v->merges);
}

#define N_PAIR_FLOOD 3500u  /* merges whose pairs collide in the old pair table */
#define N_PAIR_ABSENT 1000u /* pairs of the same slots that are no merge */
#define PAIR_WINDOW 256u    /* the slots they share, of 2^14 */

/* The first n quads, in order, whose pairs' old slots lie in the first
 * PAIR_WINDOW of the table that the vocabulary with N_PAIR_FLOOD quads had. */
static uint32_t *pair_collisions(size_t n) {
    unsigned bits = old_pair_bits(N_LETTER_PAIRS + N_PAIR_FLOOD);
    uint32_t *quads = malloc(n * sizeof *quads);
    assert_non_null(quads);
    size_t made = 0;
    for (uint32_t q = 0; q < N_LETTER_PAIRS * N_LETTER_PAIRS && made < n; q++) {
        if (old_pair_slot(quad_left(q), quad_right(q), bits) < PAIR_WINDOW) quads[made++] = q;
    }
    assert_int_equal(made, n);
    return quads;
}

/* What the old pair table paid for inserting v's merges. */
static uint64_t old_pair_table_cost(const PairVocab *v) {
    const TokenizerData *d = &v->data;
    unsigned bits = old_pair_bits(d->n_merges);
    size_t *home = malloc(d->n_merges * sizeof *home);
    assert_non_null(home);
    for (uint32_t r = 0; r < d->n_merges; r++) home[r] = old_pair_slot(d->merges[r * 3], d->merges[r * 3 + 1], bits);
    uint64_t cost = linear_probing_cost(home, d->n_merges, (size_t)1 << bits);
    free(home);
    return cost;
}

/* The pieces " XyZw" of quads[0..n) and the ids they encode to, the first
 * n_merged of them being merges. */
static void quad_text(const uint32_t *quads, size_t n, size_t n_merged, StrBuf *text, TokenList *want) {
    for (size_t i = 0; i < n; i++) {
        uint8_t word[5];
        quad_word(quads[i], word);
        assert_true(gpt2_strbuf_append(text, word, sizeof word));
        assert_true(gpt2_token_list_push(want, ' '));
        if (i < n_merged) {
            assert_true(gpt2_token_list_push(want, (int32_t)(FIRST_PAIR_ID + N_LETTER_PAIRS + i)));
        } else {
            assert_true(gpt2_token_list_push(want, (int32_t)quad_left(quads[i])));
            assert_true(gpt2_token_list_push(want, (int32_t)quad_right(quads[i])));
        }
    }
}

#define N_WORD_FLOOD 4000u
#define WORD_WINDOW 64u /* the slots they share, of the word cache's 2^15 */

/* n distinct pieces " abcdef" (a space and six lower-case letters) whose old
 * hashes put them in the first WORD_WINDOW slots of the old word cache. */
static uint8_t *word_collisions(size_t n) {
    uint8_t *out = malloc(n * 7);
    assert_non_null(out);
    size_t made = 0;
    for (uint32_t i = 0; made < n; i++) {
        uint8_t *w = out + made * 7;
        uint32_t x = i;
        w[0] = ' ';
        for (int k = 1; k < 7; k++, x /= 26) w[k] = (uint8_t)('a' + x % 26);
        assert_int_equal(x, 0);
        if ((old_tokenizer_hash(w, 7) & (OLD_CACHE_SLOTS - 1)) < WORD_WINDOW) made++;
    }
    return out;
}

/* What the old word cache paid for inserting the n pieces. */
static uint64_t old_word_cache_cost(const uint8_t *words, size_t n) {
    size_t *home = malloc(n * sizeof *home);
    assert_non_null(home);
    for (size_t i = 0; i < n; i++) home[i] = (size_t)old_tokenizer_hash(words + i * 7, 7) & (OLD_CACHE_SLOTS - 1);
    uint64_t cost = linear_probing_cost(home, n, OLD_CACHE_SLOTS);
    free(home);
    return cost;
}

static void check_encodes(Tokenizer *t, const StrBuf *text, const TokenList *want) {
    TokenList got = {0};
    assert_true(gpt2_tokenizer_encode(t, (const uint8_t *)text->data, text->len, false, &got));
    assert_int_equal(got.n, want->n);
    for (size_t i = 0; i < got.n; i++) {
        if (got.ids[i] != want->ids[i]) fail_msg("id %zu: got %d, want %d", i, got.ids[i], want->ids[i]);
    }
    gpt2_token_list_free(&got);
}

/* Merges whose pairs collided in the old table: building visits few slots
 * per merge, and so does looking up their pairs, and pairs of the same
 * slots that are no merge, while encoding, which gives the right ids. */
static void test_merges_colliding_in_the_old_pair_table(void **state) {
    (void)state;
    uint32_t *quads = pair_collisions(N_PAIR_FLOOD + N_PAIR_ABSENT);
    PairVocab v;
    pair_vocab_make(&v, quads, N_PAIR_FLOOD);
    uint64_t old_cost = old_pair_table_cost(&v);
    printf("%u merges, %u colliding in the old pair table: %llu slots to build it\n", v.data.n_merges, N_PAIR_FLOOD,
           (unsigned long long)old_cost);
    assert_true(old_cost > 100 * (uint64_t)v.data.n_merges);

    Tokenizer *t;
    char err[512];
    if (!gpt2_tokenizer_build(&t, &v.data, err, sizeof err)) fail_msg("%s", err);
    TokenizerStats s = gpt2_tokenizer_stats(t);
    assert_int_equal(s.pair_build.searches, v.data.n_merges);
    check_probes(&s.pair_build, "building the pair table");

    StrBuf text = {0};
    TokenList want = {0};
    quad_text(quads, N_PAIR_FLOOD + N_PAIR_ABSENT, N_PAIR_FLOOD, &text, &want);
    check_encodes(t, &text, &want);
    s = gpt2_tokenizer_stats(t);
    check_probes(&s.pair_table, "looking pairs up");

    gpt2_tokenizer_free(t);
    gpt2_strbuf_free(&text);
    gpt2_token_list_free(&want);
    pair_vocab_free(&v);
    free(quads);
}

/* A text of distinct words that collided in the old word cache: looking
 * each up and inserting it visits few slots, and so does finding them all
 * again, with the same ids. */
static void test_words_colliding_in_the_old_word_cache(void **state) {
    (void)state;
    uint8_t *words = word_collisions(N_WORD_FLOOD);
    uint64_t old_cost = old_word_cache_cost(words, N_WORD_FLOOD);
    printf("%u words colliding in the old word cache: %llu slots to insert them\n", N_WORD_FLOOD,
           (unsigned long long)old_cost);
    assert_true(old_cost > 100 * (uint64_t)N_WORD_FLOOD);

    PairVocab v;
    pair_vocab_make(&v, NULL, 0);
    Tokenizer *t;
    char err[512];
    if (!gpt2_tokenizer_build(&t, &v.data, err, sizeof err)) fail_msg("%s", err);
    StrBuf text = {0};
    TokenList want = {0};
    assert_true(gpt2_strbuf_append(&text, words, (size_t)N_WORD_FLOOD * 7));
    for (size_t i = 0; i < text.len; i++) assert_true(gpt2_token_list_push(&want, (uint8_t)text.data[i]));

    check_encodes(t, &text, &want);
    TokenizerStats s = gpt2_tokenizer_stats(t);
    assert_int_equal(s.pieces, N_WORD_FLOOD);
    assert_int_equal(s.cache_hits, 0);
    assert_int_equal(s.word_cache.searches, 2 * N_WORD_FLOOD); /* a miss, then the insertion */
    check_probes(&s.word_cache, "inserting the words in the cache");

    check_encodes(t, &text, &want);
    s = gpt2_tokenizer_stats(t);
    assert_int_equal(s.cache_hits, N_WORD_FLOOD);
    check_probes(&s.word_cache, "inserting the words, then finding them again");

    gpt2_tokenizer_free(t);
    gpt2_strbuf_free(&text);
    gpt2_token_list_free(&want);
    pair_vocab_free(&v);
    free(words);
}

/* The key moves entries, never results: under two keys (and a random one)
 * the same text gives the same ids, and a repeated merge the same message,
 * while the tables visit different slots. */
static void test_results_do_not_depend_on_the_key(void **state) {
    (void)state;
    uint32_t *quads = pair_collisions(N_PAIR_FLOOD + N_PAIR_ABSENT);
    uint8_t *words = word_collisions(N_WORD_FLOOD);
    PairVocab v;
    pair_vocab_make(&v, quads, N_PAIR_FLOOD);
    StrBuf text = {0};
    TokenList want = {0};
    quad_text(quads, N_PAIR_FLOOD + N_PAIR_ABSENT, N_PAIR_FLOOD, &text, &want);
    assert_true(gpt2_strbuf_append(&text, words, (size_t)N_WORD_FLOOD * 7));
    for (size_t i = 0; i < (size_t)N_WORD_FLOOD * 7; i++) assert_true(gpt2_token_list_push(&want, words[i]));

    const HashKey keys[2] = {{1, 2}, {0x0123456789ABCDEFull, 0xFEDCBA9876543210ull}};
    TokenizerStats stats[2];
    char err[2][512];
    for (int k = 0; k < 2; k++) {
        Tokenizer *t;
        if (!gpt2_tokenizer_build_keyed(&t, &v.data, keys[k], err[k], sizeof err[k])) fail_msg("%s", err[k]);
        HashKey used = gpt2_tokenizer_key(t);
        assert_true(used.k0 == keys[k].k0 && used.k1 == keys[k].k1);
        check_encodes(t, &text, &want);
        stats[k] = gpt2_tokenizer_stats(t);
        gpt2_tokenizer_free(t);
    }
    assert_true(stats[0].pair_build.slots != stats[1].pair_build.slots ||
                stats[0].pair_table.slots != stats[1].pair_table.slots);
    assert_true(stats[0].word_cache.slots != stats[1].word_cache.slots);

    /* Two tokenizers built the ordinary way draw keys of their own. */
    Tokenizer *a, *b;
    if (!gpt2_tokenizer_build(&a, &v.data, err[0], sizeof err[0])) fail_msg("%s", err[0]);
    if (!gpt2_tokenizer_build(&b, &v.data, err[0], sizeof err[0])) fail_msg("%s", err[0]);
    HashKey ka = gpt2_tokenizer_key(a), kb = gpt2_tokenizer_key(b);
    assert_false(ka.k0 == kb.k0 && ka.k1 == kb.k1);
    check_encodes(a, &text, &want);
    check_encodes(b, &text, &want);
    gpt2_tokenizer_free(a);
    gpt2_tokenizer_free(b);

    /* The last merge repeats the pair of the middle one: the message names
     * the same two merges whatever the key. */
    uint32_t *last = v.merges + (size_t)(v.data.n_merges - 1) * 3;
    const uint32_t *middle = v.merges + (size_t)(N_LETTER_PAIRS + N_PAIR_FLOOD / 2) * 3;
    memcpy(last, middle, 3 * sizeof *last);
    for (int k = 0; k < 2; k++) {
        Tokenizer *t;
        assert_false(gpt2_tokenizer_build_keyed(&t, &v.data, keys[k], err[k], sizeof err[k]));
        assert_null(t);
    }
    printf("repeated merge: %s\n", err[0]);
    assert_string_equal(err[0], err[1]);
    assert_non_null(strstr(err[0], "repeats the pair"));

    gpt2_strbuf_free(&text);
    gpt2_token_list_free(&want);
    pair_vocab_free(&v);
    free(words);
    free(quads);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_json_colliding_in_the_old_index),
        cmocka_unit_test(test_vocab_json_colliding_in_the_old_token_table),
        cmocka_unit_test(test_model_file_colliding_in_the_old_token_table),
        cmocka_unit_test(test_merges_colliding_in_the_old_pair_table),
        cmocka_unit_test(test_words_colliding_in_the_old_word_cache),
        cmocka_unit_test(test_results_do_not_depend_on_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
