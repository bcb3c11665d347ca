/* Large working buffers (coefficients, samples as doubles): on Linux they
 * are aligned to 2 MiB and advised as transparent huge pages, so that their
 * first touch faults once per 2 MiB instead of once per 4 KiB page
 * (docs/DESIGN.md 27).  Smaller buffers, and other systems, use malloc.
 * Either way the caller frees them with free(). */
#define _DEFAULT_SOURCE   /* posix_memalign, madvise */
#include "internal.h"
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

void *pj2k_malloc_large(size_t size)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (size >= PJ2K_HUGE_PAGE_BYTES) {
        void *p = NULL;
        if (posix_memalign(&p, PJ2K_HUGE_PAGE_BYTES, size) != 0) return NULL;
        /* advice only: where the kernel declines, 4 KiB pages serve as before */
        (void)madvise(p, size & ~(PJ2K_HUGE_PAGE_BYTES - 1), MADV_HUGEPAGE);
        return p;
    }
#endif
    return malloc(size);
}
