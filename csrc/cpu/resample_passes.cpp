// Separable resampling on the CPU: one pass per changed axis, each pass a set of independent
// lines. Lines are processed in blocks of "lanes" laid side by side in memory, so that the
// recursive B-spline prefilter and the tap sums run as vector operations across lanes.
//
// Two lane layouts:
//   "after"  (the axes after the resampled one hold >= 8 elements): lanes are consecutive
//            elements of those trailing axes, so every tap reads a contiguous run of memory;
//   "lines"  (the resampled axis is, in effect, the innermost one): lanes are whole lines, each
//            read and written along its own (usually contiguous) axis.
// Every output element is computed by the same operations in the same order whatever the block
// size or the thread count, so results do not depend on the number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "resample_cpu.h"

namespace medseg::cpu {
namespace {

struct Pass {
    int64_t shape[kResampleDims];   // source extents
    int64_t src_s[kResampleDims];   // source strides (elements)
    int64_t dst_s[kResampleDims];   // destination strides (elements), extents = shape with axis -> n_out
    int axis;
    int64_t n_out;
    int order;
    const double* lo = nullptr;     // clip bounds per group, or nullptr for no clipping
    const double* hi = nullptr;
    int64_t index0[kResampleDims] = {0, 0, 0, 0};   // global index of this view's origin (clip groups)
    int64_t groups_per_channel = 1;
    int clip_axis = 0;
    bool serial = false;            // run on the calling thread (inside an outer parallel loop)
    const AxisMaps* maps = nullptr; // affine sampling grid (resample_mapped), or the zoom convention
};

template <typename C>
struct TapTable {
    int count = 1;
    std::vector<int64_t> first;
    std::vector<C> w;   // 4 per output sample

    explicit TapTable(const Pass& p)
        : count(resample_taps(p.shape[p.axis], p.order)), first(p.n_out), w(p.n_out * 4, C(0)) {
        const int64_t n_in = p.shape[p.axis], n_out = p.n_out;
        double weights[4] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t j = 0; j < n_out; ++j) {
            if (p.maps)
                resample_mapped_taps(j, n_in, p.maps->scale[p.axis], p.maps->offset[p.axis], p.order,
                                     p.maps->boundary, p.maps->nearest_half_even, first[j], weights);
            else
                resample_axis_taps(j, n_in, n_out, p.order, first[j], weights);
            for (int k = 0; k < count; ++k) w[j * 4 + k] = static_cast<C>(weights[k]);
        }
    }
};

template <int T, typename C>
inline C tap_sum(const C* wt, C v0, C v1, C v2, C v3) {
    if constexpr (T == 1) return wt[0] * v0;   // 1, or 0 outside a zero-padded line (resample_mapped)
    else if constexpr (T == 2) return wt[0] * v0 + wt[1] * v1;
    else return wt[0] * v0 + wt[1] * v1 + wt[2] * v2 + wt[3] * v3;
}

template <typename R, typename W>
class PassRunner {
    using C = typename ResampleCompute<R, W>::type;

public:
    PassRunner(const Pass& p, const R* src, W* dst) : p_(p), src_(src), dst_(dst), taps_(p) {
        const int axis = p.axis;
        n_in_ = p.shape[axis];
        pad_ = p.order == 3 ? kSplinePad : 0;
        rows_ = resample_padded_length(n_in_, p.order);
        int64_t after = 1;
        for (int a = axis + 1; a < kResampleDims; ++a) after *= p.shape[a];
        after_mode_ = after >= 8;
        outer_count_ = 0;
        lane_count_ = 0;
        for (int a = 0; a < kResampleDims; ++a) {
            if (a == axis) continue;
            if (after_mode_ && a < axis) outer_axes_[outer_count_++] = a;
            else lane_axes_[lane_count_++] = a;
        }
        outer_total_ = 1;
        for (int i = 0; i < outer_count_; ++i) outer_total_ *= p.shape[outer_axes_[i]];
        lane_total_ = 1;
        for (int i = 0; i < lane_count_; ++i) lane_total_ *= p.shape[lane_axes_[i]];
        const bool buffered = p.order == 3;
        int64_t width;
        if (buffered) width = after_mode_ ? std::clamp<int64_t>(16384 / rows_ / 8 * 8, 8, 512) : 16;
        else width = after_mode_ ? 2048 : 64;
        // Enough blocks for every thread (the block size never changes any result).
        const int threads = p.serial ? 1 : get_num_threads();
        const int64_t want_blocks = std::max<int64_t>(1, (8 * threads + outer_total_ - 1) / outer_total_);
        width = std::min(width, std::max<int64_t>(8, (lane_total_ + want_blocks - 1) / want_blocks));
        width_ = std::max<int64_t>(1, std::min(width, lane_total_));
        blocks_ = (lane_total_ + width_ - 1) / width_;
    }

