/* kernels_avx512.c - the kernels for CPUs with AVX-512 (F, BW, VL).
 * Built with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c; only called
 * after kernels_select() saw the CPU support them. */
#include "kernels.h"

#if defined(GPT2_HAVE_AVX512)
#include "vec16_avx512.h"

#define KERNEL_SET_NAME kernels_avx512
#define KERNEL_SET_LABEL "avx512"
#define MM_MR 6
#define MM_NP 4
#define MM_NP1 8
#include "kernels_impl.h"
#else
const KernelSet kernels_avx512 = {0};
#endif
