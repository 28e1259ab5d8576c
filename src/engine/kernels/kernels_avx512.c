/* kernels_avx512.c - the kernels for CPUs with AVX-512 (F, BW, VL, VNNI).
 * Built with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c; the functions
 * here also get AVX512_VNNI (vpdpbusd, for q8_0) by the target pragma
 * below.  Only called after gpt2_kernels_select() saw the CPU support all of
 * them. */
#include "kernels.h"

#if defined(GPT2_HAVE_AVX512)
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512vnni")
#endif
#include "vec16_avx512.h"

#define KERNEL_SET_NAME gpt2_kernels_avx512
#define KERNEL_SET_LABEL "avx512"
#define MM_MR 6
#define MM_NP 4
#define MM_NP1 4
#define MM_WIDE 16
#define MM_WR 8
#define MM_WNP 2
#define MM_WR1 16
/* 16-bit weights: up to 6 rows in tiles of 4 panels, 7 to 16 in one-panel
 * tiles.  On the Zen 5 (124M, 2 threads, one process switching between
 * the two), against 8 x 2 tiles up to 8 rows: f16 2 to 8 rows 0.80-0.94x
 * the time of a forward pass, bf16 5 and 8 rows 0.93x and 0.79x.  f32
 * keeps 8 x 2: 6 x 4 gained 3-6 % at 3 to 6 rows but lost 5-6 % at 7 and
 * 8, which one-panel tiles then take. */
#define MM_WR16 6
#define MM_WNP16 4
/* 2 x 2 q8_0 tiles: with three input digits (kernels.h) a 4 x 2 tile's 32
 * integer sums and accumulators spill (pp512, 124M, 2 threads: 4 x 2 1585,
 * 3 x 2 1767, 2 x 2 1812 tok/s). */
#define MM_MR_Q8 2
#define MM_NP_Q8 2
/* One row of q8_0 reads one panel at a time: a single stream, prefetched
 * 8 KiB ahead, streams 5-20% faster on a Zen 5 than four side by side,
 * whose 13 KB panels (768 columns) end before the prefetch pays.  What
 * bounds that tile from the caches (about 88 GB/s a core on the Zen 5)
 * is its 3 input broadcasts per 64 bytes of weights, about one a cycle
 * in any form (vpbroadcastd, an embedded {1to16}, a 128-bit broadcast and
 * vpshufd, vpermd): with the digits held in registers instead it read
 * 141-185 GB/s, while taking out the quarter of its vpdpbusd that sum the
 * bias (signed digits, weights made unsigned) changed nothing.  Two panels
 * share each broadcast: 14% faster from L2, but decoding at 2 threads
 * ran 5-7% slower from memory, so one panel stays. */
#define MM_NP1_Q8 1
#define MM_ODD_Q8 1
/* 16-bit weights are converted in every tile, never widened first: on
 * the Zen 5 (124M and 355M f16 and bf16, 2 threads, one process switching
 * between the two) widening took 1.08-1.37x the time of a forward pass of
 * 32 to 256 rows, about the same at 512 and 1000 on 124M, 1.04x at 512 on
 * 355M.  One vcvtph2ps converts 16 weights for the tile's MM_MR rows, and
 * the widened copy is 4 panels of float32 more to write and read back per
 * group.  (Not measured on an Intel CPU, where the conversion shares the
 * FMAs' ports.) */
#define WIDEN_ROWS SIZE_MAX
#define AT_QUERIES 4
#define AT_VECS 4
#define GPT2_KERNELS_BODY_OK 1
#include "kernels_body.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
const KernelSet gpt2_kernels_avx512 = {0};
#endif