    void run() {
        if (p_.lo) {
            run_clip<true>();
        } else {
            run_clip<false>();
        }
    }

private:
    template <bool kClip>
    void run_clip() {
        switch (taps_.count) {
            case 1: run_taps<1, kClip>(); break;
            case 2: run_taps<2, kClip>(); break;
            default: run_taps<4, kClip>(); break;
        }
    }

    template <int T, bool kClip>
    void run_taps() {
        const int64_t items = outer_total_ * blocks_;
        auto body = [&](int64_t begin, int64_t end, int) {
            std::vector<int64_t> soff(width_), doff(width_);
            std::vector<C> lo(kClip ? width_ : 0), hi(kClip ? width_ : 0);
            std::vector<C> buf(p_.order == 3 ? rows_ * width_ : 0);
            // Lanes whose offsets are not affine (a negative or mixed stride among the lane axes)
            // stage their outputs in obuf in either mode.
            std::vector<C> obuf(p_.order == 3 ? p_.n_out * width_ : 0);
            for (int64_t item = begin; item < end; ++item) {
                const int64_t w = setup_lanes<kClip>(item, soff.data(), doff.data(), lo.data(), hi.data());
                if constexpr (T == 4) {
                    buffered_block<kClip>(w, soff.data(), doff.data(), lo.data(), hi.data(), buf.data(), obuf.data());
                } else {
                    direct_block<T, kClip>(w, soff.data(), doff.data(), lo.data(), hi.data());
                }
            }
        };
        if (p_.serial) body(0, items, 0);
        else parallel_for(items, 1, body);
    }

    // Source/destination offsets (and clip bounds) of the lanes of work item `item`.
    template <bool kClip>
    int64_t setup_lanes(int64_t item, int64_t* soff, int64_t* doff, C* lo, C* hi) const {
        const int64_t outer = item / blocks_;
        const int64_t block = item % blocks_;
        int64_t idx[kResampleDims] = {0, 0, 0, 0};
        int64_t rem = outer;
        for (int i = outer_count_ - 1; i >= 0; --i) {
            const int a = outer_axes_[i];
            idx[a] = rem % p_.shape[a];
            rem /= p_.shape[a];
        }
        const int64_t first_lane = block * width_;
        const int64_t w = std::min(width_, lane_total_ - first_lane);
        for (int64_t l = 0; l < w; ++l) {
            rem = first_lane + l;
            for (int i = lane_count_ - 1; i >= 0; --i) {
                const int a = lane_axes_[i];
                idx[a] = rem % p_.shape[a];
                rem /= p_.shape[a];
            }
            int64_t s = 0, d = 0;
            for (int a = 0; a < kResampleDims; ++a) {
                if (a == p_.axis) continue;
                s += idx[a] * p_.src_s[a];
                d += idx[a] * p_.dst_s[a];
            }
            soff[l] = s;
            doff[l] = d;
            if constexpr (kClip) {
                const int64_t g = (p_.index0[0] + idx[0]) * p_.groups_per_channel +
                                  (p_.clip_axis > 0 ? p_.index0[p_.clip_axis] + idx[p_.clip_axis] : 0);
                lo[l] = static_cast<C>(p_.lo[g]);
                hi[l] = static_cast<C>(p_.hi[g]);
            }
        }
        return w;
    }

    static bool affine(const int64_t* off, int64_t w, int64_t& step) {
        step = w > 1 ? off[1] - off[0] : 0;
        for (int64_t l = 2; l < w; ++l)
            if (off[l] - off[l - 1] != step) return false;
        return true;
    }

