/* The per-sample loops (kernels_impl.h) built for any CPU, and the choice,
 * made at each call of the public API, of the table a call runs. */
#include "internal.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KERNELS pj2k_kernels_portable
#define KERNELS_NAME "portable"
#define KERNELS_FLOOR_INSN 0   /* x86-64's baseline (SSE2) has no floor instruction */
#include "kernels_impl.h"

/* The fastest table this CPU runs, unless the environment variable
 * PJ2K_SIMD is "portable" (for comparisons, and a way out should a CPU
 * misreport).  Reading the environment per call keeps the library free of
 * state; it costs far less than any chunk's work. */
const pj2k_kernels *pj2k_kernels_select(void)
{
    const char *choice = getenv("PJ2K_SIMD");
    if (choice && strcmp(choice, "portable") == 0) return &pj2k_kernels_portable;
#if PJ2K_HAVE_AVX2
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return &pj2k_kernels_avx2;
#endif
    return &pj2k_kernels_portable;
}

const char *pj2k_kernels_name(void) { return pj2k_kernels_select()->name; }
