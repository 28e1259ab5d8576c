/* test_formats.c - every checkpoint layout of ../shared/reference/formats.
 *
 * Each fixture is converted by the built gpt2-convert (with --dtype f32,
 * which widens float16 exactly) and the engine is held to the bars of
 * test_engine.c against the fixture's own float64 reference: logits and
 * per-token NLL within 1e-3, mean NLL within 1e-4, argmax and greedy
 * continuations exact where the reference's margin exceeds 1e-3.
 *
 * The hostile pickles must be refused with one line each, and running
 * them must not create the file their globals would create.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "convert.h"
#include "dtype.h"
#include "gguf.h"
#include "hf_vocab.h"
#include "model.h"
#include "pickle.h"
#include "test_reference.h"
#include "test_util.h"
#include "tokenizer.h"
#include "torch_checkpoint.h"
#include "zip.h"

/* Converts formats/SOURCE (a folder or file) with extra arguments and
 * checks it against formats/EXPECTED (or reference/EXPECTED). */
static void check_layout(const char *shared, const char *source, const char *dtype, const char *expected) {
    char tmp[4096], out[4200], src[4096], exp[4096];
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(out, sizeof out, "%s/model.bin", tmp);
    snprintf(src, sizeof src, "%s/reference/formats/%s", shared, source);
    snprintf(exp, sizeof exp, "%s/reference/%s", shared, expected);
    char convert[4200];
    snprintf(convert, sizeof convert, "%s/gpt2-convert", test_build_dir());
    const char *argv[] = {convert, src, out, "--dtype", dtype, "-q", NULL};
    RunResult r;
    test_run(argv, NULL, &r);
    if (r.status != 0) fail_msg("gpt2-convert %s: %s", source, r.err.data);
    test_run_free(&r);
    /* The same bars for every dtype: q8_0 weights multiply activations
     * quantized to 24-bit integers in three int8 digits (kernels.h). */
    Checks k = {.logit_tol = 1e-3, .nll_tol = 1e-3, .mean_nll_tol = 1e-4, .margin_floor = 1e-3};
    check_model_against(out, exp, &k);
    printf("%s (%s): worst logit %.2g, nll %.2g, mean nll %.2g; argmax %zu/%zu, greedy %zu\n", source, dtype,
           k.worst_logit, k.worst_nll, k.worst_mean_nll, k.argmax_equal, k.argmax_checked, k.greedy_checked);
    assert_true(k.argmax_checked > 100);
    assert_true(k.greedy_checked > 40);
    test_rmtree(tmp);
}

static void test_torch_zip_f32(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    check_layout(shared, "tiny/torch-zip-f32", "f32", "tiny/expected.json");
    check_layout(shared, "tiny/torch-zip-f32/pytorch_model.bin", "f32", "tiny/expected.json");
}

static void test_torch_zip_f16(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    check_layout(shared, "tiny/torch-zip-f16", "f32", "formats/tiny/expected_f16.json");
    check_layout(shared, "small/torch-zip-f16", "f32", "formats/small/expected_f16.json");
}

static void test_torch_legacy(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    check_layout(shared, "tiny/torch-legacy-f32", "f32", "tiny/expected.json");
}

static void test_sharded(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    check_layout(shared, "tiny/torch-sharded", "f32", "tiny/expected.json");
    check_layout(shared, "tiny/safetensors-sharded", "f32", "tiny/expected.json");
    check_layout(shared, "tiny/safetensors-sharded/model.safetensors.index.json", "f32", "tiny/expected.json");
}

static void test_gguf(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    check_layout(shared, "tiny/gguf-f32.gguf", "f32", "tiny/expected.json");
    check_layout(shared, "tiny/gguf-f16.gguf", "f32", "formats/tiny/expected_gguf_f16.json");
    check_layout(shared, "tiny/gguf-bf16.gguf", "f32", "formats/tiny/expected_bf16.json");
    check_layout(shared, "tiny/gguf-bf16.gguf", "bf16", "formats/tiny/expected_bf16.json");
    check_layout(shared, "small/gguf-q8_0.gguf", "f32", "formats/small/expected_q8_0.json");
    check_layout(shared, "small/gguf-q8_0.gguf", "q8_0", "formats/small/expected_q8_0.json");
}

/* Matrix m of the model file holds exactly the GGUF tensor t's blocks:
 * every row's scales and quants. */