    template <bool kClip>
    static C finish(C v, const C* lo, const C* hi, int64_t l) {
        if constexpr (kClip) return clamp_keep_nan(v, lo[l], hi[l]);
        else return v;
    }

    // Orders 0 and 1: taps read straight from the source.
    template <int T, bool kClip>
    void direct_block(int64_t w, const int64_t* soff, const int64_t* doff, const C* lo, const C* hi) const {
        const int64_t sa = p_.src_s[p_.axis], da = p_.dst_s[p_.axis];
        const int64_t* first = taps_.first.data();
        const C* wts = taps_.w.data();
        int64_t ss = 0, ds = 0;
        if (after_mode_ && affine(soff, w, ss) && affine(doff, w, ds)) {
            for (int64_t j = 0; j < p_.n_out; ++j) {
                const C* wt = wts + j * 4;
                const R* r0 = src_ + soff[0] + first[j] * sa;
                const R* r1 = T >= 2 ? r0 + sa : r0;
                W* d = dst_ + doff[0] + j * da;
                if (ss == 1 && ds == 1) {
                    for (int64_t l = 0; l < w; ++l) {
                        const C v = tap_sum<T, C>(wt, load_as<C>(r0[l]), T >= 2 ? load_as<C>(r1[l]) : C(0), C(0), C(0));
                        d[l] = store_from<W>(finish<kClip>(v, lo, hi, l));
                    }
                } else {
                    for (int64_t l = 0; l < w; ++l) {
                        const C v = tap_sum<T, C>(wt, load_as<C>(r0[l * ss]), T >= 2 ? load_as<C>(r1[l * ss]) : C(0), C(0), C(0));
                        d[l * ds] = store_from<W>(finish<kClip>(v, lo, hi, l));
                    }
                }
            }
            return;
        }
        if (sa == 1 && da == 1) {
            for (int64_t l = 0; l < w; ++l) {
                const R* line = src_ + soff[l];
                W* d = dst_ + doff[l];
                for (int64_t j = 0; j < p_.n_out; ++j) {
                    const R* r0 = line + first[j];
                    const C v = tap_sum<T, C>(wts + j * 4, load_as<C>(r0[0]), T >= 2 ? load_as<C>(r0[1]) : C(0), C(0), C(0));
                    d[j] = store_from<W>(finish<kClip>(v, lo, hi, l));
                }
            }
            return;
        }
        for (int64_t l = 0; l < w; ++l) {
            const R* line = src_ + soff[l];
            W* d = dst_ + doff[l];
            for (int64_t j = 0; j < p_.n_out; ++j) {
                const C* wt = wts + j * 4;
                const R* r0 = line + first[j] * sa;
                const C v = tap_sum<T, C>(wt, load_as<C>(r0[0]), T >= 2 ? load_as<C>(r0[sa]) : C(0), C(0), C(0));
                d[j * da] = store_from<W>(finish<kClip>(v, lo, hi, l));
            }
        }
    }

