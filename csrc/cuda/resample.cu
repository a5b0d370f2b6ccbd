// CUDA resampling: the same separable passes, taps and B-spline prefilter as the CPU driver
// (medseg/resample.h), one thread per output element (per line for the prefilter).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.h"
#include "medseg/dispatch.h"
#include "resample_cuda.h"

namespace medseg::cuda {
namespace {

constexpr int kBlock = 256;

struct Geom4 {
    int64_t shape[kResampleDims];
    int64_t s[kResampleDims];
};

struct ClipArgs {
    const double* lo = nullptr;
    const double* hi = nullptr;
    int64_t groups_per_channel = 1;
    int clip_axis = 0;
};

__device__ inline void unravel4(int64_t i, const int64_t* shape, int64_t* idx) {
    for (int a = kResampleDims - 1; a >= 0; --a) {
        idx[a] = i % shape[a];
        i /= shape[a];
    }
}

inline int grid_for(int64_t n) { return fixed_grid(n, kBlock, 65535); }

Geom4 contiguous(const int64_t* shape) {
    Geom4 g;
    int64_t stride = 1;
    for (int a = kResampleDims - 1; a >= 0; --a) {
        g.shape[a] = shape[a];
        g.s[a] = stride;
        stride *= shape[a];
    }
    return g;
}

Geom4 geom(const int64_t* shape, const Strides& strides) {
    Geom4 g;
    for (int a = 0; a < kResampleDims; ++a) {
        g.shape[a] = shape[a];
        g.s[a] = strides.s[a];
    }
    return g;
}

size_t dtype_size(DType dtype) {
    return dispatch_all(dtype, [](auto tag) { return sizeof(typename decltype(tag)::type); });
}

template <typename Fn>
void dispatch_compute(DType dtype, Fn&& fn) {
    if (dtype == DType::Float64) fn(TypeTag<double>{});
    else fn(TypeTag<float>{});
}

// ----------------------------------------------------------------------------- clip bounds
template <typename T>
__global__ void minmax_kernel(const T* __restrict__ in, int64_t s0, int64_t sk, int64_t s1, int64_t s2, int64_t nk,
                              int64_t n1, int64_t n2, double* plo, double* phi) {
    using M = typename ResampleCompute<T, float>::type;
    __shared__ M smin[kBlock], smax[kBlock];
    const int64_t part = blockIdx.x;
    const T* base = in + (part / nk) * s0 + (part % nk) * sk;
    M mn = INFINITY, mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n1 * n2; i += blockDim.x) {
        const M v = load_as<M>(base[(i / n2) * s1 + (i % n2) * s2]);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    smin[threadIdx.x] = mn;
    smax[threadIdx.x] = mx;
    __syncthreads();
    for (int step = blockDim.x / 2; step > 0; step >>= 1) {
        if (threadIdx.x < step) {
            const M a = smin[threadIdx.x + step], b = smax[threadIdx.x + step];
            smin[threadIdx.x] = a < smin[threadIdx.x] ? a : smin[threadIdx.x];
            smax[threadIdx.x] = b > smax[threadIdx.x] ? b : smax[threadIdx.x];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        plo[part] = static_cast<double>(smin[0]);
        phi[part] = static_cast<double>(smax[0]);
    }
}

// Per group: the partial ranges combined (per channel) and empty groups opened up.
__global__ void minmax_finish(const double* plo, const double* phi, int64_t groups, int64_t parts_per_group,
                              double* lo, double* hi) {
    const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (g >= groups) return;
    double mn = INFINITY, mx = -INFINITY;
    for (int64_t k = 0; k < parts_per_group; ++k) {
        mn = fmin(mn, plo[g * parts_per_group + k]);
        mx = fmax(mx, phi[g * parts_per_group + k]);
    }
    if (!(mn <= mx)) {
        mn = -INFINITY;
        mx = INFINITY;
    }
    lo[g] = mn;
    hi[g] = mx;
}

// ----------------------------------------------------------------------------- passes
// One thread per line along `axis`: copy with edge padding into `coef`, then prefilter.
template <typename R, typename C>
__global__ void prefilter_kernel(Geom4 src, int axis, const R* __restrict__ in, Geom4 cg, C* coef, int64_t lines) {
    int64_t other[kResampleDims];
    int n_other = 0;
    for (int a = 0; a < kResampleDims; ++a)
        if (a != axis) other[n_other++] = a;
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; line < lines; line += step) {
        int64_t rem = line, ioff = 0, coff = 0;
        for (int i = n_other - 1; i >= 0; --i) {
            const int a = static_cast<int>(other[i]);
            const int64_t idx = rem % src.shape[a];
            rem /= src.shape[a];
            ioff += idx * src.s[a];
            coff += idx * cg.s[a];
        }
        const int64_t n = src.shape[axis], rs = cg.s[axis], is = src.s[axis];
        C* c = coef + coff;
        for (int64_t i = 0; i < n; ++i) c[(kSplinePad + i) * rs] = load_as<C>(in[ioff + i * is]);
        const C first = c[kSplinePad * rs], last = c[(kSplinePad + n - 1) * rs];
        for (int64_t i = 0; i < kSplinePad; ++i) {
            c[i * rs] = first;
            c[(kSplinePad + n + i) * rs] = last;
        }
        bspline_prefilter_lanes<C>(c, n + 2 * kSplinePad, rs, 1);
    }
}

// One thread per output element of a pass. `src` describes what is read: the source itself
// (orders 0/1) or the padded coefficients (order 3); n_in is the unpadded length.
template <typename R, typename W>
__global__ void interp_kernel(Geom4 src, int64_t n_in, int axis, int order, const R* __restrict__ in, Geom4 dst,
                              W* __restrict__ out, ClipArgs clip, int64_t index0_c, int64_t total) {
    using C = typename ResampleCompute<R, W>::type;
    const int taps = resample_taps(n_in, order);
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t idx[kResampleDims];
        unravel4(i, dst.shape, idx);
        int64_t first;
        double w[4] = {0.0, 0.0, 0.0, 0.0};
        resample_axis_taps(idx[axis], n_in, dst.shape[axis], order, first, w);
        int64_t base = 0, doff = 0;
        for (int a = 0; a < kResampleDims; ++a) {
            doff += idx[a] * dst.s[a];
            if (a != axis) base += idx[a] * src.s[a];
        }
        const R* p = in + base + first * src.s[axis];
        C acc = static_cast<C>(w[0]) * load_as<C>(p[0]);
        for (int k = 1; k < taps; ++k) acc += static_cast<C>(w[k]) * load_as<C>(p[k * src.s[axis]]);
        if (clip.lo) {
            const int64_t g = (index0_c + idx[0]) * clip.groups_per_channel + (clip.clip_axis > 0 ? idx[clip.clip_axis] : 0);
            acc = clamp_keep_nan(acc, static_cast<C>(clip.lo[g]), static_cast<C>(clip.hi[g]));
        }
        out[doff] = store_from<W>(acc);
    }
}

template <typename E>
__global__ void nearest_kernel(Geom4 src, const E* __restrict__ in, Geom4 dst, E* __restrict__ out, int64_t total) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t idx[kResampleDims];
        unravel4(i, dst.shape, idx);
        int64_t soff = idx[0] * src.s[0], doff = idx[0] * dst.s[0];
        double w[4] = {0.0, 0.0, 0.0, 0.0};
        for (int a = 1; a < kResampleDims; ++a) {
            int64_t first;
            resample_axis_taps(idx[a], src.shape[a], dst.shape[a], 0, first, w);
            soff += first * src.s[a];
            doff += idx[a] * dst.s[a];
        }
        out[doff] = in[soff];
    }
}