static void same_blocks(const Matrix *m, const CkTensor *t, bool transposed_view, const char *name) {
    assert_int_equal(m->dtype, DTYPE_Q8_0);
    assert_int_equal(t->dtype, CK_Q8_0);
    size_t blocks = m->cols / Q8_BLOCK;
    (void)transposed_view;
    for (size_t r = 0; r < m->rows; r++) {
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *g = t->data + (r * blocks + b) * CK_Q8_0_BLOCK_BYTES;
            const uint8_t *panel = (const uint8_t *)m->data + (r / PANEL_ROWS * blocks + b) * Q8_BLOCK_BYTES;
            size_t i = r % PANEL_ROWS;
            if (memcmp(panel + 2 * i, g, 2) != 0) fail_msg("%s row %zu block %zu: scale differs", name, r, b);
            for (size_t c = 0; c < Q8_BLOCK; c++)
                if (panel[q8_quant_offset(i, c)] != g[2 + c])
                    fail_msg("%s row %zu column %zu: quant differs", name, r, b * Q8_BLOCK + c);
        }
    }
}

/* A Q8_0 GGUF converted with --dtype q8_0 holds the GGUF's own blocks. */
static void test_gguf_q8_0_blocks_carried_over(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    char tmp[4096], out[4200], src[4096], convert[4200], err[512];
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(out, sizeof out, "%s/model.bin", tmp);
    snprintf(src, sizeof src, "%s/reference/formats/small/gguf-q8_0.gguf", shared);
    snprintf(convert, sizeof convert, "%s/gpt2-convert", test_build_dir());
    const char *argv[] = {convert, src, out, "--dtype", "q8_0", "-q", NULL};
    RunResult r;
    test_run(argv, NULL, &r);
    if (r.status != 0) fail_msg("gpt2-convert: %s", r.err.data);
    test_run_free(&r);
    Checkpoint ck = {0};
    ModelConfig c = {0};
    if (!gpt2_gguf_open(&ck, &c, NULL, src, err, sizeof err)) fail_msg("%s", err);
    assert_true(gpt2_checkpoint_seal(&ck, err, sizeof err));
    Model m;
    if (!gpt2_model_open(&m, out, err, sizeof err)) fail_msg("%s", err);
    same_blocks(&m.weights.wte, gpt2_checkpoint_find(&ck, "wte.weight"), false, "wte");
    size_t matrices = 1;
    for (uint32_t l = 0; l < m.config.n_layer; l++) {
        static const char *const names[] = {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                                            "mlp.c_proj.weight"};
        const LayerWeights *w = &m.weights.layers[l];
        const Matrix *mats[] = {&w->qkv, &w->proj, &w->fc, &w->mlp};
        for (size_t k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, "h.%u.%s", l, names[k]);
            const CkTensor *t = gpt2_checkpoint_find(&ck, name);
            assert_non_null(t);
            same_blocks(mats[k], t, true, name);
            matrices++;
        }
    }
    printf("%zu matrices hold the GGUF's blocks byte for byte\n", matrices);
    gpt2_model_close(&m);
    gpt2_checkpoint_close(&ck);
    test_rmtree(tmp);
}

/* The type field of tensor `name` in the GGUF directory of b. */
static uint8_t *gguf_type_field(StrBuf *b, const char *name) {
    char key[64];
    size_t len = strlen(name);
    memset(key, 0, 8);
    key[0] = (char)len;
    memcpy(key + 8, name, len);
    for (size_t i = 0; i + 8 + len <= b->len; i++)
        if (memcmp(b->data + i, key, 8 + len) == 0) return (uint8_t *)b->data + i + 8 + len + 4 + 16;
    fail_msg("no tensor %s", name);
    return NULL;
}

/* ---- a GGUF of metadata only -------------------------------------------- */

static void gguf_u32(StrBuf *b, uint32_t v) {
    uint8_t x[4];
    wr_u32(x, v);
    gpt2_strbuf_append(b, x, 4);
}

static void gguf_u64(StrBuf *b, uint64_t v) {
    uint8_t x[8];
    wr_u64(x, v);
    gpt2_strbuf_append(b, x, 8);
}

static void gguf_str(StrBuf *b, const char *s, size_t n) {
    gguf_u64(b, n);
    gpt2_strbuf_append(b, s, n);
}

static void gguf_key_u32(StrBuf *b, const char *key, uint32_t v) {
    gguf_str(b, key, strlen(key));
    gguf_u32(b, 4); /* UINT32 */
    gguf_u32(b, v);
}

