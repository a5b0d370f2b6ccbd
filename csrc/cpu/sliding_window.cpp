// Sliding-window gather / weighted scatter-add / finalize on the CPU.
//
// Work is split into rows (the fastest image axis): every row is written by exactly one thread and
// receives its contributions in window order, so results do not depend on the thread count.
// One file of ~540 lines: gather, scatter-add, unblock and finalize share the row helpers of the
// anonymous namespace below (inlined into each row loop); a header for them would expose them to
// every other translation unit.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "medseg/dispatch.h"
#include "medseg/parallel.h"
#include "sliding_window_cpu.h"

namespace medseg::cpu {
namespace {

// Rows per chunk of parallel_for_dynamic: a thread descheduled on a shared machine does not hold
// the others up. Every row is processed by one thread in a fixed window order, so results do not
// depend on the thread count.
constexpr int64_t kRowGrain = 32;

// A call whose whole work is below this many elements runs on the caller's thread. Starting a
// thread costs ~50 us on an idle machine but a scheduler slice (milliseconds) on a loaded one
// (DataLoader workers, other jobs), far more than a one-window gather of 64^3 takes alone
// (~0.1 ms): measured 7.5 ms per such gather at load 6 on 2 cores.
constexpr int64_t kSerialElements = int64_t(1) << 19;

inline int64_t row_chunk(int64_t rows, int64_t work_elements) {
    return work_elements < kSerialElements ? std::max<int64_t>(rows, 1) : kRowGrain;
}

// Window rows are short (one patch wide) and far apart in the accumulator, which the hardware
// prefetchers do not follow. Asking for the accumulator and patch rows a couple of rows ahead,
// one cache line of each in turn, makes the scatter about 1.7x faster single-threaded (measured
// with a 128^3 patch on a 256^3 image); issuing all accumulator lines first and then all patch
// lines gained nothing.
constexpr int64_t kPrefetchRows = 2;

template <typename P>
inline void prefetch_rows(const float* acc_row, const P* patch_row, int64_t x0, int64_t x1) {
    constexpr int64_t kLine = 64 / sizeof(float);
    for (int64_t j = x0; j < x1; j += kLine) {
        __builtin_prefetch(acc_row + j, 1);
        __builtin_prefetch(patch_row + j, 0);
    }
}

// ----------------------------------------------------------------------------- gather
template <typename T, typename O>
void gather_kernel(const SwGrid& g, const ArrayArg& x, int64_t channels, const ArrayArg& out, int64_t first,
                   int64_t n) {
    const int64_t windows = g.windows();
    const int64_t pz = g.patch[0], py = g.patch[1], px = g.patch[2];
    const int64_t* xs = x.strides.s;
    const int64_t* os = out.strides.s;
    const T* src_base = x.data<T>();
    O* dst_base = out.data<O>();
    const O zero = store_from<O>(0.0f);
    parallel_for_dynamic(n * channels * pz * py, row_chunk(n * channels * pz * py, n * channels * pz * py * px),
                         [&](int64_t begin, int64_t end, int) {
        // Row (i, c, iz, iy) of the chunk's first item, then counters: a 512-byte row copy is cheaper
        // than the five integer divisions that decoding each row would cost.
        int64_t r = begin;
        int64_t iy = r % py; r /= py;
        int64_t iz = r % pz; r /= pz;
        int64_t c = r % channels;
        int64_t i = r / channels;
        int64_t o[3], b = 0;
        auto enter_window = [&] {
            const int64_t global = first + i;
            b = global / windows;
            window_origin(g, global % windows, o);
        };
        enter_window();
        for (int64_t item = begin; item < end; ++item) {
            O* dst = dst_base + i * os[0] + c * os[1] + iz * os[2] + iy * os[3];
            const int64_t z = o[0] + iz, y = o[1] + iy;
            const int64_t j_lo = (z < 0 || z >= g.image[0] || y < 0 || y >= g.image[1])
                                     ? px : std::min<int64_t>(px, std::max<int64_t>(0, -o[2]));
            const int64_t j_hi = std::max<int64_t>(j_lo, std::min<int64_t>(px, g.image[2] - o[2]));
            for (int64_t j = 0; j < j_lo; ++j) dst[j * os[4]] = zero;
            if (j_hi > j_lo) {
                const T* src = src_base + b * xs[0] + c * xs[1] + z * xs[2] + y * xs[3] + (o[2] + j_lo) * xs[4];
                O* d = dst + j_lo * os[4];
                const int64_t len = j_hi - j_lo;
                if (std::is_same<T, O>::value && xs[4] == 1 && os[4] == 1) {
                    std::memcpy(static_cast<void*>(d), static_cast<const void*>(src), len * sizeof(T));
                } else {
                    for (int64_t j = 0; j < len; ++j) {
                        if constexpr (std::is_same<T, O>::value) d[j * os[4]] = src[j * xs[4]];
                        else d[j * os[4]] = store_from<O>(load_as<float>(src[j * xs[4]]));
                    }
                }
            }
            for (int64_t j = j_hi; j < px; ++j) dst[j * os[4]] = zero;
            if (++iy == py) {   // next row: iy fastest, then iz, c, i
                iy = 0;
                if (++iz == pz) {
                    iz = 0;
                    if (++c == channels) {
                        c = 0;
                        ++i;
                        if (item + 1 < end) enter_window();
                    }
                }
            }
        }
    });
}

// ----------------------------------------------------------------------------- weight sums
// One value of a separable importance map: max(scale * row, floor), as numpy computes it in float32.
inline float separable_weight(float scale, float row, float floor) {
    const float v = scale * row;
    return v < floor ? floor : v;
}

// The importance row (z, y) of a window whose x origin is `o` in region columns, indexed by region
// column; only [a, e) is valid when the map is separable (computed into buf).
inline const float* importance_row(const SwImportance& imp, int64_t zy, int64_t px, int64_t o, int64_t a, int64_t e,
                                   float* buf) {
    if (!imp.scale) return imp.map + zy * px - o;
    const float f = imp.scale[zy], floor = imp.floor;
    const float* __restrict src = imp.row - o;
    float* __restrict dst = buf;
    for (int64_t j = a; j < e; ++j) dst[j] = separable_weight(f, src[j], floor);
    return buf;
}

// Weight sums of image row (z, y) over region columns [a, e) (clipped to the image), written to
// out[a, e) (out is indexed by region column): the same window-ordered sums as weight_sum(),
// computed a row segment at a time, so every voxel's sum is computed once, in its last window.
void weight_segment(const SwGrid& g, const SwImportance& imp, int64_t z, int64_t y, int64_t x_origin, int64_t a,
                    int64_t e, float* out) {
    a = std::max<int64_t>(a, -x_origin);
    e = std::min<int64_t>(e, g.image[2] - x_origin);
    if (e <= a) return;
    std::fill(out + a, out + e, 0.0f);
    int64_t z0, z1, y0, y1;
    covering_origins(g.origins[0], g.count[0], g.patch[0], z, z0, z1);
    covering_origins(g.origins[1], g.count[1], g.patch[1], y, y0, y1);
    const int64_t px = g.patch[2];
    for (int64_t iz = z0; iz < z1; ++iz) {
        for (int64_t iy = y0; iy < y1; ++iy) {
            const int64_t zy = (z - g.origins[0][iz]) * g.patch[1] + (y - g.origins[1][iy]);
            for (int64_t ix = 0; ix < g.count[2]; ++ix) {
                const int64_t o = g.origins[2][ix] - x_origin;   // window start in region columns
                const int64_t s = std::max<int64_t>(o, a), t = std::min<int64_t>(o + px, e);
                float* __restrict dst = out;
                if (imp.scale) {
                    const float f = imp.scale[zy], floor = imp.floor;
                    const float* __restrict src = imp.row - o;
                    for (int64_t j = s; j < t; ++j) dst[j] = plain_add(dst[j], separable_weight(f, src[j], floor));
                } else {
                    const float* __restrict src = imp.map + zy * px - o;
                    for (int64_t j = s; j < t; ++j) dst[j] = plain_add(dst[j], src[j]);
                }
            }
        }
    }
}

// Weight row of image row (z, y) over region columns [0, nx) (0 outside the image).
void weight_row(const SwGrid& g, const SwImportance& imp, int64_t z, int64_t y, int64_t x_origin, int64_t nx, float* out) {
    std::fill(out, out + nx, 0.0f);
    weight_segment(g, imp, z, y, x_origin, 0, nx, out);
}

// ----------------------------------------------------------------------------- scatter-add
// One row segment [a, e) of one channel of one window: dst = dst + p * w (or p * w for the
// voxels' first window), then / wsum for their last window (wsum > 0 there: it includes this
// window's own importance, and importance maps are positive, so this equals normalize_blend). All arrays are indexed by region
// column; contiguous rows, no aliasing (the accumulator is never the patches), so it vectorizes.
template <bool kAssign, bool kDivide, typename P>
inline void blend_row(float* __restrict dst, const P* __restrict src, const float* __restrict w,
                      const float* __restrict wsum, int64_t a, int64_t e) {
    for (int64_t j = a; j < e; ++j) {
        const float v = load_as<float>(src[j]);
        float r = kAssign ? v * w[j] : blend_add(dst[j], v, w[j]);
        if constexpr (kDivide) r = r / wsum[j];
        dst[j] = r;
    }
}

template <bool kAssign, bool kDivide, typename P>
inline void blend_row_strided(float* dst, int64_t sa, const P* src, int64_t sp, const float* w, const float* wsum,
                              int64_t a, int64_t e) {
    for (int64_t j = a; j < e; ++j) {
        const float v = load_as<float>(src[j * sp]);
        float r = kAssign ? v * w[j] : blend_add(dst[j * sa], v, w[j]);
        if constexpr (kDivide) r = r / wsum[j];
        dst[j * sa] = r;
    }
}

template <typename P>
inline void blend_segment(bool assign, bool divide, float* dst, int64_t sa, const P* src, int64_t sp, const float* w,
                          const float* wsum, int64_t a, int64_t e) {
    if (sa == 1 && sp == 1) {
        if (assign) {
            if (divide) blend_row<true, true>(dst, src, w, wsum, a, e);
            else blend_row<true, false>(dst, src, w, wsum, a, e);
        } else {
            if (divide) blend_row<false, true>(dst, src, w, wsum, a, e);
            else blend_row<false, false>(dst, src, w, wsum, a, e);
        }
    } else if (assign) {
        if (divide) blend_row_strided<true, true>(dst, sa, src, sp, w, wsum, a, e);
        else blend_row_strided<true, false>(dst, sa, src, sp, w, wsum, a, e);
    } else {
        if (divide) blend_row_strided<false, true>(dst, sa, src, sp, w, wsum, a, e);
        else blend_row_strided<false, false>(dst, sa, src, sp, w, wsum, a, e);
    }
}

// Labels of region columns [a, e) of one accumulator row whose K channels already hold final
// probabilities (channel k at row + k * sk, element stride sa): the first channel with the largest
// value, NaN counting as the largest (argmax_takes, branch-free as in finalize), stored to
// out[j * so] as the label dtype. best / index are scratch rows indexed by region column.
void label_segment(const float* row, int64_t sk, int64_t sa, int64_t K, int64_t a, int64_t e, float* __restrict best,
                   int32_t* __restrict index, const ArrayArg& out, int64_t offset, int64_t so) {
    for (int64_t j = a; j < e; ++j) {
        best[j] = row[j * sa];
        index[j] = 0;
    }
    for (int64_t k = 1; k < K; ++k) {
        const float* __restrict p = row + k * sk;
        const int32_t kk = static_cast<int32_t>(k);
        for (int64_t j = a; j < e; ++j) {
            const float c = p[j * sa], cur = best[j];
            const bool take = (cur == cur) & ((c != c) | (c > cur));
            best[j] = take ? c : cur;
            index[j] = take ? kk : index[j];
        }
    }
    auto store = [&](auto tag) {
        using L = typename decltype(tag)::type;
        L* o = out.data<L>() + offset;
        for (int64_t j = a; j < e; ++j) o[j * so] = static_cast<L>(index[j]);
    };
    dispatch_label_out(out.dtype, store);   // the dtype was checked by sw_scatter_add
}

struct WindowBox {
    int64_t b;              // accumulator batch index
    int64_t i;              // index within the call's patches
    int64_t idx[3];         // per-axis window indices
    int64_t lo[3], hi[3];   // covered voxels in region coordinates, [lo, hi)
    int64_t o[3];           // origin in region coordinates
};

template <typename P>
void scatter_kernel(const SwGrid& g, const SwImportance& imp, const ArrayArg& patches, const ArrayArg& acc,
                    const SwRegion& reg, const ArrayArg& weights, const ArrayArg& labels, int64_t first, int64_t n,
                    int64_t block) {
    const int64_t windows = g.windows();
    const int64_t K = reg.channels;
    std::vector<WindowBox> boxes;
    int64_t lo[3] = {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max(), 0};
    int64_t hi[3] = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::min(), 0};
    int64_t b_lo = std::numeric_limits<int64_t>::max(), b_hi = -1;
    for (int64_t i = 0; i < n; ++i) {
        WindowBox box;
        box.i = i;
        box.b = (first + i) / windows;
        int64_t o[3];
        window_origin(g, (first + i) % windows, o);
        window_indices(g, (first + i) % windows, box.idx);
        bool empty = box.b >= reg.batch;
        for (int a = 0; a < 3; ++a) {
            box.o[a] = o[a] - reg.origin[a];
            box.lo[a] = std::max<int64_t>({box.o[a], 0, -reg.origin[a]});
            box.hi[a] = std::min<int64_t>({box.o[a] + g.patch[a], reg.shape[a], g.image[a] - reg.origin[a]});
            empty = empty || box.hi[a] <= box.lo[a];
        }
        if (empty) continue;
        boxes.push_back(box);
        for (int a = 0; a < 2; ++a) {
            lo[a] = std::min(lo[a], box.lo[a]);
            hi[a] = std::max(hi[a], box.hi[a]);
        }
        b_lo = std::min(b_lo, box.b);
        b_hi = std::max(b_hi, box.b);
    }
    if (boxes.empty()) return;
    const int64_t nz = hi[0] - lo[0], ny = hi[1] - lo[1];
    const int64_t* ps = patches.strides.s;
    const int64_t* as = acc.strides.s;
    const int64_t* ws = weights.strides.s;
    const P* pbase = patches.data<P>();
    float* abase = acc.data<float>();
    float* wbase = weights.present() ? weights.data<float>() : nullptr;
    const int64_t px = g.patch[2];
    const int64_t* ox = g.origins[2];