struct Orders4 {
    int v[kResampleDims];
};

template <typename L>
__global__ void labels_kernel(Geom4 src, const L* __restrict__ in, Geom4 dst, L* __restrict__ out, Orders4 orders,
                              int64_t total) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t idx[kResampleDims];
        unravel4(i, dst.shape, idx);
        int64_t o0[3], o1[3];
        float w0[3], w1[3];
        for (int a = 1; a < kResampleDims; ++a) {
            int64_t first;
            double w[4] = {0.0, 0.0, 0.0, 0.0};
            resample_axis_taps(idx[a], src.shape[a], dst.shape[a], orders.v[a], first, w);
            const bool two = resample_taps(src.shape[a], orders.v[a]) == 2;
            o0[a - 1] = first * src.s[a];
            o1[a - 1] = (two ? first + 1 : first) * src.s[a];
            w0[a - 1] = static_cast<float>(w[0]);
            w1[a - 1] = two ? static_cast<float>(w[1]) : 0.0f;
        }
        const L* base = in + idx[0] * src.s[0];
        L labels[8];
        float weights[8];
        for (int k = 0; k < 8; ++k) {
            const int bz = (k >> 2) & 1, by = (k >> 1) & 1, bx = k & 1;
            labels[k] = base[(bz ? o1[0] : o0[0]) + (by ? o1[1] : o0[1]) + (bx ? o1[2] : o0[2])];
            weights[k] = (bz ? w1[0] : w0[0]) * (by ? w1[1] : w0[1]) * (bx ? w1[2] : w0[2]);
        }
        int64_t doff = 0;
        for (int a = 0; a < kResampleDims; ++a) doff += idx[a] * dst.s[a];
        out[doff] = label_vote<L>(labels, weights, 8);
    }
}

