// Transparent huge pages for large fresh buffers (see memory_cpu.h).
#include "memory_cpu.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace medseg::cpu {

size_t advise_huge_pages(uintptr_t ptr, size_t nbytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr uintptr_t kHuge = uintptr_t(2) << 20;
    if (nbytes < kHuge || ptr > UINTPTR_MAX - nbytes) return 0;
    const uintptr_t begin = (ptr + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t end = (ptr + nbytes) & ~(kHuge - 1);
    if (end <= begin) return 0;
    if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) != 0) return 0;
    return end - begin;
#else
    (void)ptr;
    (void)nbytes;
    return 0;
#endif
}

}  // namespace medseg::cpu