    const bool fuse_labels = labels.present() && reg.divide_last;
    const int64_t* ls = labels.strides.s;
    // Blocked accumulator planes (see sw_scatter_add): row yr of column block xb, indexed by region column.
    const int64_t plane_rows = reg.shape[1], plane_cols = reg.shape[2];
    auto block_row = [&](float* plane, int64_t yr, int64_t xb) {
        return plane + xb * block * plane_rows + yr * std::min(block, plane_cols - xb * block) - xb * block;
    };

    // One work item per accumulator row (b, z, y): all channels, all windows of the call in order.
    const int64_t rows = (b_hi - b_lo + 1) * nz * ny;
    int64_t work = 0;
    for (const WindowBox& box : boxes)
        work += K * (box.hi[0] - box.lo[0]) * (box.hi[1] - box.lo[1]) * (box.hi[2] - box.lo[2]);
    parallel_for_dynamic(rows, row_chunk(rows, work), [&](int64_t begin, int64_t end, int) {
        std::vector<float> wrow(reg.divide_last ? reg.shape[2] : 0), irow(imp.scale ? reg.shape[2] : 0);
        std::vector<float> best(fuse_labels ? reg.shape[2] : 0);
        std::vector<int32_t> index(fuse_labels ? reg.shape[2] : 0);
        for (int64_t item = begin; item < end; ++item) {
            int64_t r = item;
            const int64_t y = lo[1] + r % ny; r /= ny;
            const int64_t z = lo[0] + r % nz;
            const int64_t b = b_lo + r / nz;
            // The row kPrefetchRows items ahead (prefetched channel by channel below), also when
            // another thread will process it: the lines then wait in the shared L3.
            int64_t zn = -1, yn = -1, bn = -1;
            if (item + kPrefetchRows < rows) {
                int64_t rn = item + kPrefetchRows;
                yn = lo[1] + rn % ny; rn /= ny;
                zn = lo[0] + rn % nz;
                bn = b_lo + rn / nz;
            }
            const int64_t zi = z + reg.origin[0], yi = y + reg.origin[1];   // image coordinates
            const int64_t zr = reg.index(0, z), yr = reg.index(1, y);       // accumulator indices
            for (const WindowBox& box : boxes) {
                if (box.b != b || z < box.lo[0] || z >= box.hi[0] || y < box.lo[1] || y >= box.hi[1]) continue;
                const int64_t x0 = box.lo[2], x1 = box.hi[2];
                const float* w = importance_row(imp, (z - box.o[0]) * g.patch[1] + (y - box.o[1]), px, box.o[2], x0,
                                                x1, irow.data());   // indexed by region column
                if (wbase) {
                    float* dst = wbase + b * ws[0] + zr * ws[1] + yr * ws[2];
                    const int64_t st = ws[3];
                    for (int64_t j = x0; j < x1; ++j) dst[j * st] = plain_add(dst[j * st], w[j]);
                }
                // [xa, x1): the first window of these voxels, assign instead of add.
                int64_t xa = x1;
                if (reg.assign_first && first_cover(g.origins[0], box.idx[0], g.patch[0], zi) &&
                    first_cover(g.origins[1], box.idx[1], g.patch[1], yi)) {
                    xa = box.idx[2] == 0 ? x0 : std::max(x0, std::min(x1, ox[box.idx[2] - 1] + px - reg.origin[2]));
                }
                // [x0, xl): the last window of these voxels, divide by the weight sum now.
                int64_t xl = x0;
                if (reg.divide_last && last_cover(g.origins[0], g.count[0], box.idx[0], zi) &&
                    last_cover(g.origins[1], g.count[1], box.idx[1], yi)) {
                    xl = box.idx[2] == g.count[2] - 1 ? x1 : std::max(x0, std::min(x1, ox[box.idx[2] + 1] - reg.origin[2]));
                    if (xl > x0) weight_segment(g, imp, zi, yi, reg.origin[2], x0, xl, wrow.data());
                }
                // Segments of [x0, x1) with one (assign, divide) state each.
                const int64_t cuts[4] = {x0, std::min(xa, xl), std::max(xa, xl), x1};
                const int64_t sa = as[4], sp = ps[4];
                // (Blocked planes are read as a few sequential streams, which the hardware prefetches better.)
                const bool ahead = box.b == bn && zn >= box.lo[0] && zn < box.hi[0] && yn >= box.lo[1] &&
                                   yn < box.hi[1] && sa == 1 && sp == 1 && block == 0;
                const int64_t next_acc = ahead ? (bn - b) * as[0] + (reg.index(0, zn) - zr) * as[2] +
                                                     (reg.index(1, yn) - yr) * as[3] : 0;
                const int64_t next_src = ahead ? (zn - z) * ps[2] + (yn - y) * ps[3] : 0;
                for (int64_t k = 0; k < K; ++k) {
                    const P* src = pbase + box.i * ps[0] + k * ps[1] + (z - box.o[0]) * ps[2] + (y - box.o[1]) * ps[3] -
                                   box.o[2] * ps[4];
                    if (block > 0) {
                        float* plane = abase + b * as[0] + k * as[1] + zr * as[2];
                        for (int s = 0; s < 3; ++s) {
                            const int64_t a = cuts[s], e = cuts[s + 1];
                            for (int64_t c0 = a, c1; c0 < e; c0 = c1) {
                                const int64_t xb = c0 / block;
                                c1 = std::min(e, (xb + 1) * block);
                                blend_segment<P>(a >= xa, a < xl, block_row(plane, yr, xb), 1, src, sp, w, wrow.data(),
                                                 c0, c1);
                            }
                        }
                        continue;
                    }
                    float* dst = abase + b * as[0] + k * as[1] + zr * as[2] + yr * as[3];
                    if (ahead) prefetch_rows(dst + next_acc, src + next_src, x0, x1);
                    for (int s = 0; s < 3; ++s) {
                        const int64_t a = cuts[s], e = cuts[s + 1];
                        if (e > a) blend_segment<P>(a >= xa, a < xl, dst, sa, src, sp, w, wrow.data(), a, e);
                    }
                }
                if (fuse_labels && xl > x0) {
                    // [x0, xl) is final in every channel: write its labels now (no finalize pass).
                    const int64_t offset = b * ls[0] + zi * ls[2] + yi * ls[3] + reg.origin[2] * ls[4];
                    if (block > 0) {
                        float* plane = abase + b * as[0] + zr * as[2];
                        for (int64_t c0 = x0, c1; c0 < xl; c0 = c1) {
                            const int64_t xb = c0 / block;
                            c1 = std::min(xl, (xb + 1) * block);
                            label_segment(block_row(plane, yr, xb), as[1], 1, K, c0, c1, best.data(), index.data(),
                                          labels, offset, ls[4]);
                        }
                    } else {
                        label_segment(abase + b * as[0] + zr * as[2] + yr * as[3], as[1], as[4], K, x0, xl, best.data(),
                                      index.data(), labels, offset, ls[4]);
                    }
                }
            }
        }
    });
}

// ----------------------------------------------------------------------------- finalize
// prob[j] = normalize_blend(a[j * sa], w[j]) in two passes: the division by a selected (never
// zero) weight, then the select of 0 for uncovered voxels. Written as one expression, the compiler
// moves the division under the branch and the loop stays scalar; even the select of a safe
// divisor is turned into control flow unless the compiler may assume that division does not trap
// (which changes no result: floating-point exceptions are never unmasked here).
__attribute__((optimize("no-trapping-math"))) inline void normalize_row(const float* a, int64_t sa, const float* __restrict w, float* __restrict prob, int64_t nx) {
    if (sa == 1) {
        for (int64_t j = 0; j < nx; ++j) prob[j] = a[j] / (w[j] > 0.0f ? w[j] : 1.0f);
    } else {
        for (int64_t j = 0; j < nx; ++j) prob[j] = a[j * sa] / (w[j] > 0.0f ? w[j] : 1.0f);
    }
    for (int64_t j = 0; j < nx; ++j) prob[j] = w[j] > 0.0f ? prob[j] : 0.0f;
}

template <typename O, bool argmax>
void finalize_kernel(const SwGrid& g, const SwImportance& imp, const ArrayArg& acc, const SwRegion& reg,
                     const ArrayArg& weights, const ArrayArg& out) {
    const int64_t K = reg.channels, nz = reg.shape[0], ny = reg.shape[1], nx = reg.shape[2];
    const int64_t* as = acc.strides.s;
    const int64_t* ws = weights.strides.s;
    const int64_t* os = out.strides.s;
    const float* abase = acc.data<float>();
    const float* wbase = weights.present() ? weights.data<float>() : nullptr;
    O* obase = out.data<O>();
    // With divide_last the accumulator already holds probabilities: no division (x / 1 == x).
    const bool normalized = reg.divide_last != 0;
    parallel_for_dynamic(reg.batch * nz * ny, row_chunk(reg.batch * nz * ny, reg.batch * nz * ny * nx * K),
                         [&](int64_t begin, int64_t end, int) {
        std::vector<float> wrow(normalized ? 0 : nx), prob(nx), best(argmax ? nx : 0);
        std::vector<int32_t> index(argmax ? nx : 0);
        for (int64_t item = begin; item < end; ++item) {
            const int64_t y = item % ny, z = (item / ny) % nz, b = item / (ny * nz);
            if (normalized) {
            } else if (wbase) {
                const float* w = wbase + b * ws[0] + reg.index(0, z) * ws[1] + reg.index(1, y) * ws[2];
                for (int64_t j = 0; j < nx; ++j) wrow[j] = w[j * ws[3]];
            } else {
                weight_row(g, imp, z + reg.origin[0], y + reg.origin[1], reg.origin[2], nx, wrow.data());
            }
            for (int64_t k = 0; k < K; ++k) {
                const float* a = abase + b * as[0] + k * as[1] + reg.index(0, z) * as[2] + reg.index(1, y) * as[3];
                const int64_t sa = as[4];
                // p: this channel's probabilities along the row.
                const float* p = a;
                if (!normalized) {
                    normalize_row(a, sa, wrow.data(), prob.data(), nx);
                    p = prob.data();
                } else if (sa != 1) {
                    for (int64_t j = 0; j < nx; ++j) prob[j] = a[j * sa];
                    p = prob.data();
                }
                if constexpr (argmax) {
                    float* __restrict bp = best.data();
                    int32_t* __restrict ip = index.data();
                    if (k == 0) {
                        for (int64_t j = 0; j < nx; ++j) {
                            bp[j] = p[j];
                            ip[j] = 0;
                        }
                    } else {
                        const int32_t kk = static_cast<int32_t>(k);
                        for (int64_t j = 0; j < nx; ++j) {   // branch-free so the loop vectorizes
                            const float c = p[j], cur = bp[j];
                            // argmax_takes(c, cur) without branches: a NaN already won, or c is NaN or larger.
                            const bool take = (cur == cur) & ((c != c) | (c > cur));
                            bp[j] = take ? p[j] : bp[j];
                            ip[j] = take ? kk : ip[j];
                        }
                    }
                } else {
                    O* o = obase + b * os[0] + k * os[1] + z * os[2] + y * os[3];
                    if (static_cast<const void*>(o) == static_cast<const void*>(p)) continue;   // in place, already final
                    if constexpr (std::is_same<O, float>::value) {
                        if (os[4] == 1) {
                            std::memcpy(o, p, nx * sizeof(float));
                            continue;
                        }
                    }
                    for (int64_t j = 0; j < nx; ++j) o[j * os[4]] = store_from<O>(p[j]);
                }
            }
            if constexpr (argmax) {
                O* o = obase + b * os[0] + z * os[2] + y * os[3];
                const int32_t* ip = index.data();
                for (int64_t j = 0; j < nx; ++j) o[j * os[4]] = static_cast<O>(ip[j]);
            }
        }
    });
}

}  // namespace

