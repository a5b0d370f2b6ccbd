// Fused resample + argmax over classes on the CPU, computed in output tiles so that no
// (classes, *out_shape) array exists.
//
// For each tile (a box of the output grid) and each class, the separable passes of
// cpu::resample run on the part of the input the tile needs (the tile's taps, plus the whole
// line along an order-3 axis, whose prefilter needs it), in plan_resample_passes order, with
// the same tap weights, compute type, clipping and operation order, so every value compared here
// is bit for bit the value cpu::resample writes. A running maximum per tile voxel picks the class:
// strictly greater wins, so exact ties go to the lowest class and NaN never wins (a voxel whose
// classes are all NaN gets class 0). Tiles are independent, so results do not depend on threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "resample_cpu.h"

namespace medseg::cpu {
namespace {

constexpr int64_t kTileVoxels = 32768;   // output voxels per tile: scratch stays in L2

template <typename C>
struct AxisTaps {   // taps of one resampled axis over its whole output range
    int count = 1;
    std::vector<int64_t> first;
    std::vector<C> w;
    void build(int64_t n_in, int64_t n_out, int order) {
        count = resample_taps(n_in, order);
        first.assign(n_out, 0);
        w.assign(n_out * 4, C(0));
        double weights[4] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t j = 0; j < n_out; ++j) {
            resample_axis_taps(j, n_in, n_out, order, first[j], weights);
            for (int k = 0; k < count; ++k) w[j * 4 + k] = static_cast<C>(weights[k]);
        }
    }
};

// The expressions of resample_passes.cpp's tap_sum (fp-contract is off, so equal expressions
// give equal values).
template <typename C>
inline C taps_value(int count, const C* wt, C v0, C v1, C v2, C v3) {
    if (count == 1) return v0;
    if (count == 2) return wt[0] * v0 + wt[1] * v1;
    return wt[0] * v0 + wt[1] * v1 + wt[2] * v2 + wt[3] * v3;
}

// A box of values: extents e[1..3] and element strides s[1..3] (index 0 unused).
template <typename T>
struct Box {
    const T* data = nullptr;
    int64_t e[kResampleDims] = {1, 1, 1, 1};
    int64_t s[kResampleDims] = {0, 0, 0, 0};
};

template <typename R, typename L>
class ArgmaxRunner {
    using W = R;   // resample keeps a float input's dtype, so its values are rounded to R
    using C = typename ResampleCompute<R, W>::type;

public:
    ArgmaxRunner(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out, const std::vector<double>& lo,
                 const std::vector<double>& hi)
        : spec_(spec), in_(in), out_(out), lo_(lo), hi_(hi), plan_(plan_resample_passes(spec)) {
        for (int p = 0; p < plan_.count; ++p) {
            const int a = plan_.axes[p];
            in_plan_[a] = true;
            taps_[a].build(spec.in_shape[a], spec.out_shape[a], spec.order[a]);
        }
        // Tile extents: order-3 axes stay whole (their prefilter reads whole lines); the others
        // are halved, largest first and the contiguous axis last, down to kTileVoxels.
        for (int a = 1; a < kResampleDims; ++a) tile_[a] = spec.out_shape[a];
        for (;;) {
            int64_t vox = tile_[1] * tile_[2] * tile_[3];
            if (vox <= kTileVoxels) break;
            int pick = -1;
            for (int a = 1; a <= 2; ++a)
                if (splittable(a) && (pick < 0 || tile_[a] > tile_[pick])) pick = a;
            if (pick < 0 && splittable(3)) pick = 3;
            if (pick < 0) break;
            tile_[pick] = (tile_[pick] + 1) / 2;
        }
        tiles_ = 1;
        for (int a = 1; a < kResampleDims; ++a) {
            count_[a] = (spec.out_shape[a] + tile_[a] - 1) / tile_[a];
            tiles_ *= count_[a];
        }
    }

