// Per-sample math of the resampling family, shared by the CPU and CUDA drivers: source
// coordinates, interpolation taps (nearest / linear / cubic B-spline), the B-spline prefilter,
// the per-voxel label vote, and the plan of separable passes.
//
// Conventions (identical to scipy.ndimage.zoom(..., mode="nearest", grid_mode=True), which
// skimage.transform.resize(..., mode="edge") and nnU-Net call, and to torch's
// interpolate(align_corners=False)):
//   output sample k of an axis resized n_in -> n_out reads the input at
//   c = (k + 0.5) * (n_in / n_out) - 0.5   (double precision, this exact operation order);
//   order 0: sample floor(clamp(c, 0, n_in - 1) + 0.5) (ties round up);
//   order 1: linear at clamp(c, 0, n_in - 1);
//   order 3: cubic B-spline of the line padded with kSplinePad edge copies on each side,
//            evaluated at c + kSplinePad (no clamping; scipy's _prepad_for_spline_filter).
// The prefilter is the recursive filter of Unser, Aldroubi & Eden, "B-spline signal processing"
// (IEEE Trans. Signal Process. 41(2), 1993), pole sqrt(3) - 2, with the half-sample-symmetric
// ("reflect") causal initialisation scipy uses for mode "nearest" (ni_splines.c).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "medseg/common.h"

namespace medseg {

constexpr int kSplinePad = 12;
constexpr int kResampleDims = 4;   // (channels, s0, s1, s2); fewer spatial axes are padded with 1s
constexpr double kCubicPole = -0.267949192431122706472553658494127633;  // sqrt(3) - 2

// Arithmetic type of a pass reading R and writing W: double when either side is float64 or the
// input is a 32/64-bit integer (float would round values above 2^24), float otherwise.
template <typename R, typename W>
struct ResampleCompute {
    using type = typename std::conditional<std::is_same<R, double>::value || std::is_same<W, double>::value ||
                                               (std::is_integral<R>::value && sizeof(R) >= 4),
                                           double, float>::type;
};

// Rows a pass keeps per line: the padded length for order 3, the line itself otherwise.
MSF_HD inline int64_t resample_padded_length(int64_t n_in, int order) {
    return order == 3 ? n_in + 2 * kSplinePad : n_in;
}

// Number of taps of a pass (a 1-sample line needs one tap at any order).
MSF_HD inline int resample_taps(int64_t n_in, int order) {
    if (order == 3) return 4;
    if (order == 1 && n_in > 1) return 2;
    return 1;
}

MSF_HD inline double resample_source_coord(int64_t k, double scale) {
    double c = static_cast<double>(k);
    c += 0.5;
    c *= scale;
    c -= 0.5;
    return c;
}

// Taps of output sample k: `first` indexes the (padded, for order 3) line, weights[0..taps).
MSF_HD inline void resample_axis_taps(int64_t k, int64_t n_in, int64_t n_out, int order, int64_t& first,
                                      double* weights) {
    const double scale = static_cast<double>(n_in) / static_cast<double>(n_out);
    double c = resample_source_coord(k, scale);
    if (order == 3) {
        c += kSplinePad;
        const double f = floor(c);
        const double t = c - f;
        const double u = 1.0 - t;
        first = static_cast<int64_t>(f) - 1;
        weights[0] = u * u * u / 6.0;
        weights[1] = (3.0 * t * t * t - 6.0 * t * t + 4.0) / 6.0;
        weights[2] = (3.0 * u * u * u - 6.0 * u * u + 4.0) / 6.0;
        weights[3] = t * t * t / 6.0;
        return;
    }
    const double hi = static_cast<double>(n_in - 1);
    c = c < 0.0 ? 0.0 : (c > hi ? hi : c);
    if (order == 0 || n_in == 1) {
        int64_t i = static_cast<int64_t>(floor(c + 0.5));
        first = i > n_in - 1 ? n_in - 1 : i;
        weights[0] = 1.0;
        return;
    }
    int64_t i0 = static_cast<int64_t>(floor(c));
    double t = c - static_cast<double>(i0);
    if (i0 >= n_in - 1) {   // c == n_in - 1: the last sample, as the pair (n_in - 2, n_in - 1)
        i0 = n_in - 2;
        t = 1.0;
    }
    first = i0;
    weights[0] = 1.0 - t;
    weights[1] = t;
}

// Affine per-axis sampling grids (MONAI's Spacing / SpatialResample on an axis-aligned
// transform): output sample k of axis a reads the input at offset[a] + scale[a] * k, with
// torch grid_sample's or scipy map_coordinates' boundary rule instead of the zoom convention.
enum class ResampleBoundary : int {
    Edge = 0,    // coordinates clamped to [0, n - 1] (grid_sample "border", scipy "nearest")
    Zeros = 1,   // taps outside the line weigh 0 (grid_sample "zeros"); orders 0 and 1 only
};

struct AxisMaps {
    double scale[kResampleDims] = {1.0, 1.0, 1.0, 1.0};   // [0] unused
    double offset[kResampleDims] = {0.0, 0.0, 0.0, 0.0};
    ResampleBoundary boundary = ResampleBoundary::Edge;
    bool nearest_half_even = false;   // order 0 ties to even (grid_sample) instead of up (scipy)

