// CUDA emulation on the CPU (tests only): the CUDA runtime names the drivers in csrc/cuda use,
// mapped onto HIP-CPU (../shared/third_party/hip-cpu, MIT). This directory comes first on the
// include path of the emulated build, so `#include <cuda_runtime.h>` lands here; it is also
// force-included into every translation unit of that build. See csrc/emu/README.md for what
// emulation covers and what it cannot show.
#pragma once

// hip_defines.h first, so that its GCC kernel attributes can be replaced before the runtime's
// templates are parsed: `simd` clones every kernel for several vector ABIs (a 178 MB object after
// minutes of compiling) and `flatten` inlines whole call trees into each launch. Neither changes
// results; both only cost compile time. hip_defines.h is `#pragma once`, so the runtime's own
// include of it is a no-op afterwards.
#include <hip/hip_defines.h>
#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __HIP_TILE_FUNCTION__
#define __HIP_TILE_FUNCTION__
#undef __HIP_VECTORISED_LOOP__
#define __HIP_VECTORISED_LOOP__
#include <hip/hip_runtime.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emu_control.h"

#define MEDSEG_CUDA_EMULATION 1

using cudaError_t = hipError_t;
using cudaStream_t = hipStream_t;
constexpr cudaError_t cudaSuccess = hipSuccess;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice,
                      cudaMemcpyDefault };

namespace msf_emu {

// HIP-CPU defect 3: work submitted to its null stream can run out of order (a kernel overlapped
// the one launched before it in 179 of 200 tries). Every CUDA call on stream 0 goes to one
// private stream instead, whose work runs in submission order.
cudaStream_t null_stream_replacement();
inline cudaStream_t stream(cudaStream_t s) { return s ? s : null_stream_replacement(); }

// `kernel<<<grid, block, shmem, stream>>>(args...)` is rewritten by csrc/emu/rewrite_cuda.py into
// `::msf_emu::Launch(grid, block, shmem, stream)(&kernel)(args...)`.
struct Launch {
    dim3 grid, block;
    std::size_t shmem;
    cudaStream_t s;
    Launch(dim3 g, dim3 b, std::size_t bytes = 0, cudaStream_t st = nullptr) : grid(g), block(b), shmem(bytes), s(st) {}

    template <typename... P>
    struct Bound {
        const Launch* cfg;
        void (*fn)(P...);
        template <typename... A>
        void operator()(A&&... args) const {
            count_launch();
            // As in CUDA, the arguments are converted to the kernel's parameter types and copied
            // at launch; the kernel runs later, in stream order.
            ::hip::detail::launch(cfg->grid, cfg->block, static_cast<std::uint32_t>(cfg->shmem), stream(cfg->s),
                                  [f = fn](auto&&... xs) noexcept { f(xs...); },
                                  std::tuple<std::decay_t<P>...>(std::forward<A>(args)...));
        }
    };
    template <typename... P>
    Bound<P...> operator()(void (*fn)(P...)) const { return Bound<P...>{this, fn}; }
};

// HIP-CPU defect 1: on GCC's fallback path its atomicMin/atomicMax return the new value instead
// of the old one (the union-find in components_label.cu then miscounts). Exact CUDA semantics:
template <typename T>
inline T atomic_min(T* p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
template <typename T>
inline T atomic_max(T* p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}

// 32-lane warp functions. HIP-CPU runs a block's threads in turn on fibers, one block per OS
// thread at a time, so a warp's lanes exchange values through a per-thread (= per-block)
// scratch array between two barriers. That needs block-uniform control flow at the call site,
// which every caller in csrc/cuda has (all lanes of a block run the same iterations).
constexpr int kWarp = 32;
constexpr int kMaxThreads = 1024;
inline unsigned linear_thread() {
    return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}
inline std::uint64_t* lane_scratch() {
    thread_local std::uint64_t slots[kMaxThreads];
    return slots;
}
template <typename T>
inline T shfl_down(T v, unsigned delta) {
    static_assert(sizeof(T) <= sizeof(std::uint64_t) && std::is_trivially_copyable_v<T>);
    std::uint64_t* slots = lane_scratch();
    const unsigned t = linear_thread(), lane = t % kWarp;
    std::memcpy(&slots[t], &v, sizeof(T));
    __syncthreads();
    T out = v;
    if (lane + delta < static_cast<unsigned>(kWarp)) std::memcpy(&out, &slots[t + delta], sizeof(T));
    __syncthreads();
    return out;
}
inline unsigned match_any(unsigned key) {
    std::uint64_t* slots = lane_scratch();
    const unsigned t = linear_thread(), first = t - t % kWarp;
    const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    slots[t] = key;
    __syncthreads();
    unsigned peers = 0;
    for (unsigned l = 0; l < static_cast<unsigned>(kWarp) && first + l < threads; ++l)
        if (static_cast<unsigned>(slots[first + l]) == key) peers |= 1u << l;
    __syncthreads();
    return peers;
}

}  // namespace msf_emu

#define atomicMin(p, v) ::msf_emu::atomic_min((p), (v))
#define atomicMax(p, v) ::msf_emu::atomic_max((p), (v))
#define __shfl_down_sync(mask, v, delta) ::msf_emu::shfl_down((v), (delta))
#define __match_any_sync(mask, key) ::msf_emu::match_any((key))
#define __syncwarp(...) __syncthreads()

inline float __fmul_rn(float a, float b) { return a * b; }   // -ffp-contract=off: never fused

// CUDA's global min/max overloads (floating point: fmin/fmax, NaN-ignoring like the device's).
inline float min(float a, float b) { return std::fmin(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline int min(int a, int b) { return b < a ? b : a; }
inline int max(int a, int b) { return a < b ? b : a; }
inline long long min(long long a, long long b) { return b < a ? b : a; }
inline long long max(long long a, long long b) { return a < b ? b : a; }

inline cudaError_t cudaGetLastError() { return hipGetLastError(); }
inline const char* cudaGetErrorString(cudaError_t e) { return hipGetErrorString(e); }
inline cudaError_t cudaGetDeviceCount(int* n) { return hipGetDeviceCount(n); }
inline cudaError_t cudaRuntimeGetVersion(int* v) { return hipRuntimeGetVersion(v); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) { return hipStreamSynchronize(msf_emu::stream(s)); }

// HIP-CPU defect 2: hipMallocAsync defers the allocation until the stream reaches it, so the
// pointer is still null when the next launch captures it. Allocate at once; free only after the
// stream's earlier work is done (what cudaFreeAsync guarantees).
inline cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) { return hipMalloc(p, bytes); }
template <typename T>
inline cudaError_t cudaMallocAsync(T** p, std::size_t bytes, cudaStream_t s) {
    return cudaMallocAsync(reinterpret_cast<void**>(p), bytes, s);
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
    const cudaError_t e = hipStreamSynchronize(msf_emu::stream(s));
    if (e != hipSuccess) return e;
    return p ? hipFree(p) : hipSuccess;
}
// Copies and fills wait for the stream, then run on the host (all emulated memory is host memory).
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind, cudaStream_t s) {
    const cudaError_t e = hipStreamSynchronize(msf_emu::stream(s));
    if (e == hipSuccess && bytes) std::memmove(dst, src, bytes);
    return e;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t s) {
    const cudaError_t e = hipStreamSynchronize(msf_emu::stream(s));
    if (e == hipSuccess && bytes) std::memset(p, value, bytes);
    return e;
}
