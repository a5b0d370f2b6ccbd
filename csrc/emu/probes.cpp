// Probes of the three HIP-CPU defects that csrc/emu/cuda_runtime.h works around (tests only:
// tests/test_emulation.py calls them through _C_cuda_emu, so an update of HIP-CPU or of the
// mapping header cannot bring a defect back unnoticed). Each runs the CUDA names as the drivers
// use them, and where useful the raw HIP-CPU call next to it, to tell whether the defect is still
// there upstream (reported, not required).
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "emu_control.h"

namespace {

__global__ void atomic_kernel(int* value, int* olds, int v) {
    olds[0] = atomicMin(value, v);       // the mapped (CUDA-semantics) functions
    olds[1] = atomicMax(value + 1, v);
}

#undef atomicMin
#undef atomicMax
__global__ void raw_atomic_kernel(int* value, int* olds, int v) {
    olds[0] = ::atomicMin(value, v);     // HIP-CPU's own
    olds[1] = ::atomicMax(value + 1, v);
}

__global__ void fill_kernel(int* p, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) p[i] = i + 1;
}

// Slow on purpose (a few thousand operations per element), so that a kernel started too early
// overlaps it.
__global__ void slow_fill_kernel(int* p, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        volatile unsigned x = static_cast<unsigned>(i);
        for (int k = 0; k < 2000; ++k) x = x * 1664525u + 1013904223u;
        p[i] = i + 1 + static_cast<int>(x & 0u);
    }
}

__global__ void check_kernel(const int* p, int n, int* bad) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        if (p[i] != i + 1) atomicAdd(bad, 1);
}

}  // namespace

namespace msf_emu {

std::vector<int> probe_atomics(bool raw) {
    int* d = nullptr;
    hipMalloc(reinterpret_cast<void**>(&d), 4 * sizeof(int));
    d[0] = 5;   // atomicMin(5, 3): old 5, new 3
    d[1] = 1;   // atomicMax(1, 3): old 1, new 3
    d[2] = d[3] = -1;
    if (raw) Launch(1, 1, 0, nullptr)(&raw_atomic_kernel)(d, d + 2, 3);
    else Launch(1, 1, 0, nullptr)(&atomic_kernel)(d, d + 2, 3);
    cudaStreamSynchronize(nullptr);
    std::vector<int> out{d[2], d[0], d[3], d[1]};   // old min, new min, old max, new max
    hipFree(d);
    return out;
}

std::vector<int64_t> probe_malloc_async(int64_t n) {
    int* p = nullptr;
    const cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&p), n * sizeof(int), nullptr);
    const bool null_after_call = p == nullptr;
    int64_t wrong = -1;
    if (e == cudaSuccess && !null_after_call) {
        Launch(static_cast<unsigned>(n < 8192 ? (n + 127) / 128 : 64), 128, 0, nullptr)(&fill_kernel)(p, static_cast<int>(n));
        std::vector<int> host(n);
        cudaMemcpyAsync(host.data(), p, n * sizeof(int), cudaMemcpyDeviceToHost, nullptr);
        cudaStreamSynchronize(nullptr);
        wrong = 0;
        for (int64_t i = 0; i < n; ++i) wrong += host[i] != i + 1;
        cudaFreeAsync(p, nullptr);
    }
    return {static_cast<int64_t>(e), null_after_call ? 1 : 0, wrong};
}

int64_t probe_stream_order(int tries, int64_t n, bool raw) {
    int* p = nullptr;
    int* bad = nullptr;
    hipMalloc(reinterpret_cast<void**>(&p), n * sizeof(int));
    hipMalloc(reinterpret_cast<void**>(&bad), sizeof(int));
    int64_t failed = 0;
    for (int t = 0; t < tries; ++t) {
        for (int64_t i = 0; i < n; ++i) p[i] = 0;
        *bad = 0;
        if (raw) {   // HIP-CPU's null stream itself
            hipLaunchKernelGGL(slow_fill_kernel, dim3(8), dim3(64), 0, nullptr, p, static_cast<int>(n));
            hipLaunchKernelGGL(check_kernel, dim3(8), dim3(64), 0, nullptr, p, static_cast<int>(n), bad);
            hipDeviceSynchronize();
        } else {     // CUDA's stream 0 as the drivers use it
            Launch(8, 64, 0, nullptr)(&slow_fill_kernel)(p, static_cast<int>(n));
            Launch(8, 64, 0, nullptr)(&check_kernel)(p, static_cast<int>(n), bad);
            cudaStreamSynchronize(nullptr);
        }
        failed += *bad != 0;
    }
    hipFree(p);
    hipFree(bad);
    return failed;
}

}  // namespace msf_emu
