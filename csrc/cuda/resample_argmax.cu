// CUDA fused resample + argmax: classes are resampled a chunk at a time by cuda::resample (so
// every value is the one resample writes) into a stream-ordered scratch buffer, and one kernel
// folds each chunk into the running maximum and the label map. Memory: the labels, one float
// running maximum and the chunk (a few classes), never (classes, *out).
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "check.h"
#include "medseg/dispatch.h"
#include "resample_cuda.h"

namespace medseg::cuda {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kChunkBytes = int64_t(256) << 20;   // scratch for resampled classes

struct OutGeom {
    int64_t n1, n2, n3;
    int64_t s1, s2, s3;
};

// Strictly greater wins (ties: lowest class; NaN never wins); the first chunk starts from -inf.
template <typename W, typename C, typename L>
__global__ void fold_kernel(const W* __restrict__ vals, int64_t count, int classes, int64_t c0, bool first,
                            C* __restrict__ best, L* __restrict__ out, OutGeom g) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
        C b = first ? -std::numeric_limits<C>::infinity() : best[i];
        const int64_t k = i % g.n3, j = (i / g.n3) % g.n2, r = i / (g.n3 * g.n2);
        L* o = out + r * g.s1 + j * g.s2 + k * g.s3;
        L lab = first ? L(0) : *o;
        for (int c = 0; c < classes; ++c) {
            const C v = load_as<C>(vals[c * count + i]);
            if (v > b) {
                b = v;
                lab = static_cast<L>(c0 + c);
            }
        }
        best[i] = b;
        *o = lab;
    }
}

}  // namespace

void resample_argmax(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out, uintptr_t stream_handle) {
    for (int a = 0; a < kResampleDims; ++a)
        if (spec.in_shape[a] <= 0 || (a > 0 && spec.out_shape[a] <= 0))
            throw std::invalid_argument("resample_argmax: every extent must be positive");
    cudaStream_t stream = as_stream(stream_handle);
    const int64_t classes = spec.in_shape[0];
    const int64_t count = spec.out_shape[1] * spec.out_shape[2] * spec.out_shape[3];
    const size_t wsize = dispatch_all(in.dtype, [](auto tag) { return sizeof(typename decltype(tag)::type); });
    const int64_t chunk = std::clamp<int64_t>(kChunkBytes / std::max<int64_t>(1, count * int64_t(wsize)), 1, classes);
    const bool wide = in.dtype == DType::Float64;
    const size_t csize = wide ? sizeof(double) : sizeof(float);
    void* vals = nullptr;
    void* best = nullptr;
    MSF_CUDA_CHECK(cudaMallocAsync(&vals, wsize * chunk * count, stream));
    MSF_CUDA_CHECK(cudaMallocAsync(&best, csize * count, stream));
    const OutGeom g{spec.out_shape[1], spec.out_shape[2], spec.out_shape[3], out.strides.s[1], out.strides.s[2],
                    out.strides.s[3]};
    const int blocks = fixed_grid(count, kBlock, 65535);
    try {
        for (int64_t c0 = 0; c0 < classes; c0 += chunk) {
            const int64_t cc = std::min(chunk, classes - c0);
            ResampleSpec part = spec;
            part.in_shape[0] = part.out_shape[0] = cc;
            ArrayArg src = in;
            src.ptr = in.ptr + static_cast<uintptr_t>(c0 * in.strides.s[0] * static_cast<int64_t>(wsize));
            ArrayArg dst;
            dst.ptr = reinterpret_cast<uintptr_t>(vals);
            dst.dtype = in.dtype;
            dst.strides.s[3] = 1;
            dst.strides.s[2] = spec.out_shape[3];
            dst.strides.s[1] = spec.out_shape[2] * spec.out_shape[3];
            dst.strides.s[0] = count;
            resample(part, src, dst, stream_handle);
            dispatch_float_out(in.dtype, [&](auto w_tag) {
                using W = typename decltype(w_tag)::type;
                using C = typename ResampleCompute<W, W>::type;
                dispatch_label_out(out.dtype, [&](auto l_tag) {
                    using L = typename decltype(l_tag)::type;
                    fold_kernel<W, C, L><<<blocks, kBlock, 0, stream>>>(static_cast<const W*>(vals), count,
                                                                        static_cast<int>(cc), c0, c0 == 0,
                                                                        static_cast<C*>(best), out.data<L>(), g);
                });
            });
            MSF_CUDA_CHECK(cudaGetLastError());
        }
    } catch (...) {
        cudaFreeAsync(vals, stream);
        cudaFreeAsync(best, stream);
        throw;
    }
    MSF_CUDA_CHECK(cudaFreeAsync(vals, stream));
    MSF_CUDA_CHECK(cudaFreeAsync(best, stream));
}

}  // namespace medseg::cuda
