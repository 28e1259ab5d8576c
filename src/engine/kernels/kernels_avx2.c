/* kernels_avx2.c - the kernels for CPUs with AVX2, FMA and F16C.
 * Built with -mavx2 -mfma -mf16c; only called after gpt2_kernels_select() saw
 * the CPU support them. */
#include "kernels.h"

#if defined(GPT2_HAVE_AVX2)
#include "vec16_avx2.h"

#define KERNEL_SET_NAME gpt2_kernels_avx2
#define KERNEL_SET_LABEL "avx2"
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
#define GPT2_KERNELS_BODY_OK 1
#include "kernels_body.inc"
#else
const KernelSet gpt2_kernels_avx2 = {0};
#endif