    // Order 3: lines copied into the lane buffer with their edge padding, prefiltered, evaluated.
    template <bool kClip>
    void buffered_block(int64_t w, const int64_t* soff, const int64_t* doff, const C* lo, const C* hi, C* buf,
                        C* obuf) const {
        const int64_t sa = p_.src_s[p_.axis], da = p_.dst_s[p_.axis];
        const int64_t W_ = width_;
        int64_t ss = 0, ds = 0;
        const bool lanes_affine = after_mode_ && affine(soff, w, ss) && affine(doff, w, ds);
        if (lanes_affine) {
            for (int64_t i = 0; i < n_in_; ++i) {
                const R* row = src_ + soff[0] + i * sa;
                C* b = buf + (pad_ + i) * W_;
                if (ss == 1) {
                    for (int64_t l = 0; l < w; ++l) b[l] = load_as<C>(row[l]);
                } else {
                    for (int64_t l = 0; l < w; ++l) b[l] = load_as<C>(row[l * ss]);
                }
            }
        } else {
            for (int64_t l = 0; l < w; ++l) {
                const R* line = src_ + soff[l];
                for (int64_t i = 0; i < n_in_; ++i) buf[(pad_ + i) * W_ + l] = load_as<C>(line[i * sa]);
            }
        }
        for (int64_t i = 0; i < pad_; ++i) {
            std::memcpy(buf + i * W_, buf + pad_ * W_, sizeof(C) * w);
            std::memcpy(buf + (pad_ + n_in_ + i) * W_, buf + (pad_ + n_in_ - 1) * W_, sizeof(C) * w);
        }
        bspline_prefilter_lanes<C>(buf, rows_, W_, static_cast<int>(w));
        const int64_t* first = taps_.first.data();
        const C* wts = taps_.w.data();
        if (lanes_affine) {
            for (int64_t j = 0; j < p_.n_out; ++j) {
                const C* wt = wts + j * 4;
                const C* b0 = buf + first[j] * W_;
                W* d = dst_ + doff[0] + j * da;
                for (int64_t l = 0; l < w; ++l) {
                    const C v = tap_sum<4, C>(wt, b0[l], b0[W_ + l], b0[2 * W_ + l], b0[3 * W_ + l]);
                    d[l * ds] = store_from<W>(finish<kClip>(v, lo, hi, l));
                }
            }
            return;
        }
        for (int64_t j = 0; j < p_.n_out; ++j) {
            const C* wt = wts + j * 4;
            const C* b0 = buf + first[j] * W_;
            C* ob = obuf + j * W_;
            for (int64_t l = 0; l < w; ++l) ob[l] = tap_sum<4, C>(wt, b0[l], b0[W_ + l], b0[2 * W_ + l], b0[3 * W_ + l]);
        }
        for (int64_t l = 0; l < w; ++l) {
            W* d = dst_ + doff[l];
            for (int64_t j = 0; j < p_.n_out; ++j) d[j * da] = store_from<W>(finish<kClip>(obuf[j * W_ + l], lo, hi, l));
        }
    }

    const Pass& p_;
    const R* src_;
    W* dst_;
    TapTable<C> taps_;
    int64_t n_in_ = 0, pad_ = 0, rows_ = 0;
    bool after_mode_ = false;
    int outer_axes_[kResampleDims] = {0, 0, 0, 0}, lane_axes_[kResampleDims] = {0, 0, 0, 0};
    int outer_count_ = 0, lane_count_ = 0;
    int64_t outer_total_ = 1, lane_total_ = 1, width_ = 1, blocks_ = 1;
};

size_t dtype_size(DType dtype) {
    return dispatch_all(dtype, [](auto tag) { return sizeof(typename decltype(tag)::type); });
}

bool wide_compute(DType in, DType out) {
    return in == DType::Float64 || out == DType::Float64 || in == DType::Int32 || in == DType::UInt32 ||
           in == DType::Int64 || in == DType::UInt64;
}

}  // namespace

namespace {

void run_pass(const Pass& pass, const ArrayArg& src, const ArrayArg& dst) {
    dispatch_all(src.dtype, [&](auto r_tag) {
        using R = typename decltype(r_tag)::type;
        dispatch_float_out(dst.dtype, [&](auto w_tag) {
            using W = typename decltype(w_tag)::type;
            PassRunner<R, W>(pass, src.data<R>(), dst.data<W>()).run();
        });
    });
}

ArrayArg offset_view(const ArrayArg& a, int64_t elements) {
    ArrayArg v = a;
    v.ptr = a.ptr + static_cast<uintptr_t>(elements * static_cast<int64_t>(dtype_size(a.dtype)));
    return v;
}

ArrayArg contiguous_view(void* data, DType dtype, const int64_t* shape) {
    ArrayArg v;
    v.ptr = reinterpret_cast<uintptr_t>(data);
    v.dtype = dtype;
    int64_t stride = 1;
    for (int a = kResampleDims - 1; a >= 0; --a) {
        v.strides.s[a] = stride;
        stride *= shape[a];
    }
    return v;
}

struct Buffer {   // uninitialised scratch memory, 8-byte aligned
    std::unique_ptr<double[]> data;
    explicit Buffer(size_t bytes = 0) : data(bytes ? new double[(bytes + 7) / 8] : nullptr) {}
    void* get() const { return data.get(); }
};

}  // namespace

