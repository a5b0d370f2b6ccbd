// Run-time switch of an explicit AVX2 code path (losses, EDT envelopes): on when the CPU supports
// AVX2 + FMA and the path has not been turned off by its environment variable (=0) or by
// set_mode(0), so that the tests can run the scalar and the SIMD path in one process.
#pragma once

#include <atomic>

// Translation units with explicit AVX2 paths compile them only where GCC/Clang target attributes
// and __builtin_cpu_supports exist.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MEDSEG_NO_SIMD)
#define MEDSEG_HAVE_AVX2_PATHS 1
#endif

namespace medseg::cpu {

bool cpu_has_avx2_fma();   // false when this build has no AVX2 paths (non-x86-64 or MEDSEG_NO_SIMD)

class SimdSwitch {
public:
    explicit SimdSwitch(const char* env_var) : env_var_(env_var) {}
    bool active();
    // 0: scalar, 1: SIMD where available, anything else: unchanged. Returns active().
    int set_mode(int mode);

private:
    const char* env_var_;
    std::atomic<int> mode_{-1};   // -1: environment not read yet
};

}  // namespace medseg::cpu
