// CUDA error handling for the drivers: failures become C++ exceptions (RuntimeError in Python).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

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
inline int fixed_grid(int64_t n, int block, int max_blocks = 2048) {
    const int64_t blocks = (n + block - 1) / block;
    return static_cast<int>(blocks < 1 ? 1 : (blocks > max_blocks ? max_blocks : blocks));
}

}  // namespace medseg::cuda
