// Per-voxel math of the intensity family, shared by the CPU and CUDA drivers.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "medseg/common.h"

namespace medseg {

// One output channel: y = (clamp(x, lo, hi) - center) * scale + offset.
// hu_window:   lo/hi = window, center = lo, scale = (b - a) / (hi - lo), offset = a.
// ct_normalize: lo/hi = percentiles, center = mean, scale = 1 / std, offset = 0.
// y_lo / y_hi: the outputs at the window ends, in double; lo_f / hi_f: lo / hi rounded outward
// to float (the float path's input clamp). make_window fills them.
struct WindowParams {
    double lo, hi, center, scale, offset, y_lo, y_hi, lo_f, hi_f;
};

// v rounded to a float in the direction `down` (or up), as a double; beyond float's range it
// becomes the infinity of that side (a clamp to it is then a no-op).
inline double float_outward(double v, bool down) {
    constexpr double kMax = 3.4028234663852886e38;
    if (!(v == v)) return v;
    if (v > kMax) return down ? kMax : INFINITY;
    if (v < -kMax) return down ? -INFINITY : -kMax;
    float f = static_cast<float>(v);
    if (down && double(f) > v) f = std::nextafter(f, -INFINITY);
    if (!down && double(f) < v) f = std::nextafter(f, INFINITY);
    return f;
}

inline WindowParams make_window(double lo, double hi, double center, double scale, double offset) {
    return {lo, hi, center, scale, offset, (lo - center) * scale + offset, (hi - center) * scale + offset,
            float_outward(lo, true), float_outward(hi, false)};
}

// Compute in float for inputs float represents exactly (<= 16-bit ints, 16/32-bit floats),
// in double otherwise (32/64-bit ints, float64) so large values keep their precision.
template <typename T>
struct ComputeType {
    using type = typename std::conditional<(sizeof(T) <= 2) || std::is_same<T, float>::value, float, double>::type;
};

// Whether the float path evaluates window p accurately for every float input x (any value up to
// +-FLT_MAX): with |center|, |offset| <= 2^100 (below half an ulp of FLT_MAX, 2^103), x - center
// cannot overflow and y overflows only where the exact output is beyond float's range anyway;
// the scale must be a normal float (or 0) and finite window outputs must fit float. Extreme
// windows (wider than float's range, ends or centers near +-FLT_MAX, scales that would be
// subnormal) fail it; the caller then evaluates the whole call in double, a rare slow path chosen
// once per call. NaN parameters fail it too (the double path gives the same NaN outputs).
inline bool float_window_ok(const WindowParams& p) {
    constexpr double kSmall = 1267650600228229401496703205376.0;  // 2^100
    constexpr double kFloatMax = 3.4028234663852886e38, kMinNormal = 1.1754943508222875e-38;
    auto small = [&](double v) { return v >= -kSmall && v <= kSmall; };  // false for NaN and inf
    // A window output may be +-inf (an infinite window end) or NaN (inf * 0): clamps to them are no-ops.
    auto output_fits = [&](double v) { return !(v > -INFINITY && v < INFINITY) || (v >= -kFloatMax && v <= kFloatMax); };
    const double scale = p.scale < 0 ? -p.scale : p.scale;
    return small(p.center) && small(p.offset) && (scale == 0 || (scale >= kMinNormal && scale <= kFloatMax / 4)) &&
           output_fits(p.y_lo) && output_fits(p.y_hi);
}

// Runs run(C{}) with the compute type of one windowing call over input type T: T's ComputeType,
// except that a float-computed type falls back to double for the whole call when any window fails
// float_window_ok. One rule for the CPU and CUDA drivers.
template <typename T, typename Windows, typename Run>
void with_window_compute(const Windows& windows, Run&& run) {
    if constexpr (std::is_same<typename ComputeType<T>::type, float>::value) {
        bool fits = true;
        for (const auto& p : windows) fits = fits && float_window_ok(p);
        if (fits) {
            run(float{});
            return;
        }
    }
    run(double{});  // wide input types, or an extreme window
}

// A window in the compute type C, applied as clamp((clamp(x, lo, hi) - center) * scale + offset,
// y_min, y_max) where [y_min, y_max] is the image of [lo, hi] computed in double: the map is
// monotone, so saturated voxels get exactly the range ends. (Clamping x to float-rounded lo / hi
// alone gave 2.0007 for a range ending at 2 with a 0.07 HU window; the input clamp uses the ends
// rounded outward, so it only keeps x - center and inf inputs finite.) The center is carried as
// two C values (center + center_lo is the double center to ~2^-48), so x - center stays accurate
// in float: a center rounded to float is off by up to half an ulp (6e-5 HU near 1000 HU), which a
// narrow window's scale magnifies. The comparisons are written so a NaN input fails all four and
// propagates to the output, as numpy.clip would give.
template <typename C>
struct WindowIn {
    C lo, hi, center, center_lo, scale, offset, y_min, y_max;