    bool identity(int a) const { return scale[a] == 1.0 && offset[a] == 0.0; }
};

// Order 3 on a mapped axis reads the line padded with kSplinePad edge copies (scipy's
// _prepad_for_spline_filter), so a coordinate must keep its 4 taps inside the padding.
MSF_HD inline bool mapped_spline_in_range(double c, int64_t n_in) {
    const double f = floor(c + kSplinePad);
    return f - 1.0 >= 0.0 && f + 2.0 <= static_cast<double>(n_in + 2 * kSplinePad - 1);
}

MSF_HD inline int64_t round_nearest(double c, bool half_even) {
    return static_cast<int64_t>(half_even ? nearbyint(c) : floor(c + 0.5));
}

// Taps of output sample k on a mapped axis (the counterpart of resample_axis_taps).
MSF_HD inline void resample_mapped_taps(int64_t k, int64_t n_in, double scale, double offset, int order,
                                        ResampleBoundary boundary, bool half_even, int64_t& first,
                                        double* weights) {
    double c = offset + scale * static_cast<double>(k);
    const double hi = static_cast<double>(n_in - 1);
    if (order == 3) {   // callers check mapped_spline_in_range; clamping only guards memory
        c += kSplinePad;
        const double f = floor(c);
        const double t = c - f;
        const double u = 1.0 - t;
        int64_t i = static_cast<int64_t>(f) - 1;
        const int64_t last = n_in + 2 * kSplinePad - 4;
        first = i < 0 ? 0 : (i > last ? last : i);
        weights[0] = u * u * u / 6.0;
        weights[1] = (3.0 * t * t * t - 6.0 * t * t + 4.0) / 6.0;
        weights[2] = (3.0 * u * u * u - 6.0 * u * u + 4.0) / 6.0;
        weights[3] = t * t * t / 6.0;
        return;
    }
    const bool zeros = boundary == ResampleBoundary::Zeros;
    if (!zeros) c = c < 0.0 ? 0.0 : (c > hi ? hi : c);
    if (order == 0) {   // edge: c is clamped, so the neighbour is always inside
        const int64_t i = round_nearest(c, half_even);
        const bool inside = i >= 0 && i <= n_in - 1;
        first = inside ? i : 0;
        weights[0] = inside ? 1.0 : 0.0;
        return;
    }
    if (n_in == 1) {   // one tap: the line's only sample
        first = 0;
        const double a = c < 0.0 ? -c : c;
        weights[0] = zeros ? (a < 1.0 ? 1.0 - a : 0.0) : 1.0;
        return;
    }
    int64_t i0 = static_cast<int64_t>(floor(c));
    double t = c - static_cast<double>(i0);
    if (!zeros) {
        if (i0 >= n_in - 1) {
            i0 = n_in - 2;
            t = 1.0;
        }
        first = i0;
        weights[0] = 1.0 - t;
        weights[1] = t;
        return;
    }
    if (i0 >= 0 && i0 + 1 <= n_in - 1) {
        first = i0;
        weights[0] = 1.0 - t;
        weights[1] = t;
    } else if (i0 == -1) {        // only sample 0, weight t
        first = 0;
        weights[0] = t;
        weights[1] = 0.0;
    } else if (i0 == n_in - 1) {  // only the last sample, weight 1 - t
        first = n_in - 2;
        weights[0] = 0.0;
        weights[1] = 1.0 - t;
    } else {
        first = 0;
        weights[0] = 0.0;
        weights[1] = 0.0;
    }
}

// In-place cubic B-spline prefilter of `lanes` interleaved lines of length n (n >= 2):
// element i of lane l is c[i * row_stride + l]. Every lane sees the same operations.
template <typename C>
MSF_HD inline void bspline_prefilter_lanes(C* c, int64_t n, int64_t row_stride, int lanes) {
    const C z = static_cast<C>(kCubicPole);
    const C gain = static_cast<C>(6.0);   // (1 - z)(1 - 1/z)
    for (int64_t i = 0; i < n; ++i)
        for (int l = 0; l < lanes; ++l) c[i * row_stride + l] *= gain;
    // Causal initialisation (half-sample symmetric). Beyond 40 terms |z|^i < 1e-22, so long
    // lines use the truncated sum, where z^n is below double precision too.
    const int64_t horizon = n < 40 ? n : 40;
    const double zn = n < 40 ? pow(kCubicPole, static_cast<double>(n)) : 0.0;
    const C zn_c = static_cast<C>(zn);
    const C scale0 = static_cast<C>(kCubicPole / (1.0 - zn * zn));
    for (int l = 0; l < lanes; ++l) {
        const C c0 = c[l];
        C acc = c0 + zn_c * c[(n - 1) * row_stride + l];
        C zi = z;
        for (int64_t i = 1; i < horizon; ++i) {
            acc += zi * (c[i * row_stride + l] + zn_c * c[(n - 1 - i) * row_stride + l]);
            zi *= z;
        }
        c[l] = acc * scale0 + c0;
    }
    for (int64_t i = 1; i < n; ++i)
        for (int l = 0; l < lanes; ++l) c[i * row_stride + l] += z * c[(i - 1) * row_stride + l];
    const C anti = static_cast<C>(kCubicPole / (kCubicPole - 1.0));
    for (int l = 0; l < lanes; ++l) c[(n - 1) * row_stride + l] *= anti;
    for (int64_t i = n - 2; i >= 0; --i)
        for (int l = 0; l < lanes; ++l)
            c[i * row_stride + l] = z * (c[(i + 1) * row_stride + l] - c[i * row_stride + l]);
}

template <typename C>
MSF_HD inline C clamp_keep_nan(C v, C lo, C hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

// Label vote of one output voxel from its n (<= 8) linear-interpolation neighbours: the label
// whose weights sum highest; exact ties go to the smallest label (numpy argmax over classes).
template <typename L>
MSF_HD inline L label_vote(const L* labels, const float* weights, int n) {
    bool uniform = true;
    for (int i = 1; i < n; ++i) uniform = uniform && labels[i] == labels[0];
    if (uniform) return labels[0];
    L best = labels[0];
    float best_score = -1.0f;
    for (int i = 0; i < n; ++i) {
        bool seen = false;
        for (int j = 0; j < i; ++j) seen = seen || labels[j] == labels[i];
        if (seen) continue;
        float score = 0.0f;
        for (int j = i; j < n; ++j)
            if (labels[j] == labels[i]) score += weights[j];
        if (score > best_score || (score == best_score && labels[i] < best)) {
            best = labels[i];
            best_score = score;
        }
    }
    return best;
}

// What one resample call does, in the (channels, s0, s1, s2) frame.
struct ResampleSpec {
    int64_t in_shape[kResampleDims] = {0, 1, 1, 1};
    int64_t out_shape[kResampleDims] = {0, 1, 1, 1};
    int order[kResampleDims] = {0, 0, 0, 0};   // per axis; [0] unused
    int late_axis = -1;   // 1..3: resampled after every other axis (nnU-Net's separate z); -1: none
    int clip_axis = -1;   // -1: no clipping; 0: clip to each channel's input range;
                          // 1..3: to the range of each (channel, slice along this axis)
};

struct PassPlan {
    int count = 0;
    int axes[3] = {0, 0, 0};
    int clip_pass = -1;   // index of the pass whose stores clip, or -1
};

// Axes that change, cheapest order first: early axes by increasing n_out / n_in (shrinking
// axes first keeps intermediates small; ties: the contiguous axis first), the late axis last.
// Clipping happens in the last early pass (skimage clips the in-plane resize result).
// With `maps`, an axis of unchanged length that its map moves is resampled too.
inline PassPlan plan_resample_passes(const ResampleSpec& spec, const AxisMaps* maps = nullptr) {
    PassPlan plan;
    int early[3];
    int n_early = 0;
    auto changes = [&](int a) { return spec.in_shape[a] != spec.out_shape[a] || (maps && !maps->identity(a)); };
    for (int a = 3; a >= 1; --a)
        if (a != spec.late_axis && changes(a)) early[n_early++] = a;
    for (int i = 1; i < n_early; ++i)   // stable insertion sort by ratio
        for (int j = i; j > 0; --j) {
            const int a = early[j - 1], b = early[j];
            const double ra = static_cast<double>(spec.out_shape[a]) / static_cast<double>(spec.in_shape[a]);
            const double rb = static_cast<double>(spec.out_shape[b]) / static_cast<double>(spec.in_shape[b]);
            if (rb < ra) {
                early[j - 1] = b;
                early[j] = a;
            }
        }
    for (int i = 0; i < n_early; ++i) plan.axes[plan.count++] = early[i];
    if (spec.clip_axis >= 0 && n_early > 0) plan.clip_pass = n_early - 1;
    if (spec.late_axis >= 1 && changes(spec.late_axis))
        plan.axes[plan.count++] = spec.late_axis;
    return plan;
}

}  // namespace medseg