/* GPT-2's printable character for byte c, as UTF-8 (vocab.json's spelling). */
static size_t byte_char(int c, char *out) {
    uint32_t cp = (uint32_t)c;
    if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) {
        uint32_t k = 0; /* the k-th byte that does not stand for itself */
        for (int d = 0; d < c; d++)
            if (!((d >= 0x21 && d <= 0x7E) || (d >= 0xA1 && d <= 0xAC) || (d >= 0xAE && d <= 0xFF))) k++;
        cp = 0x100 + k;
    }
    if (cp < 0x80) return out[0] = (char)cp, 1;
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* llama.cpp stores a fine-tune's added tokens at the end of its token list,
 * as raw text, typed CONTROL (3) or USER_DEFINED (4), and the rows of a
 * padded vocabulary as UNUSED (5) "[PADn]"; "<|endoftext|>" is CONTROL too
 * but GPT-2's own.  Those after the last ordinary token become added
 * tokens, their bytes the text itself (not GPT-2's byte map). */
static void test_gguf_added_tokens(void **state) {
    (void)state;
    static const struct {
        const char *text;
        uint32_t type;
    } tail[] = {{"<|endoftext|>", 3}, {"<|pad|>", 3}, {"\xC3\xA9t\xC3\xA9", 4}, {"[PAD259]", 5}};
    const uint32_t n_tokens = 256 + 4;
    StrBuf b = {0};
    gpt2_strbuf_append(&b, "GGUF", 4);
    gguf_u32(&b, 3);
    gguf_u64(&b, 0); /* tensors */
    gguf_u64(&b, 8); /* key-values */
    gguf_str(&b, "general.architecture", 20);
    gguf_u32(&b, 8); /* STRING */
    gguf_str(&b, "gpt2", 4);
    gguf_key_u32(&b, "gpt2.context_length", 16);
    gguf_key_u32(&b, "gpt2.embedding_length", 32);
    gguf_key_u32(&b, "gpt2.block_count", 1);
    gguf_key_u32(&b, "gpt2.attention.head_count", 2);
    gguf_str(&b, "tokenizer.ggml.tokens", 21);
    gguf_u32(&b, 9); /* ARRAY */
    gguf_u32(&b, 8); /* of STRING */
    gguf_u64(&b, n_tokens);
    for (int c = 0; c < 256; c++) {
        char ch[2];
        gguf_str(&b, ch, byte_char(c, ch));
    }
    for (size_t i = 0; i < 4; i++) gguf_str(&b, tail[i].text, strlen(tail[i].text));
    gguf_str(&b, "tokenizer.ggml.token_type", 25);
    gguf_u32(&b, 9);
    gguf_u32(&b, 5); /* of INT32 */
    gguf_u64(&b, n_tokens);
    for (int c = 0; c < 256; c++) gguf_u32(&b, 1); /* NORMAL */
    for (size_t i = 0; i < 4; i++) gguf_u32(&b, tail[i].type);
    gguf_str(&b, "tokenizer.ggml.merges", 21);
    gguf_u32(&b, 9);
    gguf_u32(&b, 8);
    gguf_u64(&b, 0);
    while (b.len % 32) gpt2_strbuf_append(&b, "", 1); /* the (empty) data starts aligned */
    Checkpoint ck = {0};
    ModelConfig c = {0};
    HfVocab v;
    char err[512];
    if (!gpt2_gguf_parse(&ck, &c, &v, (const uint8_t *)b.data, b.len, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(v.data.n_vocab, n_tokens);
    assert_int_equal(v.data.n_added, 3);
    assert_int_equal(v.data.eot_id, 256);
    for (uint32_t id = 257; id < n_tokens; id++) {
        const char *want = tail[id - 256].text;
        assert_int_equal(v.offsets[id + 1] - v.offsets[id], strlen(want));
        assert_memory_equal(v.bytes + v.offsets[id], want, strlen(want));
    }
    Tokenizer *t;
    assert_true(gpt2_tokenizer_build(&t, &v.data, err, sizeof err));
    TokenList ids = {0};
    const char *text = "a<|pad|>\xC3\xA9t\xC3\xA9<|endoftext|>";
    assert_true(gpt2_tokenizer_encode(t, (const uint8_t *)text, strlen(text), true, &ids));
    assert_int_equal(ids.n, 4);
    assert_int_equal(ids.ids[0], 'a');
    assert_int_equal(ids.ids[1], 257);
    assert_int_equal(ids.ids[2], 258);
    assert_int_equal(ids.ids[3], 256);
    gpt2_token_list_free(&ids);
    gpt2_tokenizer_free(t);
    gpt2_hf_vocab_free(&v);
    gpt2_checkpoint_close(&ck);
    /* Without token types, every token is read in GPT-2's byte map, where
     * "\xC3\xA9" (U+00E9) stands for the byte 0xE9: nothing is added. */
    size_t at = 0;
    while (at + 25 <= b.len && memcmp(b.data + at, "tokenizer.ggml.token_type", 25) != 0) at++;
    assert_true(at + 25 <= b.len);
    b.data[at] = 'X';
    Checkpoint ck2 = {0};
    if (!gpt2_gguf_parse(&ck2, &c, &v, (const uint8_t *)b.data, b.len, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(v.data.n_added, 0);
    assert_int_equal(v.offsets[259] - v.offsets[258], 3);
    assert_memory_equal(v.bytes + v.offsets[258], "\xE9t\xE9", 3);
    gpt2_hf_vocab_free(&v);
    gpt2_checkpoint_close(&ck2);
    gpt2_strbuf_free(&b);
}

/* Refusals: a type other than F32, F16, BF16 and Q8_0, by name; an
 * output.weight that is not token_embd.weight. */
static void test_gguf_refusals(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    char tmp[4096], path[4200], src[4096], err[512];
    snprintf(src, sizeof src, "%s/reference/formats/tiny/gguf-f32.gguf", shared);
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/bad.gguf", tmp);
    StrBuf b = {0};
    test_read_file(src, &b);
    uint8_t *type = gguf_type_field(&b, "token_embd.weight");
    type[0] = 12; /* Q4_K */
    test_write_file(path, b.data, b.len);
    ConvertOptions o = {path, NULL, "/nonexistent/out.bin", DTYPE_F32, NULL};
    assert_false(gpt2_convert_hf(&o, err, sizeof err));
    if (!strstr(err, "has GGUF type Q4_K")) fail_msg("%s", err);
    type[0] = 0;
    type = gguf_type_field(&b, "output.weight");
    type[0] = 1; /* F16: no longer token_embd's copy */
    test_write_file(path, b.data, b.len);
    assert_false(gpt2_convert_hf(&o, err, sizeof err));
    if (!strstr(err, "output.weight differs from token_embd.weight")) fail_msg("%s", err);
    /* Cut anywhere in its metadata and directory, it is refused. */
    type[0] = 0;
    for (size_t n = 0; n < 2000000; n += 99991) {
        Checkpoint ck = {0};
        ModelConfig c = {0};
        HfVocab v;
        if (gpt2_gguf_parse(&ck, &c, &v, (const uint8_t *)b.data, n, err, sizeof err)) fail_msg("cut at %zu read", n);
        assert_null(strchr(err, '\n'));
        gpt2_checkpoint_close(&ck);
    }
    gpt2_strbuf_free(&b);
    test_rmtree(tmp);
}

/* tokenizer.json instead of vocab.json and merges.txt, in both spellings
 * of its merges. */
static void test_tokenizer_json(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    check_layout(shared, "tiny/tokenizer-json", "f32", "tiny/expected.json");
    check_layout(shared, "tiny/tokenizer-json-pairs", "f32", "tiny/expected.json");
    static const struct {
        const char *text, *phrase;
    } bad[] = {
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[1]}}", "model.merges entry 0 is neither"},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[[\"a\",\"b c\"]]}}", "model.merges entry 0 is neither"},
        {"{\"model\":{\"type\":\"WordPiece\",\"vocab\":{},\"merges\":[]}}", "no BPE model"},
        {"{\"model\":[]}", "no BPE model"},
        {"[", "tokenizer.json: "},
    };
    char tmp[4096], path[4200], err[512];
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        HfVocab v;
        test_write_file(path, bad[i].text, strlen(bad[i].text));
        assert_false(gpt2_hf_vocab_load_tokenizer_json(&v, path, err, sizeof err));
        if (!strstr(err, bad[i].phrase)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].phrase);
    }
    test_rmtree(tmp);
}