    void run() {
        parallel_for_dynamic(tiles_, 1, [&](int64_t begin, int64_t end, int) {
            Scratch scratch;
            for (int64_t t = begin; t < end; ++t) run_tile(t, scratch);
        });
    }

private:
    struct Scratch {
        std::vector<C> ping, pong, line, best;
        std::vector<int32_t> label;
    };

    bool splittable(int a) const { return tile_[a] > 1 && !(in_plan_[a] && spec_.order[a] == 3); }

    void run_tile(int64_t t, Scratch& sc) const {
        int64_t o0[kResampleDims] = {0, 0, 0, 0}, o1[kResampleDims] = {1, 1, 1, 1};
        int64_t s0[kResampleDims] = {0, 0, 0, 0}, s1[kResampleDims] = {1, 1, 1, 1};
        int64_t rem = t;
        for (int a = kResampleDims - 1; a >= 1; --a) {
            const int64_t k = rem % count_[a];
            rem /= count_[a];
            o0[a] = k * tile_[a];
            o1[a] = std::min(spec_.out_shape[a], o0[a] + tile_[a]);
            if (!in_plan_[a]) {
                s0[a] = o0[a];
                s1[a] = o1[a];
            } else if (spec_.order[a] == 3) {
                s0[a] = 0;
                s1[a] = spec_.in_shape[a];
            } else {
                s0[a] = taps_[a].first[o0[a]];
                s1[a] = taps_[a].first[o1[a] - 1] + taps_[a].count;
            }
        }
        // Scratch: the largest box along the passes.
        int64_t ext[kResampleDims];
        int64_t most = 1;
        for (int a = 1; a < kResampleDims; ++a) ext[a] = s1[a] - s0[a];
        for (int p = 0; p < plan_.count; ++p) {
            const int a = plan_.axes[p];
            ext[a] = o1[a] - o0[a];
            most = std::max(most, ext[1] * ext[2] * ext[3]);
        }
        const int64_t vox = (o1[1] - o0[1]) * (o1[2] - o0[2]) * (o1[3] - o0[3]);
        if (static_cast<int64_t>(sc.ping.size()) < most) {
            sc.ping.resize(most);
            sc.pong.resize(most);
        }
        sc.best.assign(vox, -std::numeric_limits<C>::infinity());
        sc.label.assign(vox, 0);

        const R* base = in_.data<R>();
        for (int64_t c = 0; c < spec_.in_shape[0]; ++c) {
            Box<R> src;
            const R* origin = base + c * in_.strides.s[0];
            for (int a = 1; a < kResampleDims; ++a) {
                origin += s0[a] * in_.strides.s[a];
                src.e[a] = s1[a] - s0[a];
                src.s[a] = in_.strides.s[a];
            }
            src.data = origin;
            if (plan_.count == 0) {
                update(src, c, sc);
                continue;
            }
            Box<C> cur;
            int64_t from[kResampleDims];   // global source index of each box's origin
            for (int a = 1; a < kResampleDims; ++a) from[a] = s0[a];
            for (int p = 0; p < plan_.count; ++p) {
                const int a = plan_.axes[p];
                C* dst = (p % 2 == 0 ? sc.ping : sc.pong).data();
                Box<C> next;
                next.data = dst;
                for (int b = 1; b < kResampleDims; ++b) next.e[b] = p == 0 ? src.e[b] : cur.e[b];
                next.e[a] = o1[a] - o0[a];
                next.s[3] = 1;
                next.s[2] = next.e[3];
                next.s[1] = next.e[2] * next.e[3];
                const bool clip = p == plan_.clip_pass;
                if (p == 0) pass(src, a, from[a], o0[a], o1[a], dst, next, clip, c, from, sc);
                else pass(cur, a, from[a], o0[a], o1[a], dst, next, clip, c, from, sc);
                from[a] = o0[a];
                cur = next;
            }
            update(cur, c, sc);
        }
        write_labels(o0, o1, sc);
    }

