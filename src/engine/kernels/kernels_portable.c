/* kernels_portable.c - the kernels in plain C11, for every CPU. */
#include "vec16_portable.h"

#define KERNEL_SET_NAME gpt2_kernels_portable
#define KERNEL_SET_LABEL "portable"
/* Small tiles: speed is not this set's purpose, and the compiler takes
 * long over wide ones made of 16-lane loops. */
#define MM_MR 2
#define MM_NP 1
#define MM_NP1 2
#define MM_WIDE 2
#define MM_WR 2
#define MM_WNP 1
#define MM_WR1 2
#define MM_MR_Q8 1
#define MM_NP_Q8 1
#define MM_NP1_Q8 1
#define AT_QUERIES 1
#define AT_VECS 4
#define AT_CHAINS 2
#define GPT2_KERNELS_BODY_OK 1
#include "kernels_body.inc"