/* Converts folder dir (made here) to dir/model.bin, named in out: links to
 * the files of formats/tiny-added but those in `skip` (names separated by
 * spaces), and maybe one more file.  False with gpt2_convert_hf's message
 * in err when it refuses. */
static bool convert_added(const char *shared, const char *dir, const char *skip, const char *extra_name,
                          const char *extra, char *out, size_t outsz, char *err, size_t errsz) {
    static const char *const names[] = {"added_tokens.json", "config.json",    "merges.txt",
                                        "model.safetensors", "tokenizer.json", "vocab.json"};
    char from[4300], to[4300];
    if (mkdir(dir, 0755) != 0) fail_msg("mkdir %s", dir);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strstr(skip, names[i])) continue;
        snprintf(from, sizeof from, "%s/reference/formats/tiny-added/%s", shared, names[i]);
        snprintf(to, sizeof to, "%s/%s", dir, names[i]);
        if (symlink(from, to) != 0) fail_msg("symlink %s", to);
    }
    if (extra_name) {
        snprintf(to, sizeof to, "%s/%s", dir, extra_name);
        test_write_file(to, extra, strlen(extra));
    }
    snprintf(out, outsz, "%s/model.bin", dir);
    ConvertOptions o = {dir, NULL, out, DTYPE_F32, NULL};
    return gpt2_convert_hf(&o, err, errsz);
}