void sw_gather(const SwGrid& grid, const ArrayArg& x, int64_t batch, int64_t channels, const ArrayArg& out,
               int64_t first, int64_t n) {
    if (n <= 0 || channels <= 0 || grid.patch_voxels() == 0) return;
    dispatch_all(x.dtype, [&](auto in_tag) {
        using T = typename decltype(in_tag)::type;
        if (out.dtype == x.dtype) {
            gather_kernel<T, T>(grid, x, channels, out, first, n);
        } else if (out.dtype == DType::Float32) {
            gather_kernel<T, float>(grid, x, channels, out, first, n);
        } else {
            throw std::invalid_argument(std::string("gather output must have the input dtype or float32, got ") +
                                        dtype_name(out.dtype));
        }
    });
}

void sw_scatter_add(const SwGrid& grid, const SwImportance& imp, const ArrayArg& patches, const ArrayArg& acc,
                    const SwRegion& region, const ArrayArg& weights, int64_t first, int64_t n, const ArrayArg& labels,
                    int64_t block) {
    if (n <= 0 || region.batch <= 0) return;
    if (block < 0) throw std::invalid_argument("block must be >= 0");
    if (block > 0) {
        const int64_t* s = acc.strides.s;
        if (s[4] != 1 || (region.shape[1] > 1 && s[3] != region.shape[2]) ||
            (region.shape[0] > 1 && s[2] != region.shape[1] * region.shape[2]) || weights.present())
            throw std::invalid_argument("a blocked accumulator needs contiguous (y, x) planes and no weights");
    }
    if (labels.present()) {
        if (!region.divide_last) throw std::invalid_argument("labels need in-order scatter with division at the last window");
        dispatch_label_out(labels.dtype, [](auto) {});   // throws for a dtype that is not a label dtype
    }
    dispatch_float_out(patches.dtype, [&](auto tag) {
        using P = typename decltype(tag)::type;
        scatter_kernel<P>(grid, imp, patches, acc, region, weights, labels, first, n, block);
    });
}

