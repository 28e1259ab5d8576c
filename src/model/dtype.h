/* dtype.h - the number formats weights are stored in, and their layout.
 *
 * Owns the element types (f32, f16, bf16, q8_0), the exact conversions
 * between them and float32, and the "panel" layout every weight matrix uses
 * in a model file.  The kernels read what these functions write.
 *
 * Panel layout.  A matrix W with `rows` outputs and `cols` inputs (y = W x)
 * is cut into ceil(rows / 16) panels of 16 rows; the last is padded with
 * zero rows.  A panel stores its 16 x cols values column by column: first
 * the 16 values of column 0, then of column 1, and so on.  A matrix-vector
 * product then streams each panel once, front to back, and keeps 16
 * independent sums in one vector register; a matrix-matrix product reuses
 * each loaded column for several input rows.
 *
 * q8_0 panels group each row's values in blocks of 32 columns.  For block b
 * of a panel: 16 float16 scales (one per row), then the 32 x 16 int8 quants
 * in 8 groups of 4 columns, 544 bytes in all.  A group holds, row by row,
 * each row's 4 quants of its columns: the quant of row r (0..15) and column
 * 4g + j (g = 0..7, j = 0..3) of the block is at byte 32 + 64 g + 4 r + j.
 * So one 64-byte load gives 16 rows x 4 columns, what an integer dot
 * product instruction (VNNI) takes.  Value = scale * quant; the writer
 * keeps quants in -127..127.  q8_0 needs cols to be a multiple of 32.
 */
#ifndef GPT2_DTYPE_H
#define GPT2_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { DTYPE_F32 = 0, DTYPE_F16 = 1, DTYPE_BF16 = 2, DTYPE_Q8_0 = 3, DTYPE_COUNT } DType;

#define PANEL_ROWS 16
#define Q8_BLOCK 32
#define Q8_GROUP 4                                              /* columns of a group */
#define Q8_BLOCK_BYTES (PANEL_ROWS * 2 + Q8_BLOCK * PANEL_ROWS) /* per panel */

/* Byte offset, inside a q8_0 block, of the quant of row r and column c. */
static inline size_t q8_quant_offset(size_t r, size_t c) {
    return PANEL_ROWS * 2 + c / Q8_GROUP * (Q8_GROUP * PANEL_ROWS) + r * Q8_GROUP + c % Q8_GROUP;
}

const char *gpt2_dtype_name(DType t); /* "f32", ..., or "?" */
bool gpt2_dtype_from_name(const char *name, DType *out);

float gpt2_f16_to_f32(uint16_t h);  /* exact */
uint16_t gpt2_f32_to_f16(float f);  /* round to nearest even */
float gpt2_bf16_to_f32(uint16_t h); /* exact */
uint16_t gpt2_f32_to_bf16(float f); /* round to nearest even */

/* Bytes of a rows x cols matrix stored in panel layout, or 0 when the
 * shape does not fit the type (q8_0 with cols % 32 != 0) or the size would
 * overflow. */
uint64_t gpt2_panel_matrix_bytes(DType t, uint64_t rows, uint64_t cols);

/* Packs a row-major float32 matrix w[rows][cols] into panel layout, writing
 * gpt2_panel_matrix_bytes(t, rows, cols) bytes to out. */
void gpt2_panel_pack(DType t, const float *w, size_t rows, size_t cols, void *out);

/* Packs q8_0 blocks given as int8 quants[rows][cols] and float16 scales
 * [rows][cols / 32] (one per row and block of 32 columns) into q8_0 panel
 * layout unchanged, writing gpt2_panel_matrix_bytes(DTYPE_Q8_0, rows, cols)
 * bytes; cols must be a multiple of 32. */
void gpt2_panel_pack_q8_0(const int8_t *quants, const uint16_t *scales, size_t rows, size_t cols, void *out);

/* Unpacks row r of a panel matrix into out[cols] as float32 (an embedding
 * lookup: the token's row of wte). */
void gpt2_panel_unpack_row(DType t, const void *panels, size_t cols, size_t r, float *out);

/* A weight matrix in panel layout (above): y = W x with W [rows][cols]. */
typedef struct {
    DType dtype;
    uint32_t rows;    /* outputs */
    uint32_t cols;    /* inputs */
    const void *data; /* gpt2_panel_matrix_bytes(dtype, rows, cols) bytes */
} Matrix;

#endif
