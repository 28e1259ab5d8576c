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
 * record, never asserted.
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_json_colliding_in_the_old_index),
        cmocka_unit_test(test_vocab_json_colliding_in_the_old_token_table),
        cmocka_unit_test(test_model_file_colliding_in_the_old_token_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
