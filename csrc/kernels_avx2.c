/* The per-sample loops (kernels_impl.h) compiled for AVX2: the same C,
 * vectorised four doubles or eight int32 wide.  kernels.c picks this table
 * at run time on CPUs that have AVX2; others never call it. */
#include "internal.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if PJ2K_HAVE_AVX2
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC target("avx2")
#endif

#define KERNELS pj2k_kernels_avx2
#define KERNELS_NAME "avx2"
#define KERNELS_FLOOR_INSN 1   /* AVX implies SSE4.1's round instructions: floor is one */
#include "kernels_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int pj2k_no_avx2_build;   /* ISO C wants a declaration in every file */
#endif
