// CUDA windowing / affine normalization; per-voxel math from medseg/intensity.h.
#include <stdexcept>

#include "check.h"
#include "intensity_cuda.h"
#include "medseg/dispatch.h"

namespace medseg::cuda {
namespace {

constexpr int kMaxWindows = 16;
constexpr int kBlock = 256;

struct WindowPack {
    int count;
    WindowParams w[kMaxWindows];
};

template <typename T, typename O, typename C, bool kMasked, bool kContiguous>
__global__ void window_kernel(Layout layout, const T* __restrict__ in, Strides in_s, O* __restrict__ out,
                              Strides out_s, int64_t out_window_stride, WindowPack pack,
                              const uint8_t* __restrict__ mask, Strides mask_s, double outside_value, int64_t n) {
    const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
        const int64_t in_off = kContiguous ? i : in_s.offset(layout, i);
        const int64_t out_off = kContiguous ? i : out_s.offset(layout, i);
        const bool inside = !kMasked || mask[kContiguous ? i : mask_s.offset(layout, i)] != 0;
        const C x = load_as<C>(in[in_off]);
        for (int w = 0; w < pack.count; ++w) {
            const C y = inside ? WindowIn<C>::of(pack.w[w]).apply(x) : C(outside_value);
            out[out_off + w * out_window_stride] = store_from<O>(y);
        }
    }
}

bool unit_strides(const Layout& layout, const Strides& s) {
    return layout.ndim == 1 && s.s[0] == 1;
}

}  // namespace

void window_apply(const Layout& layout, const ArrayArg& in, const ArrayArg& out, int64_t out_window_stride,
                  const std::vector<WindowParams>& windows, const ArrayArg& mask, double outside_value,
                  uintptr_t stream) {
    const int64_t n = layout_size(layout);
    if (n == 0 || windows.empty()) return;
    const bool contiguous = unit_strides(layout, in.strides) && unit_strides(layout, out.strides) &&
                            (!mask.present() || unit_strides(layout, mask.strides));
    for (size_t first = 0; first < windows.size(); first += kMaxWindows) {
        WindowPack pack{};
        pack.count = static_cast<int>(std::min<size_t>(kMaxWindows, windows.size() - first));
        for (int w = 0; w < pack.count; ++w) pack.w[w] = windows[first + w];
        const int64_t window_offset = static_cast<int64_t>(first) * out_window_stride;
        dispatch_all(in.dtype, [&](auto in_tag) {
            using T = typename decltype(in_tag)::type;
            dispatch_float_out(out.dtype, [&](auto out_tag) {
                using O = typename decltype(out_tag)::type;
                const int block = block_size(kBlock);
                const int grid = fixed_grid(n, block, 65535);
                const T* src = in.data<T>();
                O* dst = out.data<O>() + window_offset;
                const uint8_t* m = mask.present() ? mask.data<uint8_t>() : nullptr;
                auto s = as_stream(stream);
                auto run = [&](auto compute_tag) {
                    using C = decltype(compute_tag);
                    if (mask.present()) {
                        if (contiguous)
                            window_kernel<T, O, C, true, true><<<grid, block, 0, s>>>(layout, src, in.strides, dst, out.strides, out_window_stride, pack, m, mask.strides, outside_value, n);
                        else
                            window_kernel<T, O, C, true, false><<<grid, block, 0, s>>>(layout, src, in.strides, dst, out.strides, out_window_stride, pack, m, mask.strides, outside_value, n);
                    } else {
                        if (contiguous)
                            window_kernel<T, O, C, false, true><<<grid, block, 0, s>>>(layout, src, in.strides, dst, out.strides, out_window_stride, pack, m, mask.strides, outside_value, n);
                        else
                            window_kernel<T, O, C, false, false><<<grid, block, 0, s>>>(layout, src, in.strides, dst, out.strides, out_window_stride, pack, m, mask.strides, outside_value, n);
                    }
                };
                with_window_compute<T>(windows, run);
                MSF_CUDA_CHECK(cudaGetLastError());
            });
        });
    }
}

}  // namespace medseg::cuda
