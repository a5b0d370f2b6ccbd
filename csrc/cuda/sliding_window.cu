// CUDA sliding-window gather / weighted scatter-add / finalize; index and weight math from
// medseg/sliding_window.h (the same functions the CPU drivers use).
//
// Scatter launches one kernel per window on the caller's stream: launches on a stream run in
// order, so every voxel receives its contributions in window order without atomics, and the sums
// are bit-identical to the CPU's.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.h"
#include "medseg/dispatch.h"
#include "sliding_window_cuda.h"

namespace medseg::cuda {
namespace {

constexpr int kBlock = 256;

struct Strides5 {
    int64_t s[5];
};

Strides5 strides5(const ArrayArg& a) {
    Strides5 r;
    for (int i = 0; i < 5; ++i) r.s[i] = a.strides.s[i];
    return r;
}

template <typename T, typename O>
__global__ void gather_kernel(SwGrid g, const T* __restrict__ x, Strides5 xs, O* __restrict__ out, Strides5 os,
                              int64_t channels, int64_t first, int64_t total) {
    const int64_t windows = g.windows();
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
        int64_t r = e;
        const int64_t jx = r % g.patch[2]; r /= g.patch[2];
        const int64_t jy = r % g.patch[1]; r /= g.patch[1];
        const int64_t jz = r % g.patch[0]; r /= g.patch[0];
        const int64_t c = r % channels;
        const int64_t i = r / channels;
        const int64_t global = first + i;
        int64_t o[3];
        window_origin(g, global % windows, o);
        const int64_t z = o[0] + jz, y = o[1] + jy, xx = o[2] + jx;
        O value = store_from<O>(0.0f);
        if (z >= 0 && z < g.image[0] && y >= 0 && y < g.image[1] && xx >= 0 && xx < g.image[2]) {
            const T v = x[(global / windows) * xs.s[0] + c * xs.s[1] + z * xs.s[2] + y * xs.s[3] + xx * xs.s[4]];
            if constexpr (std::is_same<T, O>::value) value = v;
            else value = store_from<O>(load_as<float>(v));
        }
        out[i * os.s[0] + c * os.s[1] + jz * os.s[2] + jy * os.s[3] + jx * os.s[4]] = value;
    }
}

// Window `local` of the call (flattened index first + local): every (channel or weight plane, voxel).
template <typename P>
__global__ void scatter_kernel(SwGrid g, const float* __restrict__ imp, const P* __restrict__ patches, Strides5 ps,
                               float* __restrict__ acc, Strides5 as, float* __restrict__ weights, Strides5 ws,
                               SwRegion reg, int64_t first, int64_t local) {
    const int64_t windows = g.windows();
    const int64_t global = first + local;
    const int64_t b = global / windows;
    if (b >= reg.batch) return;
    int64_t o[3], idx[3];
    window_origin(g, global % windows, o);
    window_indices(g, global % windows, idx);
    const int64_t planes = reg.channels + (weights != nullptr ? 1 : 0);
    const int64_t voxels = g.patch_voxels();
    const int64_t total = planes * voxels;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
        const int64_t v = e % voxels;
        const int64_t k = e / voxels;
        const int64_t jx = v % g.patch[2];
        const int64_t jy = (v / g.patch[2]) % g.patch[1];
        const int64_t jz = v / (g.patch[2] * g.patch[1]);
        const int64_t img[3] = {o[0] + jz, o[1] + jy, o[2] + jx};
        int64_t rel[3];
        bool inside = true;
        for (int a = 0; a < 3; ++a) {
            rel[a] = img[a] - reg.origin[a];
            inside = inside && img[a] >= 0 && img[a] < g.image[a] && rel[a] >= 0 && rel[a] < reg.shape[a];
        }
        if (!inside) continue;
        const float w = imp[v];
        if (k == reg.channels) {
            float* d = weights + b * ws.s[0] + reg.index(0, rel[0]) * ws.s[1] + reg.index(1, rel[1]) * ws.s[2] + rel[2] * ws.s[3];
            *d = plain_add(*d, w);
        } else {
            const P p = patches[local * ps.s[0] + k * ps.s[1] + jz * ps.s[2] + jy * ps.s[3] + jx * ps.s[4]];
            float* d = acc + b * as.s[0] + k * as.s[1] + reg.index(0, rel[0]) * as.s[2] + reg.index(1, rel[1]) * as.s[3] +
                       rel[2] * as.s[4];
            bool assign = reg.assign_first != 0, divide = reg.divide_last != 0;
            for (int a = 0; a < 3; ++a) {
                assign = assign && first_cover(g.origins[a], idx[a], g.patch[a], img[a]);
                divide = divide && last_cover(g.origins[a], g.count[a], idx[a], img[a]);
            }
            float value = assign ? __fmul_rn(load_as<float>(p), w) : blend_add(*d, load_as<float>(p), w);
            if (divide) value = normalize_blend(value, weight_sum(g, imp, img[0], img[1], img[2]));
            *d = value;
        }
    }
}

