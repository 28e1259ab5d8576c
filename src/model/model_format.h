/* model_format.h - the flat model file: its layout, shared by writer and reader.
 *
 * Owns the on-disk format (docs/model-format.md is the prose version): the
 * header fields and their offsets, the tensor directory, which tensors a
 * GPT-2 has and their shapes, and the bounds a hyperparameter must respect.
 * model.c reads files in this format and model_writer.c writes them; both
 * take every layout decision from here.
 *
 * All integers are little-endian.  Sections and tensors start at multiples
 * of MODEL_ALIGN so that an mmap of the file can be used in place.
 *
 * The header, the tensor directory, the vocabulary and the merge table each
 * carry a CRC-32 in the header.  They are small (about 1 MB for GPT-2,
 * whatever the model size) and a flipped bit in them would otherwise go
 * unnoticed or be misreported: a wrong n_head or LayerNorm epsilon loads and
 * computes garbage, a damaged file_bytes makes an intact file look
 * truncated.  The weights are not summed, so that opening stays
 * independent of the model size.
 */
#ifndef GPT2_MODEL_FORMAT_H
#define GPT2_MODEL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define MODEL_MAGIC "GPT2MODL" /* 8 bytes, no terminator in the file */
/* Version 2 added the checksums, version 3 the added tokens.  A reader
 * reads version 2 files as version 3 files without added tokens. */
#define MODEL_VERSION 3
#define MODEL_VERSION_OLDEST 2
#define MODEL_HEADER_BYTES 128
#define MODEL_TENSOR_ENTRY_BYTES 32
#define MODEL_ALIGN 64

/* Byte offsets of the header fields. */
enum {
    HDR_MAGIC = 0,           /* char[8] */
    HDR_VERSION = 8,         /* u32 */
    HDR_HEADER_BYTES = 12,   /* u32, MODEL_HEADER_BYTES */
    HDR_N_VOCAB = 16,        /* u32 */
    HDR_N_CTX = 20,          /* u32 */
    HDR_N_EMBD = 24,         /* u32 */
    HDR_N_LAYER = 28,        /* u32 */
    HDR_N_HEAD = 32,         /* u32 */
    HDR_DTYPE = 36,          /* u32, DType of the weight matrices */
    HDR_EOT_ID = 40,         /* u32 */
    HDR_LN_EPS = 44,         /* f32 */
    HDR_N_MERGES = 48,       /* u32 */
    HDR_N_TENSORS = 52,      /* u32 */
    HDR_FILE_BYTES = 56,     /* u64, the size of the whole file */
    HDR_VOCAB_OFFSET = 64,   /* u64 */
    HDR_VOCAB_BYTES = 72,    /* u64 */
    HDR_MERGES_OFFSET = 80,  /* u64 */
    HDR_TENSORS_OFFSET = 88, /* u64, the tensor directory */
    HDR_HEADER_CRC = 96,     /* u32, CRC-32 of the header with this field zero */
    HDR_DIRECTORY_CRC = 100, /* u32, CRC-32 of the tensor directory */
    HDR_VOCAB_CRC = 104,     /* u32, CRC-32 of the vocabulary section */
    HDR_MERGES_CRC = 108,    /* u32, CRC-32 of the merge table */
    HDR_N_ADDED = 112,       /* u32, version 3: added tokens, the last ids of the vocabulary */
    HDR_RESERVED = 116       /* 116..127 reserved: written as zero, refused otherwise */
};

/* Byte offsets inside one tensor directory entry. */
enum {
    ENT_KIND = 0,    /* u16 TensorKind */
    ENT_LAYER = 2,   /* u16 */
    ENT_DTYPE = 4,   /* u32 DType */
    ENT_ROWS = 8,    /* u32 */
    ENT_COLS = 12,   /* u32 */
    ENT_OFFSET = 16, /* u64 */
    ENT_BYTES = 24   /* u64 */
};

/* Hyperparameters and the tokenizer's fixed points. */
typedef struct {
    uint32_t n_vocab; /* tokens, 50257 for GPT-2 */
    uint32_t n_ctx;   /* positions, 1024 for GPT-2 */
    uint32_t n_embd;  /* C, the residual width */
    uint32_t n_layer;
    uint32_t n_head;  /* n_embd % n_head == 0 */
    DType dtype;      /* type of the weight matrices (see gpt2_tensor_dtype) */
    uint32_t eot_id;  /* <|endoftext|> */
    float ln_eps;     /* LayerNorm epsilon, 1e-5 for GPT-2 */
    uint32_t n_added; /* the last n_added tokens are added special tokens (tokenizer.h) */
} ModelConfig;

/* Bounds checked on every config read or written.  They are far beyond any
 * GPT-2 (the largest has n_embd 1600, 48 layers) yet keep every derived size
 * well inside 64-bit arithmetic. */
#define MAX_VOCAB (1u << 20)
#define MAX_CTX (1u << 16)
#define MAX_EMBD (1u << 15)
#define MAX_LAYER 1024u
#define MAX_HEAD 1024u
#define MAX_TOKEN_BYTES 4096u