/* Each text of added_texts, encoded with the added tokens matched as
 * specials, gives its case's ids, and the ids decode back to it. */
static void check_added_texts(const char *model, const char *expected) {
    StrBuf text = {0};
    JsonDoc doc;
    char err[512];
    test_read_file(expected, &text);
    if (!gpt2_json_parse(&doc, text.data, text.len, err, sizeof err)) fail_msg("%s", err);
    Gpt2Options o = {.n_threads = 1};
    Gpt2 *g = gpt2_open(model, &o, err, sizeof err);
    if (!g) fail_msg("%s", err);
    assert_int_equal(gpt2_info(g).n_added, 2);
    const JsonValue *texts = member(doc.root, "added_texts"), *cases = member(doc.root, "cases");
    size_t checked = 0;
    JsonIter it = gpt2_json_iter(cases);
    const JsonValue *c;
    while ((c = gpt2_json_next(&it, NULL))) {
        const JsonValue *name = member(c, "name"), *t = gpt2_json_get(texts, gpt2_json_string(name, NULL));
        if (!t) continue;
        size_t n_want, n_got, len;
        int32_t *want = ids_of(member(c, "ids"), &n_want), *got;
        const char *s = gpt2_json_string(t, &len);
        assert_true(gpt2_tokenize(g, s, len, true, &got, &n_got, err, sizeof err));
        assert_int_equal(n_got, n_want);
        assert_memory_equal(got, want, n_want * sizeof *want);
        StrBuf back = {0};
        for (size_t i = 0; i < n_got; i++) {
            size_t n_bytes;
            const char *bytes = gpt2_token_bytes(g, got[i], &n_bytes);
            assert_non_null(bytes);
            gpt2_strbuf_append(&back, bytes, n_bytes);
        }
        assert_int_equal(back.len, len);
        assert_memory_equal(back.data, s, len);
        gpt2_strbuf_free(&back);
        /* Without special, the added tokens' text is ordinary text. */
        free(got);
        assert_true(gpt2_tokenize(g, s, len, false, &got, &n_got, err, sizeof err));
        for (size_t i = 0; i < n_got; i++) assert_true(got[i] < 50257);
        free(got);
        free(want);
        checked++;
    }
    assert_int_equal(checked, 2);
    gpt2_close(g);
    gpt2_json_free(&doc);
    gpt2_strbuf_free(&text);
}

/* A fine-tune with two added tokens (vocab_size 50259), named by
 * added_tokens.json or by tokenizer.json's added_tokens: the model meets
 * the usual bars on its reference, including the cases whose ids hold the
 * added tokens, and --special matches them in text. */