bool wide_compute(DType in, DType out) {
    return in == DType::Float64 || out == DType::Float64 || in == DType::Int32 || in == DType::UInt32 ||
           in == DType::Int64 || in == DType::UInt64;
}

bool any_empty(const int64_t* a, const int64_t* b) {
    for (int i = 0; i < kResampleDims; ++i)
        if (a[i] <= 0 || b[i] <= 0) return true;
    return false;
}

int64_t volume(const int64_t* shape) {
    int64_t n = 1;
    for (int a = 0; a < kResampleDims; ++a) n *= shape[a];
    return n;
}

void* device_alloc(size_t bytes, cudaStream_t stream) {
    void* p = nullptr;
    MSF_CUDA_CHECK(cudaMallocAsync(&p, bytes ? bytes : 1, stream));
    return p;
}

}  // namespace

void resample(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out, uintptr_t stream_handle) {
    if (any_empty(spec.in_shape, spec.out_shape)) return;
    cudaStream_t stream = as_stream(stream_handle);
    PassPlan plan = plan_resample_passes(spec);
    const bool identity = plan.count == 0;
    if (identity) {
        plan.count = 1;
        plan.axes[0] = 1;
        plan.clip_pass = -1;
    }
    const DType cdt = wide_compute(in.dtype, out.dtype) ? DType::Float64 : DType::Float32;
    const size_t csize = cdt == DType::Float64 ? 8 : 4;

    ClipArgs clip;
    double* bounds = nullptr;
    if (plan.clip_pass >= 0) {
        const int k = spec.clip_axis > 0 ? spec.clip_axis : 1;
        int other[2], n_other = 0;
        for (int a = 1; a < kResampleDims; ++a)
            if (a != k) other[n_other++] = a;
        const int64_t channels = spec.in_shape[0], nk = spec.in_shape[k];
        const int64_t parts = channels * nk;
        const int64_t groups = spec.clip_axis > 0 ? parts : channels;
        bounds = static_cast<double*>(device_alloc(sizeof(double) * 2 * (parts + groups), stream));
        double *plo = bounds, *phi = bounds + parts, *lo = bounds + 2 * parts, *hi = lo + groups;
        dispatch_all(in.dtype, [&](auto tag) {
            using T = typename decltype(tag)::type;
            minmax_kernel<T><<<static_cast<unsigned>(parts), kBlock, 0, stream>>>(
                in.data<T>(), in.strides.s[0], in.strides.s[k], in.strides.s[other[0]], in.strides.s[other[1]], nk,
                spec.in_shape[other[0]], spec.in_shape[other[1]], plo, phi);
        });
        MSF_CUDA_CHECK(cudaGetLastError());
        minmax_finish<<<static_cast<unsigned>((groups + kBlock - 1) / kBlock), kBlock, 0, stream>>>(
            plo, phi, groups, parts / groups, lo, hi);
        MSF_CUDA_CHECK(cudaGetLastError());
        clip.lo = lo;
        clip.hi = hi;
        clip.clip_axis = spec.clip_axis;
        clip.groups_per_channel = spec.clip_axis > 0 ? spec.in_shape[spec.clip_axis] : 1;
    }

    ArrayArg cur = in;
    int64_t cur_shape[kResampleDims];
    for (int a = 0; a < kResampleDims; ++a) cur_shape[a] = spec.in_shape[a];
    void* cur_tmp = nullptr;
    for (int p = 0; p < plan.count; ++p) {
        const int axis = plan.axes[p];
        const int order = identity ? 0 : spec.order[axis];
        int64_t next_shape[kResampleDims];
        for (int a = 0; a < kResampleDims; ++a) next_shape[a] = cur_shape[a];
        next_shape[axis] = spec.out_shape[axis];
        const bool last = p + 1 == plan.count;
        void* next_tmp = nullptr;
        ArrayArg dst = out;
        Geom4 dg = geom(next_shape, out.strides);
        if (!last) {
            next_tmp = device_alloc(csize * volume(next_shape), stream);
            dst.ptr = reinterpret_cast<uintptr_t>(next_tmp);
            dst.dtype = cdt;
            dg = contiguous(next_shape);
            for (int a = 0; a < kResampleDims; ++a) dst.strides.s[a] = dg.s[a];   // the next pass reads it so
        }
        const ClipArgs pass_clip = p == plan.clip_pass ? clip : ClipArgs{};
        const int64_t total = volume(next_shape);
        if (order == 3) {
            int64_t padded[kResampleDims];
            for (int a = 0; a < kResampleDims; ++a) padded[a] = cur_shape[a];
            padded[axis] += 2 * kSplinePad;
            const Geom4 cg = contiguous(padded);
            void* coef = device_alloc(csize * volume(padded), stream);
            const int64_t lines = volume(cur_shape) / cur_shape[axis];
            dispatch_all(cur.dtype, [&](auto r_tag) {
                using R = typename decltype(r_tag)::type;
                dispatch_compute(cdt, [&](auto c_tag) {
                    using C = typename decltype(c_tag)::type;
                    prefilter_kernel<R, C><<<grid_for(lines), kBlock, 0, stream>>>(
                        geom(cur_shape, cur.strides), axis, cur.data<R>(), cg, static_cast<C*>(coef), lines);
                });
            });
            MSF_CUDA_CHECK(cudaGetLastError());
            Geom4 src = cg;
            src.shape[axis] = cur_shape[axis];
            dispatch_compute(cdt, [&](auto c_tag) {
                using C = typename decltype(c_tag)::type;
                dispatch_float_out(dst.dtype, [&](auto w_tag) {
                    using W = typename decltype(w_tag)::type;
                    interp_kernel<C, W><<<grid_for(total), kBlock, 0, stream>>>(
                        src, cur_shape[axis], axis, 3, static_cast<const C*>(coef), dg, dst.data<W>(), pass_clip, 0,
                        total);
                });
            });
            MSF_CUDA_CHECK(cudaGetLastError());
            MSF_CUDA_CHECK(cudaFreeAsync(coef, stream));
        } else {
            dispatch_all(cur.dtype, [&](auto r_tag) {
                using R = typename decltype(r_tag)::type;
                dispatch_float_out(dst.dtype, [&](auto w_tag) {
                    using W = typename decltype(w_tag)::type;
                    interp_kernel<R, W><<<grid_for(total), kBlock, 0, stream>>>(
                        geom(cur_shape, cur.strides), cur_shape[axis], axis, order, cur.data<R>(), dg, dst.data<W>(),
                        pass_clip, 0, total);
                });
            });
            MSF_CUDA_CHECK(cudaGetLastError());
        }
        if (cur_tmp) MSF_CUDA_CHECK(cudaFreeAsync(cur_tmp, stream));
        cur_tmp = next_tmp;
        cur = dst;
        for (int a = 0; a < kResampleDims; ++a) cur_shape[a] = next_shape[a];
    }
    if (cur_tmp) MSF_CUDA_CHECK(cudaFreeAsync(cur_tmp, stream));
    if (bounds) MSF_CUDA_CHECK(cudaFreeAsync(bounds, stream));
}