    // One pass along axis `a` of `src` (whose index 0 along a is global source row `row0`):
    // output rows [j0, j1) into the contiguous box `dst` (extents dbox.e).
    template <typename S>
    void pass(const Box<S>& src, int a, int64_t row0, int64_t j0, int64_t j1, C* dst, const Box<C>& dbox, bool clip,
              int64_t channel, const int64_t* from, Scratch& sc) const {
        const AxisTaps<C>& tp = taps_[a];
        const int order = spec_.order[a];
        int o[2], n_o = 0;   // the other two axes, in order (o[1] is the inner loop)
        for (int b = 1; b < kResampleDims; ++b)
            if (b != a) o[n_o++] = b;
        // Clip group of an element: per channel, or per (channel, index along clip_axis); the
        // clip axis is not resampled yet here, so its global index is from[] + local index.
        const int64_t groups = spec_.clip_axis > 0 ? spec_.in_shape[spec_.clip_axis] : 1;
        auto bounds = [&](int64_t i_o0, int64_t i_o1, C& lo, C& hi) {
            int64_t g = channel * groups;
            if (spec_.clip_axis > 0) {
                const int ca = spec_.clip_axis;
                g += from[ca] + (ca == o[0] ? i_o0 : i_o1);
            }
            lo = static_cast<C>(lo_[g]);
            hi = static_cast<C>(hi_[g]);
        };
        const bool per_lane_clip = clip && spec_.clip_axis > 0 && spec_.clip_axis == o[1];
        const int64_t n0 = src.e[o[0]], n1 = src.e[o[1]];
        const int64_t so0 = src.s[o[0]], so1 = src.s[o[1]], sa = src.s[a];
        const int64_t do0 = dbox.s[o[0]], do1 = dbox.s[o[1]], da = dbox.s[a];
        if (order != 3) {
            if (!per_lane_clip) {
                if (tp.count == 2) direct<2>(src, a, row0, j0, j1, dst, dbox, clip, o, bounds);
                else direct<1>(src, a, row0, j0, j1, dst, dbox, clip, o, bounds);
                return;
            }
            for (int64_t j = j0; j < j1; ++j) {   // clip bounds per lane (separate axis = the last one): rare
                const C* wt = tp.w.data() + j * 4;
                const int64_t r = tp.first[j] - row0;
                for (int64_t i0 = 0; i0 < n0; ++i0) {
                    const S* r0 = src.data + i0 * so0 + r * sa;
                    const S* r1 = tp.count >= 2 ? r0 + sa : r0;
                    C* d = dst + i0 * do0 + (j - j0) * da;
                    for (int64_t i1 = 0; i1 < n1; ++i1) {
                        C lo = 0, hi = 0;
                        bounds(i0, i1, lo, hi);
                        const C v = taps_value<C>(tp.count, wt, load_as<C>(r0[i1 * so1]),
                                                  tp.count >= 2 ? load_as<C>(r1[i1 * so1]) : C(0), C(0), C(0));
                        d[i1 * do1] = clamp_keep_nan(v, lo, hi);
                    }
                }
            }
            return;
        }
        // Order 3: per index along o[0], the n1 lines along `a` side by side (lane = index along
        // o[1]), padded with kSplinePad edge copies, prefiltered, evaluated at rows [j0, j1).
        const int64_t n_in = src.e[a];
        const int64_t rows = resample_padded_length(n_in, 3);
        if (static_cast<int64_t>(sc.line.size()) < rows * n1) sc.line.resize(rows * n1);
        C* buf = sc.line.data();
        for (int64_t i0 = 0; i0 < n0; ++i0) {
            const S* plane = src.data + i0 * so0;
            for (int64_t i = 0; i < n_in; ++i) {
                C* b = buf + (kSplinePad + i) * n1;
                const S* row = plane + i * sa;
                for (int64_t l = 0; l < n1; ++l) b[l] = load_as<C>(row[l * so1]);
            }
            for (int64_t i = 0; i < kSplinePad; ++i) {
                std::memcpy(buf + i * n1, buf + kSplinePad * n1, sizeof(C) * n1);
                std::memcpy(buf + (kSplinePad + n_in + i) * n1, buf + (kSplinePad + n_in - 1) * n1, sizeof(C) * n1);
            }
            bspline_prefilter_lanes<C>(buf, rows, n1, static_cast<int>(n1));
            C lo = 0, hi = 0;
            if (clip && !per_lane_clip) bounds(i0, 0, lo, hi);
            for (int64_t j = j0; j < j1; ++j) {
                const C* wt = tp.w.data() + j * 4;
                const C* b0 = buf + tp.first[j] * n1;
                C* d = dst + i0 * do0 + (j - j0) * da;
                for (int64_t l = 0; l < n1; ++l) {
                    C v = taps_value<C>(4, wt, b0[l], b0[n1 + l], b0[2 * n1 + l], b0[3 * n1 + l]);
                    if (clip) {
                        if (per_lane_clip) bounds(i0, l, lo, hi);
                        v = clamp_keep_nan(v, lo, hi);
                    }
                    d[l * do1] = v;
                }
            }
        }
    }