static void test_added_tokens(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    char tmp[4096], dir[4200], out[4300], expected[4200], err[512];
    snprintf(expected, sizeof expected, "%s/reference/formats/tiny-added/expected.json", shared);
    check_layout(shared, "tiny-added", "f32", "formats/tiny-added/expected.json");
    test_mkdtemp(tmp, sizeof tmp);
    static const char *const skips[] = {"tokenizer.json", "added_tokens.json",
                                        "added_tokens.json vocab.json merges.txt"};
    for (size_t i = 0; i < sizeof skips / sizeof *skips; i++) {
        snprintf(dir, sizeof dir, "%s/%zu", tmp, i);
        if (!convert_added(shared, dir, skips[i], NULL, NULL, out, sizeof out, err, sizeof err))
            fail_msg("without %s: %s", skips[i], err);
        check_added_texts(out, expected);
    }
    /* Lists that contradict the vocabulary or themselves, or are malformed. */
    static const struct {
        const char *skip, *name, *text, *phrase;
    } bad[] = {
        {"added_tokens.json", "added_tokens.json", "{\"<|pad|>\": 50257, \"<|sep|>\": 50259}",
         "has id 50259, but the model has 50259 token embeddings"},
        {"added_tokens.json", "added_tokens.json", "{\"<|pad|>\": 50257, \"<|sep|>\": 50258, \"<|x|>\": 50256}",
         "has id 50256, which the vocabulary gives to \"<|endoftext|>\""},
        {"added_tokens.json", "added_tokens.json", "{\"<|pad|>\": 50257, \"<|sep|>\": 50257}",
         "id 50257 is given to two added tokens"},
        {"added_tokens.json tokenizer.json", "tokenizer.json",
         "{\"added_tokens\": [{\"id\": 50257, \"content\": \"<|pad|>\"}, {\"id\": 50258, \"content\": \"<|pad|>\"}]}",
         "tokens 50257 and 50258 have the same bytes"},
        {"added_tokens.json", "added_tokens.json", "{\"<|pad|>\": 50257, \"<|endoftext|>\": 50258}",
         "tokens 50256 and 50258 have the same bytes"},
        {"added_tokens.json", "added_tokens.json", "[50257]", "expected a JSON object of added tokens"},
        {"added_tokens.json", "added_tokens.json", "{\"<|pad|>\": 50257, \"<|sep|>\": -1}",
         "\"<|sep|>\": the id is not a non-negative integer"},
        {"added_tokens.json tokenizer.json", "tokenizer.json", "{\"added_tokens\": [{\"id\": 50257}]}",
         "added_tokens entry 0 has no \"content\" string"},
    };
    /* Rows no list names become placeholders (a vocabulary padded to a
     * round size), and an added token may repeat an ordinary token's text
     * (Hugging Face's add_tokens(" hello")). */
    static const struct {
        const char *skip, *name, *text, *token_50257, *token_50258;
    } good[] = {
        {"added_tokens.json tokenizer.json", NULL, NULL, "[PAD50257]", "[PAD50258]"},
        {"added_tokens.json", "added_tokens.json", "{\"<|pad|>\": 50257}", "<|pad|>", "[PAD50258]"},
        {"added_tokens.json", "added_tokens.json", "{\"<|pad|>\": 50257, \" hello\": 50258}", "<|pad|>", " hello"},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        snprintf(dir, sizeof dir, "%s/good%zu", tmp, i);
        if (!convert_added(shared, dir, good[i].skip, good[i].name, good[i].text, out, sizeof out, err, sizeof err))
            fail_msg("good case %zu: %s", i, err);
        Gpt2Options go = {.n_threads = 1};
        Gpt2 *g = gpt2_open(out, &go, err, sizeof err);
        if (!g) fail_msg("%s", err);
        const char *want[2] = {good[i].token_50257, good[i].token_50258};
        for (int k = 0; k < 2; k++) {
            size_t len;
            const char *bytes = gpt2_token_bytes(g, 50257 + k, &len);
            assert_non_null(bytes);
            assert_int_equal(len, strlen(want[k]));
            assert_memory_equal(bytes, want[k], len);
        }
        /* " hello" in special mode is the added token; otherwise GPT-2's. */
        int32_t *ids;
        size_t n;
        assert_true(gpt2_tokenize(g, " hello", 6, i == 2, &ids, &n, err, sizeof err));
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], i == 2 ? 50258 : 23748);
        free(ids);
        gpt2_close(g);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(dir, sizeof dir, "%s/bad%zu", tmp, i);
        assert_false(
            convert_added(shared, dir, bad[i].skip, bad[i].name, bad[i].text, out, sizeof out, err, sizeof err));
        if (!strstr(err, bad[i].phrase)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].phrase);
        assert_null(strchr(err, '\n'));
        assert_int_equal(access(out, F_OK), -1);
    }
    test_rmtree(tmp);
}

/* lm_head.weight and transformer.wte.weight are two views of one storage. */
static void test_shared_storage(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/reference/formats/tiny/torch-zip-f32/pytorch_model.bin", shared);
    Checkpoint ck = {0};
    if (!gpt2_torch_checkpoint_add(&ck, path, err, sizeof err)) fail_msg("%s", err);
    assert_true(gpt2_checkpoint_seal(&ck, err, sizeof err));
    const CkTensor *head = gpt2_checkpoint_find(&ck, "lm_head.weight");
    const CkTensor *wte = gpt2_checkpoint_find(&ck, "transformer.wte.weight");
    assert_non_null(head);
    assert_non_null(wte);
    assert_ptr_equal(head->data, wte->data);
    assert_int_equal(wte->shape[0], 50257);
    assert_int_equal(wte->shape[1], 16);
    assert_int_equal(wte->stride[0], 16);
    const CkTensor *mask = gpt2_checkpoint_find(&ck, "transformer.h.0.attn.bias");
    assert_non_null(mask);
    assert_int_equal(mask->dtype, CK_BOOL);
    gpt2_checkpoint_close(&ck);
}

/* Every hostile pickle: one line, status 1, and no file PWNED in the
 * working directory of gpt2-convert (a temporary folder). */