/* Checks a config against the bounds; on failure writes why to err. */
bool gpt2_model_config_check(const ModelConfig *c, char *err, size_t errsz);

typedef enum {
    TK_WTE,    /* [n_vocab][C] matrix: token embeddings, and the tied output head */
    TK_WPE,    /* [n_ctx][C] float32, row-major: position embeddings */
    TK_LNF_W,  /* [C] final LayerNorm gain */
    TK_LNF_B,  /* [C] final LayerNorm bias */
    TK_LN1_W,  /* per layer, [C] */
    TK_LN1_B,  /* [C] */
    TK_QKV_W,  /* [3C][C] matrix: q, k, v stacked by output row */
    TK_QKV_B,  /* [3C] */
    TK_PROJ_W, /* [C][C] matrix: attention output projection */
    TK_PROJ_B, /* [C] */
    TK_LN2_W,  /* [C] */
    TK_LN2_B,  /* [C] */
    TK_FC_W,   /* [4C][C] matrix: MLP up projection */
    TK_FC_B,   /* [4C] */
    TK_MLP_W,  /* [C][4C] matrix: MLP down projection */
    TK_MLP_B,  /* [C] */
    TK_COUNT
} TensorKind;

#define TENSORS_GLOBAL 4     /* wte, wpe, ln_f.weight, ln_f.bias come first */
#define TENSORS_PER_LAYER 12 /* then these per layer, in TensorKind order */

typedef struct {
    TensorKind kind;
    uint32_t layer;     /* 0 for the global tensors */
    uint32_t rows;      /* outputs of a matrix; 1 for a vector */
    uint32_t cols;      /* inputs of a matrix; length of a vector */
    bool is_matrix;     /* stored in panel layout, in the file's dtype */
    bool hf_transposed; /* Hugging Face stores it [cols][rows] (Conv1D) */
    char name[48];      /* Hugging Face name without prefix, e.g. "h.3.mlp.c_fc.weight" */
} TensorSpec;

/* Tensors in a file with config c, and the spec of the i-th, in file
 * order. */
size_t gpt2_model_tensor_count(const ModelConfig *c);
void gpt2_model_tensor_spec(const ModelConfig *c, size_t i, TensorSpec *out);

/* The type tensor `s` is stored in: f32 for vectors and wpe; the file's
 * dtype for matrices, except that q8_0 falls back to f16 for a matrix whose
 * rows do not split into whole 32-value blocks. */
DType gpt2_tensor_dtype(const ModelConfig *c, const TensorSpec *s);

/* Bytes of tensor s stored as type t, or 0 when that cannot be. */
uint64_t gpt2_tensor_bytes(const TensorSpec *s, DType t);

/* CRC-32 with the polynomial of zlib, PNG and Ethernet (reflected
 * 0xEDB88320, initial and final value 0xFFFFFFFF): gpt2_crc32_update(0, p, n)
 * is zlib's crc32(0, p, n), and calls chain like zlib's. */
uint32_t gpt2_crc32_update(uint32_t crc, const void *p, size_t n);

/* The sections the checksums cover, in the order of the header's checksum
 * fields after the header's own. */
typedef enum { SECTION_DIRECTORY, SECTION_VOCAB, SECTION_MERGES, SECTION_COUNT } Section;

/* Where the 128-byte header h places section `which`, and its length, as
 * the header's fields say: the directory is n_tensors entries, the merge
 * table n_merges rows of 12 bytes.  Nothing is checked; the sum cannot
 * overflow 64 bits for the directory and the merges (their counts are
 * 32-bit) but can for the vocabulary. */
void gpt2_model_section(const uint8_t *h, Section which, uint64_t *offset, uint64_t *bytes);

/* The header field holding the checksum of a section. */
unsigned gpt2_model_section_crc_field(Section which);

/* The checksum the header h should hold for itself: the CRC-32 of its 128
 * bytes with the HDR_HEADER_CRC field read as zero. */
uint32_t gpt2_model_header_crc(const uint8_t *h);

/* Stores in the header of b[0..n) the checksums of each section that lies
 * inside b[0..n) as the header places it, then the header's own.  Returns
 * false when a section lies outside (its field is then left as it was) or
 * n is less than a header (nothing is written).  The writer seals what it writes; tests and the
 * fuzz target reseal the files they damage, to reach the checks behind the
 * checksums. */
bool gpt2_model_seal(uint8_t *b, size_t n);

/* Little-endian field access. */
static inline uint32_t rd_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd_u64(const uint8_t *p) { return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32; }
static inline void wr_u16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static inline void wr_u32(uint8_t *p, uint32_t v) { wr_u16(p, v), wr_u16(p + 2, v >> 16); }
static inline void wr_u64(uint8_t *p, uint64_t v) { wr_u32(p, (uint32_t)v), wr_u32(p + 4, (uint32_t)(v >> 32)); }

static inline uint64_t align_up(uint64_t x) { return (x + MODEL_ALIGN - 1) / MODEL_ALIGN * MODEL_ALIGN; }

#endif