void sw_unblock(const ArrayArg& acc, int64_t planes, int64_t ny, int64_t nx, int64_t block) {
    if (planes <= 0 || ny <= 0 || nx <= 0 || block <= 0 || nx <= block || ny == 1) return;   // already row-major
    float* base = acc.data<float>();
    const int64_t plane = ny * nx;
    parallel_for_dynamic(planes, plane * planes < kSerialElements ? planes : 4, [&](int64_t begin, int64_t end, int) {
        std::vector<float> scratch(plane);   // one plane, reused for the chunk's planes
        for (int64_t p = begin; p < end; ++p) {
            float* data = base + p * plane;
            std::memcpy(scratch.data(), data, plane * sizeof(float));
            for (int64_t xb = 0; xb * block < nx; ++xb) {
                const int64_t bw = std::min(block, nx - xb * block);
                const float* src = scratch.data() + xb * block * ny;
                float* dst = data + xb * block;
                for (int64_t y = 0; y < ny; ++y) std::memcpy(dst + y * nx, src + y * bw, bw * sizeof(float));
            }
        }
    });
}

void sw_finalize(const SwGrid& grid, const SwImportance& imp, const ArrayArg& acc, const SwRegion& region,
                 const ArrayArg& weights, const ArrayArg& out, bool argmax) {
    if (region.batch <= 0 || region.shape[0] * region.shape[1] * region.shape[2] == 0) return;
    if (argmax) {
        dispatch_label_out(out.dtype, [&](auto tag) {
            using O = typename decltype(tag)::type;
            finalize_kernel<O, true>(grid, imp, acc, region, weights, out);
        });
    } else {
        dispatch_float_out(out.dtype, [&](auto tag) {
            using O = typename decltype(tag)::type;
            finalize_kernel<O, false>(grid, imp, acc, region, weights, out);
        });
    }
}

}  // namespace medseg::cpu