static void test_hostile_pickles(void **state) {
    (void)state;
    REQUIRE_SHARED(shared);
    static const char *const names[] = {"global-os-system", "reduce-at-top", "builtins-eval", "missing-storage",
                                        "legacy-truncated"};
    static const char *const phrases[] = {"refused the global posix.system", "refused the global posix.system",
                                          "refused the global builtins.eval", "not in the archive", "cut short"};
    char tmp[4096], cwd[4096], convert[4200], pwned[4200];
    test_mkdtemp(tmp, sizeof tmp);
    assert_non_null(getcwd(cwd, sizeof cwd));
    char build[4096];
    assert_non_null(realpath(test_build_dir(), build));
    snprintf(convert, sizeof convert, "%s/gpt2-convert", build);
    snprintf(pwned, sizeof pwned, "%s/PWNED", tmp);
    assert_int_equal(chdir(tmp), 0);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/reference/formats/tiny/hostile/%s/pytorch_model.bin", shared, names[i]);
        const char *argv[] = {convert, src, "out.bin", "-q", NULL};
        RunResult r;
        test_run(argv, NULL, &r);
        test_expect_refusal(&r, 1, "gpt2-convert: ", phrases[i]);
        test_run_free(&r);
        struct stat sb;
        if (stat(pwned, &sb) == 0) fail_msg("%s created PWNED", names[i]);
        if (stat("out.bin", &sb) == 0) fail_msg("%s left an output", names[i]);
    }
    assert_int_equal(chdir(cwd), 0);
    test_rmtree(tmp);
}

/* Pickles made here: each refused with one line, none crashes. */
static void test_pickle_refusals(void **state) {
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        const char *phrase;
    } cases[] = {
        {"\x80\x02}q\x00.", 6, NULL}, /* an empty state dict: fine */
        {"\x80\x02"
         "csubprocess\nPopen\n.",
         24, "refused the global subprocess.Popen"},
        {"\x80\x02(.", 4, "STOP with other than one value"},
        {"\x80\x02h\x05.", 5, "memo entry read before it was written"},
        {"\x80\x02}r\xff\xff\xff\x7f.", 9, "memo index beyond"},
        {"\x80\x02}X\xff\xff\xff\xff", 8, "cut short"},
        {"\x80\x02K\x01.", 5, "holds an integer, not a state dict"},
        {"\x80\x02}X\x01\x00\x00\x00"
         "aK\x01s.",
         13, "is an integer, not a tensor"},
        {"\x80\x02I1\n.", 6, "opcode 0x49"},
        {"\x80\x02s.", 4, "stack underflow"},
        {"\x80\x02", 2, "cut short"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        PickleStateDict sd;
        size_t used;
        char err[256] = "";
        bool ok = gpt2_pickle_state_dict((const uint8_t *)cases[i].bytes, cases[i].len, &used, &sd, err, sizeof err);
        if (!cases[i].phrase) {
            if (!ok) fail_msg("case %zu: %s", i, err);
            gpt2_pickle_state_dict_free(&sd);
            continue;
        }
        if (ok) fail_msg("case %zu accepted", i);
        if (!strstr(err, cases[i].phrase)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].phrase);
        assert_null(strchr(err, '\n'));
    }
}

/* A legacy torch.save file made here whose one tensor is named "a\nb":
 * the refusals that name it do so on one line.  storage is 0 (no storage
 * list entry: "not in the file") or the offset of a one-element storage
 * (2: "starts beyond its storage"). */
static void test_torch_messages_one_line(void **state) {
    (void)state;
    static const char head[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
                               "\x80\x02M\xe9\x03."
                               "\x80\x02}."
                               "\x80\x02}(X\x03\x00\x00\x00"
                               "a\nbctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00"
                               "storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                               "0X\x03\x00\x00\x00"
                               "cpuK\x01NtQK\x02K\x01\x85K\x01\x85\x89}tRu.";
    static const struct {
        const char *tail;
        size_t len;
        const char *phrase;
    } cases[] = {
        {"\x80\x02].", 4, "storage \"0\" of tensor \"a?b\" is not in the file"},
        {"\x80\x02](X\x01\x00\x00\x00"
         "0e.\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80?",
         24, "tensor \"a?b\" starts beyond its storage"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t b[512];
        memcpy(b, head, sizeof head - 1);
        memcpy(b + sizeof head - 1, cases[i].tail, cases[i].len);
        Checkpoint ck = {0};
        char err[256] = "";
        if (gpt2_torch_checkpoint_parse(&ck, b, sizeof head - 1 + cases[i].len, "x.bin", err, sizeof err))
            fail_msg("case %zu accepted", i);
        gpt2_checkpoint_close(&ck);
        if (!strstr(err, cases[i].phrase)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].phrase);
        assert_null(strchr(err, '\n'));
    }
}

/* A zip64 archive made here: the end records point through the zip64
 * locator, and an entry's sizes and offset come from its zip64 extra. */
static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF), put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v), put32(p + 4, (uint32_t)(v >> 32)); }

