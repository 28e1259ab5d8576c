/* kernels_portable.c - the kernels in plain C11, for every CPU. */
#include "vec16_portable.h"

#define KERNEL_SET_NAME kernels_portable
#define KERNEL_SET_LABEL "portable"
#define MM_MR 4
#define MM_NP 2
#define MM_NP1 4
#include "kernels_impl.h"

float kernel_exp_scalar(float x) { return v_exp(v_set1(x)).f[0]; }
float kernel_gelu_scalar(float u) { return v_gelu(v_set1(u)).f[0]; }
