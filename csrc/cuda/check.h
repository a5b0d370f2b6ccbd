// CUDA error handling for the drivers: failures become C++ exceptions (RuntimeError in Python).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#ifdef MEDSEG_CUDA_EMULATION
#include "emu_control.h"
#endif

#define MSF_CUDA_CHECK(expr)                                                                        \
    do {                                                                                            \
        const cudaError_t msf_err_ = (expr);                                                        \
        if (msf_err_ != cudaSuccess)                                                                \
            throw std::runtime_error(std::string("CUDA error in ") + #expr + ": " + cudaGetErrorString(msf_err_)); \
    } while (0)

namespace medseg::cuda {

inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// Grid size that depends only on the problem size (never on the device), so block-level
// reductions combine in the same order on every GPU.
// The emulated build (tests only) can cap it, to show that results do not depend on the grid.
inline int fixed_grid(int64_t n, int block, int max_blocks = 2048) {
#ifdef MEDSEG_CUDA_EMULATION
    const int cap = ::msf_emu::launch_limits().max_grid;
    if (cap > 0 && cap < max_blocks) max_blocks = cap;
#endif
    const int64_t blocks = (n + block - 1) / block;
    return static_cast<int>(blocks < 1 ? 1 : (blocks > max_blocks ? max_blocks : blocks));
}

// Threads per block for a launch whose kernels work with any power of two from 32 to `preferred`
// threads (their shared arrays are sized for `preferred`): `preferred` itself, except in the
// emulated build under a max_block test cap (the largest power of two <= the cap, >= 32).
inline int block_size(int preferred) {
#ifdef MEDSEG_CUDA_EMULATION
    const int cap = ::msf_emu::launch_limits().max_block;
    if (cap > 0 && cap < preferred) {
        int b = 32;
        while (b * 2 <= cap) b *= 2;
        return b;
    }
#endif
    return preferred;
}

}  // namespace medseg::cuda