template <typename O, bool kArgmax>
__global__ void finalize_kernel(SwGrid g, const float* __restrict__ imp, const float* acc, Strides5 as,
                                const float* __restrict__ weights, Strides5 ws, O* out, Strides5 os, SwRegion reg) {
    const int64_t nz = reg.shape[0], ny = reg.shape[1], nx = reg.shape[2];
    const int64_t total = reg.batch * nz * ny * nx;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
        const int64_t x = e % nx;
        const int64_t y = (e / nx) % ny;
        const int64_t z = (e / (nx * ny)) % nz;
        const int64_t b = e / (nx * ny * nz);
        const float w = reg.divide_last ? 1.0f
                        : weights != nullptr
                            ? weights[b * ws.s[0] + reg.index(0, z) * ws.s[1] + reg.index(1, y) * ws.s[2] + x * ws.s[3]]
                            : weight_sum(g, imp, z + reg.origin[0], y + reg.origin[1], x + reg.origin[2]);
        const int64_t a0 = b * as.s[0] + reg.index(0, z) * as.s[2] + reg.index(1, y) * as.s[3] + x * as.s[4];
        if constexpr (kArgmax) {
            float best = 0.0f;
            int64_t index = 0;
            for (int64_t k = 0; k < reg.channels; ++k) {
                const float p = normalize_blend(acc[a0 + k * as.s[1]], w);
                if (k == 0 || argmax_takes(p, best)) {
                    best = p;
                    index = k;
                }
            }
            out[b * os.s[0] + z * os.s[2] + y * os.s[3] + x * os.s[4]] = static_cast<O>(index);
        } else {
            const int64_t o0 = b * os.s[0] + z * os.s[2] + y * os.s[3] + x * os.s[4];
            for (int64_t k = 0; k < reg.channels; ++k)
                out[o0 + k * os.s[1]] = store_from<O>(normalize_blend(acc[a0 + k * as.s[1]], w));
        }
    }
}

}  // namespace

void sw_gather(const SwGrid& grid, const ArrayArg& x, int64_t batch, int64_t channels, const ArrayArg& out,
               int64_t first, int64_t n, uintptr_t stream) {
    const int64_t total = n * channels * grid.patch_voxels();
    if (total <= 0) return;
    const int blocks = fixed_grid(total, kBlock, 65535);
    dispatch_all(x.dtype, [&](auto in_tag) {
        using T = typename decltype(in_tag)::type;
        if (out.dtype == x.dtype) {
            gather_kernel<T, T><<<blocks, kBlock, 0, as_stream(stream)>>>(
                grid, x.data<T>(), strides5(x), out.data<T>(), strides5(out), channels, first, total);
        } else if (out.dtype == DType::Float32) {
            gather_kernel<T, float><<<blocks, kBlock, 0, as_stream(stream)>>>(
                grid, x.data<T>(), strides5(x), out.data<float>(), strides5(out), channels, first, total);
        } else {
            throw std::invalid_argument(std::string("gather output must have the input dtype or float32, got ") +
                                        dtype_name(out.dtype));
        }
        MSF_CUDA_CHECK(cudaGetLastError());
    });
}

void sw_scatter_add(const SwGrid& grid, const float* imp, const ArrayArg& patches, const ArrayArg& acc,
                    const SwRegion& region, const ArrayArg& weights, int64_t first, int64_t n, uintptr_t stream) {
    if (n <= 0 || region.batch <= 0) return;
    const int64_t planes = region.channels + (weights.present() ? 1 : 0);
    const int blocks = fixed_grid(planes * grid.patch_voxels(), kBlock, 65535);
    float* w = weights.present() ? weights.data<float>() : nullptr;
    Strides5 ws{};
    for (int i = 0; i < 4; ++i) ws.s[i] = weights.strides.s[i];
    dispatch_float_out(patches.dtype, [&](auto tag) {
        using P = typename decltype(tag)::type;
        for (int64_t local = 0; local < n; ++local) {
            scatter_kernel<P><<<blocks, kBlock, 0, as_stream(stream)>>>(grid, imp, patches.data<P>(), strides5(patches),
                                                                        acc.data<float>(), strides5(acc), w, ws,
                                                                        region, first, local);
            MSF_CUDA_CHECK(cudaGetLastError());
        }
    });
}

void sw_finalize(const SwGrid& grid, const float* imp, const ArrayArg& acc, const SwRegion& region,
                 const ArrayArg& weights, const ArrayArg& out, bool argmax, uintptr_t stream) {
    const int64_t total = region.batch * region.shape[0] * region.shape[1] * region.shape[2];
    if (total <= 0) return;
    const int blocks = fixed_grid(total, kBlock, 65535);
    const float* w = weights.present() ? weights.data<float>() : nullptr;
    Strides5 ws{};
    for (int i = 0; i < 4; ++i) ws.s[i] = weights.strides.s[i];
    if (argmax) {
        dispatch_label_out(out.dtype, [&](auto tag) {
            using O = typename decltype(tag)::type;
            finalize_kernel<O, true><<<blocks, kBlock, 0, as_stream(stream)>>>(
                grid, imp, acc.data<float>(), strides5(acc), w, ws, out.data<O>(), strides5(out), region);
        });
    } else {
        dispatch_float_out(out.dtype, [&](auto tag) {
            using O = typename decltype(tag)::type;
            finalize_kernel<O, false><<<blocks, kBlock, 0, as_stream(stream)>>>(
                grid, imp, acc.data<float>(), strides5(acc), w, ws, out.data<O>(), strides5(out), region);
        });
    }
    MSF_CUDA_CHECK(cudaGetLastError());
}

}  // namespace medseg::cuda
