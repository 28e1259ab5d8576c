/* dtype.c - see dtype.h.  The conversions are written with integer bit
 * operations so that they are exact and identical on every platform. */
#include "dtype.h"

#include <math.h>
#include <string.h>

static const char *const dtype_names[DTYPE_COUNT] = {"f32", "f16", "bf16", "q8_0"};

const char *gpt2_dtype_name(DType t) { return (unsigned)t < DTYPE_COUNT ? dtype_names[t] : "?"; }

bool gpt2_dtype_from_name(const char *name, DType *out) {
    for (int i = 0; i < DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_names[i]) == 0) {
            *out = (DType)i;
            return true;
        }
    }
    return false;
}

static float bits_to_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

float gpt2_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = h >> 10 & 0x1F;
    uint32_t mant = h & 0x3FF;
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign);
        int e = -14; /* subnormal: mant * 2^-24, renormalise */
        while (!(mant & 0x400)) {
            mant <<= 1;
            e--;
        }
        return bits_to_f32(sign | (uint32_t)(e + 127) << 23 | (mant & 0x3FF) << 13);
    }
    if (exp == 31) return bits_to_f32(sign | 0x7F800000 | mant << 13);
    return bits_to_f32(sign | (exp + 112) << 23 | mant << 13);
}

uint16_t gpt2_f32_to_f16(float f) {
    uint32_t x = f32_to_bits(f);
    uint32_t sign = x >> 16 & 0x8000;
    uint32_t a = x & 0x7FFFFFFF;
    if (a >= 0x7F800000) /* inf stays inf, NaN stays a quiet NaN */
        return (uint16_t)(sign | 0x7C00 | (a > 0x7F800000 ? 0x200 | (a >> 13 & 0x3FF) : 0));
    if (a >= 0x477FF000) return (uint16_t)(sign | 0x7C00); /* >= 65520 rounds to inf */
    if (a < 0x38800000) {                                  /* below 2^-14: subnormal half */
        if (a < 0x33000000) return (uint16_t)sign;         /* <= 2^-25 rounds to zero */
        uint32_t e = a >> 23;
        uint32_t m = (a & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t h = (a - 0x38000000) >> 13, rem = a & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float gpt2_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t gpt2_f32_to_bf16(float f) {
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)(x >> 16 | 0x40);
    return (uint16_t)((x + 0x7FFF + (x >> 16 & 1)) >> 16);
}

static size_t element_bytes(DType t) { return t == DTYPE_F32 ? 4 : 2; }

uint64_t gpt2_panel_matrix_bytes(DType t, uint64_t rows, uint64_t cols) {
    if (rows == 0 || cols == 0 || (unsigned)t >= DTYPE_COUNT) return 0;
    uint64_t panels = rows / PANEL_ROWS + (rows % PANEL_ROWS != 0);
    uint64_t per_panel;
    if (t == DTYPE_Q8_0) {
        if (cols % Q8_BLOCK) return 0;
        if (cols / Q8_BLOCK > UINT64_MAX / Q8_BLOCK_BYTES) return 0;
        per_panel = cols / Q8_BLOCK * Q8_BLOCK_BYTES;
    } else {
        if (cols > UINT64_MAX / (PANEL_ROWS * 4)) return 0;
        per_panel = cols * PANEL_ROWS * element_bytes(t);
    }
    if (panels > UINT64_MAX / per_panel) return 0;
    return panels * per_panel;
}

/* Quantizes one row's block x[0..32) to int8 quants q[0..32) with one
 * float16 scale. */
static uint16_t quantize_block(const float *x, int8_t *q) {
    float amax = 0;
    for (size_t i = 0; i < Q8_BLOCK; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = fminf(amax / 127.0f, 65504.0f);
    uint16_t dh = gpt2_f32_to_f16(d);
    float dq = gpt2_f16_to_f32(dh); /* quantize against the scale actually stored */
    for (size_t i = 0; i < Q8_BLOCK; i++) {
        float v = dq > 0 ? roundf(x[i] / dq) : 0;
        v = fminf(fmaxf(v, -127.0f), 127.0f);
        q[i] = (int8_t)v;
    }
    return dh;
}

void gpt2_panel_pack_q8_0(const int8_t *quants, const uint16_t *scales, size_t rows, size_t cols, void *out) {
    size_t panels = (rows + PANEL_ROWS - 1) / PANEL_ROWS, blocks = cols / Q8_BLOCK;
    for (size_t p = 0; p < panels; p++) {
        for (size_t i = 0; i < PANEL_ROWS; i++) {
            size_t r = p * PANEL_ROWS + i;
            for (size_t b = 0; b < blocks; b++) {
                uint8_t *block = (uint8_t *)out + (p * blocks + b) * Q8_BLOCK_BYTES;
                uint16_t d = r < rows ? scales[r * blocks + b] : 0; /* padding rows are zero */
                memcpy(block + 2 * i, &d, 2);
                for (size_t c = 0; c < Q8_BLOCK; c++)
                    ((int8_t *)block)[q8_quant_offset(i, c)] = r < rows ? quants[r * cols + b * Q8_BLOCK + c] : 0;
            }
        }
    }
}

void gpt2_panel_pack(DType t, const float *w, size_t rows, size_t cols, void *out) {
    size_t panels = (rows + PANEL_ROWS - 1) / PANEL_ROWS;
    static const float zeros[Q8_BLOCK];
    for (size_t p = 0; p < panels; p++) {
        for (size_t i = 0; i < PANEL_ROWS; i++) {
            size_t r = p * PANEL_ROWS + i;
            const float *row = r < rows ? w + r * cols : NULL;
            if (t == DTYPE_Q8_0) {
                for (size_t b = 0; b < cols / Q8_BLOCK; b++) {
                    uint8_t *block = (uint8_t *)out + (p * (cols / Q8_BLOCK) + b) * Q8_BLOCK_BYTES;
                    int8_t q[Q8_BLOCK];
                    uint16_t d = quantize_block(row ? row + b * Q8_BLOCK : zeros, q);
                    memcpy(block + 2 * i, &d, 2);
                    for (size_t c = 0; c < Q8_BLOCK; c++) ((int8_t *)block)[q8_quant_offset(i, c)] = q[c];
                }
                continue;
            }
            for (size_t c = 0; c < cols; c++) {
                float v = row ? row[c] : 0.0f;
                size_t at = (p * cols + c) * PANEL_ROWS + i;
                if (t == DTYPE_F32) {
                    ((float *)out)[at] = v;
                } else {
                    uint16_t h = t == DTYPE_F16 ? gpt2_f32_to_f16(v) : gpt2_f32_to_bf16(v);
                    ((uint16_t *)out)[at] = h;
                }
            }
        }
    }
}

void gpt2_panel_unpack_row(DType t, const void *panels, size_t cols, size_t r, float *out) {
    size_t p = r / PANEL_ROWS, i = r % PANEL_ROWS;
    if (t == DTYPE_Q8_0) {
        for (size_t b = 0; b < cols / Q8_BLOCK; b++) {
            const uint8_t *block = (const uint8_t *)panels + (p * (cols / Q8_BLOCK) + b) * Q8_BLOCK_BYTES;
            uint16_t dh;
            memcpy(&dh, block + 2 * i, 2);
            float d = gpt2_f16_to_f32(dh);
            const int8_t *q = (const int8_t *)block;
            for (size_t c = 0; c < Q8_BLOCK; c++) out[b * Q8_BLOCK + c] = d * (float)q[q8_quant_offset(i, c)];
        }
        return;
    }
    for (size_t c = 0; c < cols; c++) {
        size_t at = (p * cols + c) * PANEL_ROWS + i;
        if (t == DTYPE_F32) out[c] = ((const float *)panels)[at];
        else if (t == DTYPE_F16) out[c] = gpt2_f16_to_f32(((const uint16_t *)panels)[at]);
        else out[c] = gpt2_bf16_to_f32(((const uint16_t *)panels)[at]);
    }
}