void resample_nearest(const int64_t* in_shape, const int64_t* out_shape, const ArrayArg& in, const ArrayArg& out,
                      uintptr_t stream_handle) {
    if (any_empty(in_shape, out_shape)) return;
    if (in.dtype != out.dtype) throw std::invalid_argument("resample_nearest: input and output dtypes differ");
    cudaStream_t stream = as_stream(stream_handle);
    const int64_t total = volume(out_shape);
    const Geom4 sg = geom(in_shape, in.strides), dg = geom(out_shape, out.strides);
    const size_t size = dtype_size(in.dtype);
    const int grid = grid_for(total);
    if (size == 1) nearest_kernel<uint8_t><<<grid, kBlock, 0, stream>>>(sg, in.data<uint8_t>(), dg, out.data<uint8_t>(), total);
    else if (size == 2) nearest_kernel<uint16_t><<<grid, kBlock, 0, stream>>>(sg, in.data<uint16_t>(), dg, out.data<uint16_t>(), total);
    else if (size == 4) nearest_kernel<uint32_t><<<grid, kBlock, 0, stream>>>(sg, in.data<uint32_t>(), dg, out.data<uint32_t>(), total);
    else nearest_kernel<uint64_t><<<grid, kBlock, 0, stream>>>(sg, in.data<uint64_t>(), dg, out.data<uint64_t>(), total);
    MSF_CUDA_CHECK(cudaGetLastError());
}

void resample_labels(const int64_t* in_shape, const int64_t* out_shape, const int* orders, const ArrayArg& in,
                     const ArrayArg& out, uintptr_t stream_handle) {
    if (any_empty(in_shape, out_shape)) return;
    if (in.dtype != out.dtype) throw std::invalid_argument("resample_labels: input and output dtypes differ");
    cudaStream_t stream = as_stream(stream_handle);
    const int64_t total = volume(out_shape);
    const Geom4 sg = geom(in_shape, in.strides), dg = geom(out_shape, out.strides);
    Orders4 ord;
    for (int a = 0; a < kResampleDims; ++a) ord.v[a] = orders[a];
    dispatch_all(in.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_integral<T>::value) {
            labels_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(sg, in.data<T>(), dg, out.data<T>(), ord, total);
        } else {
            throw std::invalid_argument(std::string("resample_labels needs integer labels, got ") + dtype_name(in.dtype));
        }
    });
    MSF_CUDA_CHECK(cudaGetLastError());
}

}  // namespace medseg::cuda
