/* kernels_avxvnni.c - the AVX2 kernels with AVX-VNNI's integer dot products.
 * Built with -mavx2 -mfma -mf16c -mavxvnni, under which vec16_avx2.h takes
 * vpdpbusd for q8_0: for CPUs with AVX2 and AVX-VNNI but no AVX-512, such
 * as Intel's Alder Lake and later client cores.  Only called after
 * gpt2_kernels_select() saw the CPU support them. */
#include "kernels.h"

#if defined(GPT2_HAVE_AVXVNNI)
#include "tuning_avx2.h"
#include "vec16_avx2.h"

#define KERNEL_SET_NAME gpt2_kernels_avxvnni
#define KERNEL_SET_LABEL "avxvnni"
#define GPT2_KERNELS_BODY_OK 1
#include "kernels_body.inc"
#else
const KernelSet gpt2_kernels_avxvnni = {0};
#endif