namespace {

void resample_impl(const ResampleSpec& spec, const AxisMaps* maps, const ArrayArg& in, const ArrayArg& out) {
    for (int a = 0; a < kResampleDims; ++a) {
        if (spec.out_shape[a] == 0 || spec.in_shape[a] == 0) return;
        if (spec.out_shape[a] < 0 || spec.in_shape[a] < 0) throw std::invalid_argument("negative extent");
    }
    if (spec.in_shape[0] != spec.out_shape[0]) throw std::invalid_argument("channel counts differ");
    PassPlan plan = plan_resample_passes(spec, maps);
    const bool identity = plan.count == 0;
    if (identity) {   // a converting copy: an order-0 pass that keeps axis 1's length
        plan.count = 1;
        plan.axes[0] = 1;
        plan.clip_pass = -1;
    }
    const DType cdt = wide_compute(in.dtype, out.dtype) ? DType::Float64 : DType::Float32;
    const size_t csize = cdt == DType::Float64 ? 8 : 4;
    std::vector<double> lo, hi;
    if (plan.clip_pass >= 0) resample_clip_bounds(spec, in, lo, hi);

    // shapes[p] = extents before pass p (per channel; [0] is filled per chunk).
    int64_t shapes[4][kResampleDims];
    for (int a = 0; a < kResampleDims; ++a) shapes[0][a] = spec.in_shape[a];
    for (int p = 0; p < plan.count; ++p) {
        for (int a = 0; a < kResampleDims; ++a) shapes[p + 1][a] = shapes[p][a];
        shapes[p + 1][plan.axes[p]] = spec.out_shape[plan.axes[p]];
    }
    // Leading passes that keep axis 1 run slice by slice (a slab of one index of axis 1) with
    // per-thread scratch, so their intermediates stay in cache and never fill main memory.
    int slab_passes = 0;
    while (slab_passes < plan.count && plan.axes[slab_passes] != 1) ++slab_passes;
    if (slab_passes < 2) slab_passes = 0;
    int64_t inter = 0, slab_inter = 0;
    for (int p = 0; p + 1 < plan.count; ++p) {
        const int64_t* sh = shapes[p + 1];
        if (p + 1 < slab_passes) slab_inter = std::max(slab_inter, sh[2] * sh[3]);
        else inter = std::max(inter, sh[1] * sh[2] * sh[3]);
    }
    const int64_t channels = spec.in_shape[0];
    const int64_t chunk = inter == 0 ? channels : std::clamp<int64_t>((int64_t(1) << 22) / inter, 1, channels);
    Buffer tmp[2] = {Buffer(inter ? chunk * inter * csize : 0), Buffer(inter ? chunk * inter * csize : 0)};

    auto make_pass = [&](int p, const int64_t* src_shape, const ArrayArg& src, const ArrayArg& dst,
                         const int64_t* origin, bool serial) {
        Pass pass;
        const int axis = plan.axes[p];
        for (int a = 0; a < kResampleDims; ++a) {
            pass.shape[a] = src_shape[a];
            pass.src_s[a] = src.strides.s[a];
            pass.dst_s[a] = dst.strides.s[a];
            pass.index0[a] = origin[a];
        }
        pass.axis = axis;
        pass.n_out = spec.out_shape[axis];
        pass.order = identity ? 0 : spec.order[axis];
        pass.serial = serial;
        pass.maps = identity ? nullptr : maps;
        if (p == plan.clip_pass) {
            pass.lo = lo.data();
            pass.hi = hi.data();
            pass.clip_axis = spec.clip_axis;
            pass.groups_per_channel = spec.clip_axis > 0 ? spec.in_shape[spec.clip_axis] : 1;
        }
        return pass;
    };

    for (int64_t c0 = 0; c0 < channels; c0 += chunk) {
        const int64_t cc = std::min(chunk, channels - c0);
        const ArrayArg out_chunk = offset_view(out, c0 * out.strides.s[0]);
        const ArrayArg in_chunk = offset_view(in, c0 * in.strides.s[0]);
        auto pass_output = [&](int p, const int64_t* shape) {
            return p + 1 == plan.count ? out_chunk : contiguous_view(tmp[p % 2].get(), cdt, shape);
        };
        ArrayArg cur = in_chunk;
        int64_t cur_shape[kResampleDims];
        for (int a = 0; a < kResampleDims; ++a) cur_shape[a] = shapes[0][a];
        cur_shape[0] = cc;
        int first_global = 0;
        if (slab_passes >= 2) {
            int64_t slab_out[kResampleDims];
            for (int a = 0; a < kResampleDims; ++a) slab_out[a] = shapes[slab_passes][a];
            slab_out[0] = cc;
            const ArrayArg target = pass_output(slab_passes - 1, slab_out);
            const int64_t n1 = cur_shape[1];
            parallel_for(cc * n1, 1, [&](int64_t begin, int64_t end, int) {
                Buffer scratch[2] = {Buffer(slab_inter * csize), Buffer(slab_inter * csize)};
                for (int64_t unit = begin; unit < end; ++unit) {
                    const int64_t c = unit / n1, s1 = unit % n1;
                    const int64_t origin[kResampleDims] = {c0 + c, s1, 0, 0};
                    ArrayArg src = offset_view(in_chunk, c * in.strides.s[0] + s1 * in.strides.s[1]);
                    int64_t sh[kResampleDims] = {1, 1, shapes[0][2], shapes[0][3]};
                    for (int p = 0; p < slab_passes; ++p) {
                        int64_t next[kResampleDims] = {1, 1, shapes[p + 1][2], shapes[p + 1][3]};
                        const ArrayArg dst = p + 1 == slab_passes
                                                 ? offset_view(target, c * target.strides.s[0] + s1 * target.strides.s[1])
                                                 : contiguous_view(scratch[p % 2].get(), cdt, next);
                        run_pass(make_pass(p, sh, src, dst, origin, true), src, dst);
                        src = dst;
                        for (int a = 0; a < kResampleDims; ++a) sh[a] = next[a];
                    }
                }
            });
            cur = target;
            for (int a = 0; a < kResampleDims; ++a) cur_shape[a] = slab_out[a];
            first_global = slab_passes;
        }
        for (int p = first_global; p < plan.count; ++p) {
            int64_t next_shape[kResampleDims];
            for (int a = 0; a < kResampleDims; ++a) next_shape[a] = cur_shape[a];
            next_shape[plan.axes[p]] = spec.out_shape[plan.axes[p]];
            const ArrayArg dst = pass_output(p, next_shape);
            const int64_t origin[kResampleDims] = {c0, 0, 0, 0};
            run_pass(make_pass(p, cur_shape, cur, dst, origin, false), cur, dst);
            cur = dst;
            for (int a = 0; a < kResampleDims; ++a) cur_shape[a] = next_shape[a];
        }
    }
}

}  // namespace

