#include "simd_switch.h"

#include <cstdlib>
#include <cstring>

namespace medseg::cpu {

bool cpu_has_avx2_fma() {
#if defined(MEDSEG_HAVE_AVX2_PATHS)
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return has;
#else
    return false;
#endif
}

bool SimdSwitch::active() {
    int mode = mode_.load(std::memory_order_relaxed);
    if (mode < 0) {
        const char* env = std::getenv(env_var_);
        mode = (env != nullptr && std::strcmp(env, "0") == 0) ? 0 : 1;
        mode_.store(mode, std::memory_order_relaxed);
    }
    return mode == 1 && cpu_has_avx2_fma();
}

int SimdSwitch::set_mode(int mode) {
    if (mode == 0 || mode == 1) mode_.store(mode, std::memory_order_relaxed);
    return active() ? 1 : 0;
}

}  // namespace medseg::cpu
