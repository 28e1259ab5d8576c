/* tuning_avx2.h - the tuning macros of kernels_body.inc for the two sets
 * built on vec16_avx2.h (16 ymm registers): avx2 (kernels_avx2.c) and
 * avxvnni (kernels_avxvnni.c), which differ only in their q8_0 dot
 * products.  Included by those two files, before kernels_body.inc. */
#ifndef GPT2_TUNING_AVX2_H
#define GPT2_TUNING_AVX2_H

#define MM_MR 3
#define MM_NP 2
#define MM_NP1 4
#define MM_WIDE 4
#define MM_WR 4
#define MM_WNP 1
#define MM_WR1 4
#define MM_MR_Q8 2
#define MM_NP_Q8 1
#define MM_NP1_Q8 1 /* one stream, as kernels_avx512.c says */
#define AT_QUERIES 2
#define AT_VECS 2
#define AT_CHAINS 4 /* 16 registers of 8 lanes */

#endif