void resample(const ResampleSpec& spec, const ArrayArg& in, const ArrayArg& out) { resample_impl(spec, nullptr, in, out); }

void resample_mapped(const ResampleSpec& spec, const AxisMaps& maps, const ArrayArg& in, const ArrayArg& out) {
    for (int a = 1; a < kResampleDims; ++a) {
        const int order = spec.order[a];
        if (order != 0 && order != 1 && order != 3) throw std::invalid_argument("orders must be 0, 1 or 3");
        if (!std::isfinite(maps.scale[a]) || !std::isfinite(maps.offset[a]))
            throw std::invalid_argument("axis maps must be finite");
        if (order != 3 || spec.out_shape[a] == 0) continue;
        if (maps.boundary != ResampleBoundary::Edge)
            throw std::invalid_argument("order 3 takes the edge boundary only");
        const double c0 = maps.offset[a];
        const double c1 = maps.offset[a] + maps.scale[a] * static_cast<double>(spec.out_shape[a] - 1);
        if (!mapped_spline_in_range(c0, spec.in_shape[a]) || !mapped_spline_in_range(c1, spec.in_shape[a]))
            throw std::invalid_argument("order-3 sample coordinates reach beyond the spline padding");
    }
    if (spec.late_axis != -1 || spec.clip_axis != -1)
        throw std::invalid_argument("mapped resampling takes neither late_axis nor clip_axis");
    resample_impl(spec, &maps, in, out);
}

}  // namespace medseg::cpu
