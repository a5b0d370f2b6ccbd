// CPU stand-in for cub::DeviceScan in the CUDA emulation (csrc/emu/README.md): the inclusive sum
// runs on the host once the stream's earlier work is done, with CUB's two-call protocol (a first
// call with a null workspace asks for its size).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace cub {

struct DeviceScan {
    template <typename In, typename Out>
    static cudaError_t InclusiveSum(void* temp, std::size_t& temp_bytes, In in, Out out, int n, cudaStream_t s = nullptr) {
        if (temp == nullptr) {
            temp_bytes = 1;
            return cudaSuccess;
        }
        const cudaError_t e = cudaStreamSynchronize(s);
        if (e != cudaSuccess || n <= 0) return e;
        auto total = in[0];
        out[0] = total;
        for (int i = 1; i < n; ++i) {
            total = total + in[i];
            out[i] = total;
        }
        return cudaSuccess;
    }
};

}  // namespace cub
