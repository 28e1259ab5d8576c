/* kernels_avx2.c - the kernels for CPUs with AVX2, FMA and F16C.
 * Built with -mavx2 -mfma -mf16c; only called after gpt2_kernels_select() saw
 * the CPU support them. */
#include "kernels.h"

#if defined(GPT2_HAVE_AVX2)
#include "tuning_avx2.h"
#include "vec16_avx2.h"

#define KERNEL_SET_NAME gpt2_kernels_avx2
#define KERNEL_SET_LABEL "avx2"
#define GPT2_KERNELS_BODY_OK 1
#include "kernels_body.inc"
#else
const KernelSet gpt2_kernels_avx2 = {0};
#endif