    // Orders 0/1 with per-row (or no) clipping: along axes 1/2 the inner loop runs over contiguous
    // lanes of axis 3 (vectorised); along axis 3 each row is resized on its own.
    template <int T, typename S, typename Bounds>
    void direct(const Box<S>& src, int a, int64_t row0, int64_t j0, int64_t j1, C* dst, const Box<C>& dbox, bool clip,
                const int* o, Bounds&& bounds) const {
        const AxisTaps<C>& tp = taps_[a];
        const int64_t n0 = src.e[o[0]], n1 = src.e[o[1]];
        const int64_t so0 = src.s[o[0]], so1 = src.s[o[1]], sa = src.s[a];
        const int64_t do0 = dbox.s[o[0]], do1 = dbox.s[o[1]], da = dbox.s[a];
        if (a != 3) {   // o[1] == 3: dst contiguous along it
            for (int64_t j = j0; j < j1; ++j) {
                const C* wt = tp.w.data() + j * 4;
                const C w0 = wt[0], w1 = wt[1];
                const int64_t r = tp.first[j] - row0;
                for (int64_t i0 = 0; i0 < n0; ++i0) {
                    const S* __restrict__ r0 = src.data + i0 * so0 + r * sa;
                    const S* __restrict__ r1 = T == 2 ? r0 + sa : r0;
                    C* __restrict__ d = dst + i0 * do0 + (j - j0) * da;
                    C lo = -std::numeric_limits<C>::infinity(), hi = std::numeric_limits<C>::infinity();
                    if (clip) bounds(i0, 0, lo, hi);
                    if (so1 == 1) {
                        for (int64_t k = 0; k < n1; ++k) {
                            C v;
                            if constexpr (T == 2) v = w0 * load_as<C>(r0[k]) + w1 * load_as<C>(r1[k]);
                            else v = load_as<C>(r0[k]);
                            d[k] = clip ? clamp_keep_nan(v, lo, hi) : v;
                        }
                    } else {
                        for (int64_t k = 0; k < n1; ++k) {
                            C v;
                            if constexpr (T == 2) v = w0 * load_as<C>(r0[k * so1]) + w1 * load_as<C>(r1[k * so1]);
                            else v = load_as<C>(r0[k * so1]);
                            d[k] = clip ? clamp_keep_nan(v, lo, hi) : v;
                        }
                    }
                }
            }
            return;
        }
        const int64_t* first = tp.first.data();
        const C* w = tp.w.data();
        for (int64_t i0 = 0; i0 < n0; ++i0)
            for (int64_t i1 = 0; i1 < n1; ++i1) {
                const S* row = src.data + i0 * so0 + i1 * so1 - row0 * sa;
                C* __restrict__ d = dst + i0 * do0 + i1 * do1;
                C lo = -std::numeric_limits<C>::infinity(), hi = std::numeric_limits<C>::infinity();
                if (clip) bounds(i0, i1, lo, hi);
                for (int64_t j = j0; j < j1; ++j) {
                    const S* r0 = row + first[j] * sa;
                    C v;
                    if constexpr (T == 2) v = w[j * 4] * load_as<C>(r0[0]) + w[j * 4 + 1] * load_as<C>(r0[sa]);
                    else v = load_as<C>(r0[0]);
                    d[(j - j0) * da] = clip ? clamp_keep_nan(v, lo, hi) : v;
                }
            }
    }

