// Windowing / affine normalization: one read of the input, any number of output windows.
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "intensity_cpu.h"
#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "row_tiles.h"
#include "simd_switch.h"

namespace medseg::cpu {
namespace {

SimdSwitch& window_switch() {
    static SimdSwitch sw("MEDSEG_WINDOW_SIMD");
    return sw;
}

// One contiguous run of a window. The loop is compute-bound at SSE2 width (two clamps and a
// two-part center per voxel: ~3x slower than a plain int16 -> float32 copy), so CPUs with AVX2 run
// the same loop compiled for 8 float lanes. No FMA is enabled and -ffp-contract=off holds, so both
// versions perform the same IEEE operations in the same order: results are bit-identical.
template <typename T, typename O, typename C>
void window_run(const T* src, O* target, int64_t n, const WindowIn<C>& wc) {
    for (int64_t i = 0; i < n; ++i) target[i] = store_from<O>(wc.apply(load_as<C>(src[i])));
}

// The wide version exists for the types whose loop vectorizes (plain integers and floats in,
// float32/float64 out); half/bfloat16/bool conversions have branches and stay on the portable path.
template <typename T, typename O>
constexpr bool kWideRun = std::is_arithmetic<T>::value && !std::is_same<T, bool>::value &&
                          (std::is_same<O, float>::value || std::is_same<O, double>::value);

#if defined(MEDSEG_HAVE_AVX2_PATHS)
template <typename T, typename O, typename C>
__attribute__((target("avx2"))) void window_run_avx2(const T* src, O* target, int64_t n, const WindowIn<C>& wc) {
    for (int64_t i = 0; i < n; ++i) target[i] = store_from<O>(wc.apply(load_as<C>(src[i])));
}
#endif

template <typename T, typename O, typename C>
void window_run_best(bool wide, const T* src, O* target, int64_t n, const WindowIn<C>& wc) {
#if defined(MEDSEG_HAVE_AVX2_PATHS)
    if constexpr (kWideRun<T, O>) {
        if (wide) {
            window_run_avx2(src, target, n, wc);
            return;
        }
    }
#endif
    window_run(src, target, n, wc);
}

// Outputs larger than this bypass the caches with streaming stores: the output is not read back
// soon, and skipping the read-for-ownership of every written line cuts memory traffic by a third.
constexpr int64_t kStreamingBytes = int64_t(32) << 20;
constexpr int64_t kChunk = 512;

template <typename T, typename O, typename C, bool kMasked>
void window_kernel(const Layout& layout, const ArrayArg& in, const ArrayArg& out, int64_t out_window_stride,
                   const std::vector<WindowParams>& params, const ArrayArg& mask, double outside_value) {
    std::vector<WindowIn<C>> windows;
    for (const auto& p : params) windows.push_back(WindowIn<C>::of(p));
    const O outside = store_from<O>(C(outside_value));
    const RowTiles tiles(layout);
    const int64_t in_step = last_stride(layout, in.strides);
    const int64_t out_step = last_stride(layout, out.strides);
    const int64_t mask_step = kMasked ? last_stride(layout, mask.strides) : 0;
    const T* src_base = in.data<T>();
    O* dst_base = out.data<O>();
    const uint8_t* mask_base = kMasked ? mask.data<uint8_t>() : nullptr;

    const bool wide = window_switch().active();
    const bool streaming = layout_size(layout) * static_cast<int64_t>(sizeof(O) * windows.size()) >= kStreamingBytes &&
                           sizeof(O) * kChunk % 16 == 0;
    parallel_for(tiles.items(), 64, [&](int64_t first, int64_t last, int) {
        for (int64_t item = first; item < last; ++item) {
            int64_t row, begin, count;
            tiles.locate(item, row, begin, count);
            const T* src = src_base + in.strides.row_offset(layout, row) + begin * in_step;
            O* dst0 = dst_base + out.strides.row_offset(layout, row) + begin * out_step;
            const uint8_t* m = kMasked ? mask_base + mask.strides.row_offset(layout, row) + begin * mask_step : nullptr;
            for (size_t w = 0; w < windows.size(); ++w) {
                const WindowIn<C> wc = windows[w];
                O* dst = dst0 + static_cast<int64_t>(w) * out_window_stride;
                if (!kMasked && in_step == 1 && out_step == 1) {
                    // Contiguous fast path: the compiler vectorizes these loops.
                    auto compute = [&](int64_t from, int64_t to, O* target) {
                        window_run_best(wide, src + from, target, to - from, wc);
                    };
#if defined(__SSE2__)
                    if (streaming) {
                        alignas(64) O buffer[kChunk];
                        int64_t i = 0;
                        while (i < count && (reinterpret_cast<uintptr_t>(dst + i) & 15) != 0) {
                            compute(i, i + 1, dst + i);
                            ++i;
                        }
                        for (; i + kChunk <= count; i += kChunk) {
                            compute(i, i + kChunk, buffer);
                            const __m128i* from = reinterpret_cast<const __m128i*>(buffer);
                            __m128i* to = reinterpret_cast<__m128i*>(dst + i);
                            for (size_t v = 0; v < sizeof(buffer) / 16; ++v) _mm_stream_si128(to + v, _mm_load_si128(from + v));
                        }
                        compute(i, count, dst + i);
                        continue;
                    }
#endif
                    compute(0, count, dst);
                } else {
                    for (int64_t i = 0; i < count; ++i) {
                        const C y = wc.apply(load_as<C>(src[i * in_step]));
                        if (kMasked && !m[i * mask_step]) {
                            dst[i * out_step] = outside;
                        } else {
                            dst[i * out_step] = store_from<O>(y);
                        }
                    }
                }
            }
        }
#if defined(__SSE2__)
        if (streaming) _mm_sfence();  // make streamed stores visible before the join
#endif
    });
}

}  // namespace

int window_simd_mode(int mode) { return window_switch().set_mode(mode); }

void window_apply(const Layout& layout, const ArrayArg& in, const ArrayArg& out, int64_t out_window_stride,
                  const std::vector<WindowParams>& windows, const ArrayArg& mask, double outside_value) {
    dispatch_all(in.dtype, [&](auto in_tag) {
        using T = typename decltype(in_tag)::type;
        dispatch_float_out(out.dtype, [&](auto out_tag) {
            using O = typename decltype(out_tag)::type;
            auto run = [&](auto compute_tag) {
                using C = decltype(compute_tag);
                if (mask.present())
                    window_kernel<T, O, C, true>(layout, in, out, out_window_stride, windows, mask, outside_value);
                else
                    window_kernel<T, O, C, false>(layout, in, out, out_window_stride, windows, mask, outside_value);
            };
            with_window_compute<T>(windows, run);
        });
    });
}

}  // namespace medseg::cpu