    MSF_HD static WindowIn of(const WindowParams& p) {
        const bool is_float = sizeof(C) == sizeof(float);
        const C center = C(p.center);
        const double y_min = p.y_lo < p.y_hi ? p.y_lo : p.y_hi, y_max = p.y_lo < p.y_hi ? p.y_hi : p.y_lo;
        return {C(is_float ? p.lo_f : p.lo), C(is_float ? p.hi_f : p.hi), center, C(p.center - double(center)),
                C(p.scale), C(p.offset), C(y_min), C(y_max)};
    }
    MSF_HD C apply(C x) const {
        // Each clamp is two unconditional compare-selects (not a nested ?:) so the compiler can
        // vectorize the loop without -fno-trapping-math: a comparison evaluated only on one branch
        // could trap on NaN, which blocks if-conversion. For lo <= hi the result is the same.
        x = x < lo ? lo : x;
        x = x > hi ? hi : x;
        C y = ((x - center) - center_lo) * scale + offset;
        y = y < y_min ? y_min : y;
        return y > y_max ? y_max : y;
    }
};

// Order-preserving map from a value to an unsigned key of the same width, used for
// radix selection of exact order statistics (percentiles) without sorting.
template <typename T> struct SortKey;

template <> struct SortKey<bool> {
    using Key = uint8_t;
    MSF_HD static Key of(bool v) { return v ? 1 : 0; }
};
template <> struct SortKey<uint8_t> {
    using Key = uint8_t;
    MSF_HD static Key of(uint8_t v) { return v; }
};
template <> struct SortKey<int8_t> {
    using Key = uint8_t;
    MSF_HD static Key of(int8_t v) { return static_cast<Key>(static_cast<uint8_t>(v) ^ 0x80u); }
};
template <> struct SortKey<uint16_t> {
    using Key = uint16_t;
    MSF_HD static Key of(uint16_t v) { return v; }
};
template <> struct SortKey<int16_t> {
    using Key = uint16_t;
    MSF_HD static Key of(int16_t v) { return static_cast<Key>(static_cast<uint16_t>(v) ^ 0x8000u); }
};
template <> struct SortKey<uint32_t> {
    using Key = uint32_t;
    MSF_HD static Key of(uint32_t v) { return v; }
};
template <> struct SortKey<int32_t> {
    using Key = uint32_t;
    MSF_HD static Key of(int32_t v) { return static_cast<uint32_t>(v) ^ 0x80000000u; }
};
template <> struct SortKey<uint64_t> {
    using Key = uint64_t;
    MSF_HD static Key of(uint64_t v) { return v; }
};
template <> struct SortKey<int64_t> {
    using Key = uint64_t;
    MSF_HD static Key of(int64_t v) { return static_cast<uint64_t>(v) ^ 0x8000000000000000ull; }
};
// IEEE floats: flip all bits of negatives, set the sign bit of positives (-0 sorts before +0,
// which is harmless: both are returned as the value that was stored).
template <> struct SortKey<float> {
    using Key = uint32_t;
    MSF_HD static Key of(float v) {
        const uint32_t u = bit_cast<uint32_t>(v);
        return u ^ ((0u - (u >> 31)) | 0x80000000u);  // branch-free: noisy data flips signs often
    }
};
template <> struct SortKey<double> {
    using Key = uint64_t;
    MSF_HD static Key of(double v) {
        const uint64_t u = bit_cast<uint64_t>(v);
        return u ^ ((0ull - (u >> 63)) | 0x8000000000000000ull);
    }
};
template <> struct SortKey<half_t> {
    using Key = uint16_t;
    MSF_HD static Key of(half_t v) {
        const uint32_t u = v.bits;
        return static_cast<uint16_t>(u ^ ((0u - (u >> 15)) | 0x8000u));
    }
};
template <> struct SortKey<bfloat16_t> {
    using Key = uint16_t;
    MSF_HD static Key of(bfloat16_t v) {
        const uint32_t u = v.bits;
        return static_cast<uint16_t>(u ^ ((0u - (u >> 15)) | 0x8000u));
    }
};

template <typename T> MSF_HD inline bool is_nan_value(const T&) { return false; }
template <> MSF_HD inline bool is_nan_value<float>(const float& v) { return v != v; }
template <> MSF_HD inline bool is_nan_value<double>(const double& v) { return v != v; }
template <> MSF_HD inline bool is_nan_value<half_t>(const half_t& v) { return (v.bits & 0x7fffu) > 0x7c00u; }
template <> MSF_HD inline bool is_nan_value<bfloat16_t>(const bfloat16_t& v) { return (v.bits & 0x7fffu) > 0x7f80u; }

// A mask element counts as "inside" when nonzero, whatever its integer or bool type.
template <typename M> MSF_HD inline bool mask_on(const M& m) { return m != M(0); }

// Inverse of SortKey<T>::of.
template <typename T> MSF_HD inline T value_of_key(typename SortKey<T>::Key k);
template <> MSF_HD inline bool value_of_key<bool>(uint8_t k) { return k != 0; }
template <> MSF_HD inline uint8_t value_of_key<uint8_t>(uint8_t k) { return k; }
template <> MSF_HD inline int8_t value_of_key<int8_t>(uint8_t k) { return static_cast<int8_t>(k ^ 0x80u); }
template <> MSF_HD inline uint16_t value_of_key<uint16_t>(uint16_t k) { return k; }
template <> MSF_HD inline int16_t value_of_key<int16_t>(uint16_t k) { return static_cast<int16_t>(k ^ 0x8000u); }
template <> MSF_HD inline uint32_t value_of_key<uint32_t>(uint32_t k) { return k; }
template <> MSF_HD inline int32_t value_of_key<int32_t>(uint32_t k) { return static_cast<int32_t>(k ^ 0x80000000u); }
template <> MSF_HD inline uint64_t value_of_key<uint64_t>(uint64_t k) { return k; }
template <> MSF_HD inline int64_t value_of_key<int64_t>(uint64_t k) { return static_cast<int64_t>(k ^ 0x8000000000000000ull); }
template <> MSF_HD inline float value_of_key<float>(uint32_t k) {
    return bit_cast<float>((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}
template <> MSF_HD inline double value_of_key<double>(uint64_t k) {
    return bit_cast<double>((k & 0x8000000000000000ull) ? (k & 0x7fffffffffffffffull) : ~k);
}
template <> MSF_HD inline half_t value_of_key<half_t>(uint16_t k) {
    return half_t{static_cast<uint16_t>((k & 0x8000u) ? (k & 0x7fffu) : static_cast<uint16_t>(~k))};
}
template <> MSF_HD inline bfloat16_t value_of_key<bfloat16_t>(uint16_t k) {
    return bfloat16_t{static_cast<uint16_t>((k & 0x8000u) ? (k & 0x7fffu) : static_cast<uint16_t>(~k))};
}

// Host side of one radix-selection pass (CPU and CUDA drivers alike): the digit whose bin holds
// the `remaining`-th smallest value of histogram `hist`; `remaining` becomes the rank inside it.
inline size_t select_digit(const uint64_t* hist, size_t bins, int64_t& remaining) {
    uint64_t below = 0;
    for (size_t digit = 0; digit < bins; ++digit) {
        if (below + hist[digit] > static_cast<uint64_t>(remaining)) {
            remaining -= static_cast<int64_t>(below);
            return digit;
        }
        below += hist[digit];
    }
    throw std::out_of_range("rank exceeds the number of selected values");
}

}  // namespace medseg