static void test_zip64(void **state) {
    (void)state;
    uint8_t b[512] = {0};
    const char *name = "a/data/0";
    size_t nl = strlen(name), at = 0;
    /* local header, then 4 bytes of data */
    memcpy(b, "PK\3\4", 4);
    put16(b + 26, (unsigned)nl);
    memcpy(b + 30, name, nl);
    at = 30 + nl;
    memcpy(b + at, "abcd", 4);
    at += 4;
    size_t cd = at;
    memcpy(b + at, "PK\1\2", 4);
    put32(b + at + 20, 0xFFFFFFFF);
    put32(b + at + 24, 0xFFFFFFFF);
    put16(b + at + 28, (unsigned)nl);
    put16(b + at + 30, 28);
    put32(b + at + 42, 0xFFFFFFFF);
    memcpy(b + at + 46, name, nl);
    uint8_t *x = b + at + 46 + nl;
    put16(x, 1), put16(x + 2, 24), put64(x + 4, 4), put64(x + 12, 4), put64(x + 20, 0);
    at += 46 + nl + 28;
    size_t cd_bytes = at - cd, eocd64 = at;
    memcpy(b + at, "PK\6\6", 4);
    put64(b + at + 4, 44);
    put64(b + at + 24, 1), put64(b + at + 32, 1), put64(b + at + 40, cd_bytes), put64(b + at + 48, cd);
    at += 56;
    memcpy(b + at, "PK\6\7", 4);
    put64(b + at + 8, eocd64);
    put32(b + at + 16, 1);
    at += 20;
    memcpy(b + at, "PK\5\6", 4);
    put16(b + at + 8, 0xFFFF), put16(b + at + 10, 0xFFFF);
    put32(b + at + 12, 0xFFFFFFFF), put32(b + at + 16, 0xFFFFFFFF);
    at += 22;
    Zip z;
    char err[256];
    if (!gpt2_zip_parse(&z, b, at, err, sizeof err)) fail_msg("%s", err);
    const ZipEntry *e = gpt2_zip_find(&z, "a/data/0");
    assert_non_null(e);
    assert_int_equal(e->size, 4);
    assert_memory_equal(e->data, "abcd", 4);
    gpt2_zip_free(&z);
    /* Cut anywhere, it is refused, never read past its end. */
    for (size_t n = 0; n < at; n++) {
        uint8_t *copy = malloc(n + 1);
        memcpy(copy, b, n);
        if (gpt2_zip_parse(&z, copy, n, err, sizeof err)) gpt2_zip_free(&z);
        free(copy);
    }
}

/* gpt2_checkpoint_read of a column, one element wide, read transposed as
 * a vector: out[0][c] is element (c, 0), along the first dimension.  The
 * column is column 0 of a 4 x 2 row-major matrix (strides 2, 1); reading
 * along the second dimension's stride gave elements 0-3, and, with a
 * longer stride there (a GGUF Conv1D view, fuzz_gguf found it), read past
 * the tensor. */
static void test_checkpoint_reads_column_transposed(void **state) {
    (void)state;
    static const float m[4][2] = {{0, 1}, {2, 3}, {4, 5}, {6, 7}};
    const CkTensor column = {.name = "column",
                             .dtype = CK_F32,
                             .dtype_name = "F32",
                             .n_dims = 2,
                             .shape = {4, 1},
                             .stride = {2, 1},
                             .n_elems = 4,
                             .data = (const uint8_t *)m,
                             .span = sizeof m};
    float out[4] = {0};
    gpt2_checkpoint_read(&column, true, 1, 4, out);
    static const float want[4] = {0, 2, 4, 6};
    assert_memory_equal(out, want, sizeof want);
    gpt2_checkpoint_read(&column, false, 4, 1, out);
    assert_memory_equal(out, want, sizeof want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_zip_f32),
        cmocka_unit_test(test_torch_zip_f16),
        cmocka_unit_test(test_torch_legacy),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_shared_storage),
        cmocka_unit_test(test_hostile_pickles),
        cmocka_unit_test(test_torch_messages_one_line),
        cmocka_unit_test(test_pickle_refusals),
        cmocka_unit_test(test_zip64),
        cmocka_unit_test(test_gguf),
        cmocka_unit_test(test_tokenizer_json),
        cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_gguf_refusals),
        cmocka_unit_test(test_gguf_added_tokens),
        cmocka_unit_test(test_gguf_q8_0_blocks_carried_over),
        cmocka_unit_test(test_checkpoint_reads_column_transposed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