    // Running maximum: the value as resample stores it (rounded to W), strictly greater wins.
    template <typename S>
    void update(const Box<S>& v, int64_t c, Scratch& sc) const {
        const int64_t n1 = v.e[1], n2 = v.e[2], n3 = v.e[3];
        C* best = sc.best.data();
        int32_t* label = sc.label.data();
        const int32_t cls = static_cast<int32_t>(c);
        for (int64_t i = 0; i < n1; ++i)
            for (int64_t j = 0; j < n2; ++j) {
                const S* row = v.data + i * v.s[1] + j * v.s[2];
                const int64_t k0 = (i * n2 + j) * n3;
                for (int64_t k = 0; k < n3; ++k) {
                    const C q = load_as<C>(store_from<W>(load_as<C>(row[k * v.s[3]])));
                    const bool win = q > best[k0 + k];
                    best[k0 + k] = win ? q : best[k0 + k];
                    label[k0 + k] = win ? cls : label[k0 + k];
                }
            }
    }

    void write_labels(const int64_t* o0, const int64_t* o1, const Scratch& sc) const {
        L* out = out_.data<L>();
        const int64_t n2 = o1[2] - o0[2], n3 = o1[3] - o0[3];
        const int64_t* s = out_.strides.s;
        for (int64_t i = o0[1]; i < o1[1]; ++i)
            for (int64_t j = o0[2]; j < o1[2]; ++j) {
                L* row = out + i * s[1] + j * s[2] + o0[3] * s[3];
                const int32_t* lab = sc.label.data() + ((i - o0[1]) * n2 + (j - o0[2])) * n3;
                for (int64_t k = 0; k < n3; ++k) row[k * s[3]] = static_cast<L>(lab[k]);
            }
    }

    const ResampleSpec& spec_;
    const ArrayArg& in_;
    const ArrayArg& out_;
    const std::vector<double>& lo_;
    const std::vector<double>& hi_;
    PassPlan plan_;
    bool in_plan_[kResampleDims] = {false, false, false, false};
    AxisTaps<C> taps_[kResampleDims];
    int64_t tile_[kResampleDims] = {1, 1, 1, 1};
    int64_t count_[kResampleDims] = {1, 1, 1, 1};
    int64_t tiles_ = 1;
};

template <typename Fn>
void dispatch_scores(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::Float32: return fn(TypeTag<float>{});
        case DType::Float64: return fn(TypeTag<double>{});
        case DType::Float16: return fn(TypeTag<half_t>{});
        case DType::BFloat16: return fn(TypeTag<bfloat16_t>{});
        default: break;
    }
    throw std::invalid_argument(std::string("scores must have a floating dtype, got ") + dtype_name(dtype));
}

}  // namespace

void resample_argmax(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out) {
    for (int a = 0; a < kResampleDims; ++a)
        if (spec.in_shape[a] <= 0 || (a > 0 && spec.out_shape[a] <= 0))
            throw std::invalid_argument("resample_argmax: every extent must be positive");
    if (spec.order[1] > 3 || spec.order[2] > 3 || spec.order[3] > 3)
        throw std::invalid_argument("resample_argmax: orders must be 0, 1 or 3");
    std::vector<double> lo, hi;
    if (plan_resample_passes(spec).clip_pass >= 0) resample_clip_bounds(spec, in, lo, hi);
    dispatch_scores(in.dtype, [&](auto r_tag) {
        using R = typename decltype(r_tag)::type;
        dispatch_label_out(out.dtype, [&](auto l_tag) {
            using L = typename decltype(l_tag)::type;
            ArgmaxRunner<R, L>(spec, in, out, lo, hi).run();
        });
    });
}

}  // namespace medseg::cpu
