// CPU drivers of the distance family: the separable exact EDT on a C-contiguous buffer
// (used by distance_transform and by the surface metrics) and the declarations the bindings call.
//
// Pass order: axis 0 first (two sweeps over whole planes, contiguous and vectorisable), then the
// middle axes on tiles of kLineTile neighbouring lines gathered into a small contiguous block
// (one cache line per row of the tile instead of one strided element per line), then the last,
// contiguous axis line by line. Every pass is parallel over independent lines, so the result
// does not depend on the thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "medseg/array_arg.h"
#include "medseg/distance.h"
#include "medseg/parallel.h"

namespace medseg::cpu {

constexpr int64_t kLineTile = 16;     // lines per tile on strided axes
constexpr int64_t kPlaneRows = 16;    // rows per work item in the axis-0 sweeps

// parallel_for_dynamic, or a plain call on this thread when `parallel` is false (nested use).
// Line costs vary a lot (lines of sites are skipped), hence chunks pulled from a shared counter.
template <typename Fn>
inline void maybe_parallel(bool parallel, int64_t n, int64_t chunk, Fn&& fn) {
    if (n <= 0) return;
    if (parallel) parallel_for_dynamic(n, chunk, fn);
    else fn(int64_t(0), n, 0);
}

struct EdtShape {
    int ndim = 0;
    int64_t shape[kMaxDims] = {0};
    double spacing[kMaxDims] = {0};

    int64_t size() const {
        int64_t n = 1;
        for (int a = 0; a < ndim; ++a) n *= shape[a];
        return n;
    }
    int64_t prod(int from, int to) const {
        int64_t n = 1;
        for (int a = from; a < to; ++a) n *= shape[a];
        return n;
    }
};

// AVX2 path of the envelope passes (distance_avx2.cpp): W = 32 / sizeof(T) lines in lockstep (8
// float, 4 double), bit-identical to the scalar envelope. Call only when edt_simd_active() (a build
// with the AVX2 path, a CPU with AVX2, not disabled by MEDSEG_EDT_SIMD=0 / edt_simd_mode(0)).
template <typename T>
struct EdtLaneScratch {
    static constexpr int64_t W = 32 / sizeof(T);
    std::vector<T> f, d, z;
    std::vector<int32_t> v;
    explicit EdtLaneScratch(int64_t n) : f(W * n), d(W * n), z(W * n), v(W * n) {}
};
bool edt_simd_active();
int edt_simd_mode(int mode);   // 0 scalar, 1 AVX2 where available, else unchanged; returns the state
// Envelope in place of the W lines base[q * stride + l] (l < W, q < n) of a strided axis.
void edt_lines_avx2(float* base, int64_t n, int64_t stride, float s, EdtLaneScratch<float>& scratch);
void edt_lines_avx2(double* base, int64_t n, int64_t stride, double s, EdtLaneScratch<double>& scratch);
// Envelope in place of W consecutive contiguous rows of n elements, then the square root if asked.
void edt_rows_avx2(float* rows, int64_t n, float s, bool take_sqrt, EdtLaneScratch<float>& scratch);
void edt_rows_avx2(double* rows, int64_t n, double s, bool take_sqrt, EdtLaneScratch<double>& scratch);

// SIMD lanes only where a lane index (q * W + l) fits an int32 gather index.
constexpr int64_t kMaxLaneLine = int64_t(1) << 27;

// One row of the forward sweep along axis 0: p holds the counts of the previous plane and gets
// those of this one, o too. m: the row's bytes, a site where m == 0 (ZeroIsSite) or m != 0.
// Returns whether the row has a site. Branch-free and restrict-qualified, so it vectorises.
template <bool ZeroIsSite, typename T>
inline bool edt_forward_row(const uint8_t* __restrict m, T* __restrict p, T* __restrict o, int64_t n) {
    uint8_t any = 0;
    for (int64_t x = 0; x < n; ++x) {
        const bool site = ZeroIsSite ? m[x] == 0 : m[x] != 0;
        const T c = edt_sweep_step<T>(site, p[x]);
        p[x] = c;
        o[x] = c;
        any |= static_cast<uint8_t>(site);
    }
    return any != 0;
}

// Backward sweep over one plane: counts of plane i + 1 in `prev`, final values into `plane`.
template <bool TakeSqrt, typename T>
inline void edt_backward_row(T* __restrict plane, T* __restrict prev, int64_t n, T s) {
    for (int64_t w = 0; w < n; ++w) {
        const T c = std::min(plane[w], prev[w] + T(1));
        prev[w] = c;
        plane[w] = edt_first_axis_value<T>(c, s, TakeSqrt);
    }
}

// Axis-0 sweeps. `sites.row_bytes(i, r, scratch, zero_is_site)` returns the bytes of row r (of
// the sub-array shape[1:], rows of length shape[last]) of plane i: the data itself where it is
// contiguous bytes, else 0/1 written into scratch. Writes squared distances along axis 0 (or
// distances if ndim == 1 and take_sqrt). Returns whether any site exists.
template <typename T, typename Sites>
bool edt_first_axis(const EdtShape& sh, const Sites& sites, T* out, bool take_sqrt, bool parallel) {
    const int64_t n0 = sh.shape[0];
    const int64_t inner = sh.prod(1, sh.ndim);
    const int64_t row_len = sh.ndim > 1 ? sh.shape[sh.ndim - 1] : 1;
    const int64_t rows = row_len ? inner / row_len : 0;
    const int64_t items = (rows + kPlaneRows - 1) / kPlaneRows;
    const T s = static_cast<T>(sh.spacing[0]);
    const T inf = edt_inf<T>();
    std::atomic<bool> any_site{false};
    maybe_parallel(parallel, items, 1, [&](int64_t begin, int64_t end, int) {
        std::vector<T> prev;
        std::vector<uint8_t> scratch(static_cast<size_t>(row_len));
        bool found = false;
        for (int64_t item = begin; item < end; ++item) {
            const int64_t r0 = item * kPlaneRows, r1 = std::min(rows, r0 + kPlaneRows);
            const int64_t width = (r1 - r0) * row_len;
            const int64_t base = r0 * row_len;
            prev.assign(width, inf);
            for (int64_t i = 0; i < n0; ++i) {
                T* plane = out + i * inner + base;
                for (int64_t r = r0; r < r1; ++r) {
                    bool zero_is_site = false;
                    const uint8_t* m = sites.row_bytes(i, r, scratch.data(), zero_is_site);
                    T* o = plane + (r - r0) * row_len;
                    T* p = prev.data() + (r - r0) * row_len;
                    found |= zero_is_site ? edt_forward_row<true>(m, p, o, row_len)
                                          : edt_forward_row<false>(m, p, o, row_len);
                }
            }
            // Backward sweep: prev holds the counts of plane i + 1.
            std::fill(prev.begin(), prev.end(), inf);
            for (int64_t i = n0 - 1; i >= 0; --i) {
                T* plane = out + i * inner + base;
                if (take_sqrt) edt_backward_row<true>(plane, prev.data(), width, s);
                else edt_backward_row<false>(plane, prev.data(), width, s);
            }
        }
        if (found) any_site.store(true, std::memory_order_relaxed);
    });
    return any_site.load();
}

// Envelope of one contiguous line that returns, at every q, the minimum over all sites of the
// rounded parabola values f[v] + fl(fl((q - v) * s)^2) (the surface metrics need that exact
// minimum, so that their nearest-neighbour path and this EDT path agree bit for bit). Rounded
// intersection abscissas can order two parabolas wrongly only when they (nearly) tie at an
// integer; such a parabola is kept in the envelope (popped only when the new intersection lies
// more than `tol` before the previous one) and every parabola whose interval reaches within
// 2 * tol of q is evaluated. tol bounds the abscissa rounding with a wide margin.
inline void edt_envelope_line_exact(const double* f, int64_t n, double s, double* d, int32_t* v, double* z) {
    const double inf = edt_inf<double>();
    const double s2 = s * s;
    double fmax = 0.0;
    for (int64_t q = 0; q < n; ++q)
        if (!edt_is_inf(f[q])) fmax = std::max(fmax, f[q]);
    const double nn = static_cast<double>(n);
    const double tol = 1e-12 * (fmax / s2 + nn * nn + 1.0);
    int64_t k = -1;
    for (int64_t q = 0; q < n; ++q) {
        const double fq = f[q];
        if (edt_is_inf(fq)) continue;
        if (fq == 0.0 && q > 0 && q + 1 < n && f[q - 1] == 0.0 && f[q + 1] == 0.0) continue;
        if (k < 0) {
            k = 0;
            v[0] = static_cast<int32_t>(q);
            z[0] = -inf;
            z[1] = inf;
            continue;
        }
        const double qq = static_cast<double>(q);
        const double fq_q = fq + s2 * qq * qq;
        double x;
        for (;;) {
            const double vv = static_cast<double>(v[k]);
            x = (fq_q - (f[v[k]] + s2 * vv * vv)) / (2.0 * s2 * (qq - vv));
            if (x < z[k] - tol) {
                --k;
                continue;
            }
            break;
        }
        ++k;
        v[k] = static_cast<int32_t>(q);
        z[k] = x;
        z[k + 1] = inf;
    }
    if (k < 0) {
        for (int64_t q = 0; q < n; ++q) d[q] = inf;
        return;
    }
    const int64_t top = k;
    auto value = [&](int64_t j, int64_t q) {
        const double t = static_cast<double>(q - v[j]) * s;
        return f[v[j]] + t * t;
    };
    k = 0;
    for (int64_t q = 0; q < n; ++q) {
        const double qq = static_cast<double>(q);
        while (k < top && z[k + 1] < qq) ++k;
        if (f[q] == 0.0) {
            d[q] = 0.0;
            continue;
        }
        double best = value(k, q);
        for (int64_t j = k + 1; j <= top && z[j] <= qq + 2 * tol; ++j) best = std::min(best, value(j, q));
        for (int64_t j = k - 1; j >= 0 && z[j + 1] >= qq - 2 * tol; --j) best = std::min(best, value(j, q));
        d[q] = best;
    }
}

template <typename T, bool Exact>
inline void edt_line(const T* f, int64_t n, T s, T* d, int32_t* v, T* z, bool take_sqrt) {
    if constexpr (Exact) {
        static_assert(std::is_same<T, double>::value, "the exact envelope is double only");
        edt_envelope_line_exact(f, n, s, d, v, z);
        if (take_sqrt)
            for (int64_t q = 0; q < n; ++q) d[q] = std::sqrt(d[q]);
    } else {
        edt_envelope_line<T>(f, 1, n, s, d, 1, v, z, 1, take_sqrt);
    }
}

// Envelope passes along axes first_axis..ndim-1 on the squared values in `out` (C-contiguous).
// Exact: the exact-minimum envelope above (double only; used by the surface metrics).
// float and double (not Exact) take the AVX2 path for groups of W lines where available; the
// remaining lines go through the scalar envelope (same results).
template <typename T, bool Exact = false>
void edt_envelope_axes(const EdtShape& sh, int first_axis, T* out, bool take_sqrt, bool parallel) {
    constexpr bool kLanes = (std::is_same<T, float>::value || std::is_same<T, double>::value) && !Exact;
    constexpr int64_t W = 32 / sizeof(T);
    const bool lanes = kLanes && edt_simd_active();
    const int last = sh.ndim - 1;
    for (int a = first_axis; a < last; ++a) {
        const int64_t n = sh.shape[a];
        if (n <= 1) continue;
        const int64_t outer = sh.prod(0, a), inner = sh.prod(a + 1, sh.ndim);
        const int64_t tiles = (inner + kLineTile - 1) / kLineTile;
        const T s = static_cast<T>(sh.spacing[a]);
        const bool simd = lanes && n < kMaxLaneLine;
        maybe_parallel(parallel, outer * tiles, 16, [&](int64_t begin, int64_t end, int) {
            std::vector<T> buf(kLineTile * n), res(kLineTile * n), z(n + 1);
            std::vector<int32_t> v(n);
            std::unique_ptr<EdtLaneScratch<T>> lane_scratch;
            if (simd) lane_scratch.reset(new EdtLaneScratch<T>(n));
            for (int64_t item = begin; item < end; ++item) {
                const int64_t o = item / tiles, j0 = (item % tiles) * kLineTile;
                const int64_t tw = std::min(kLineTile, inner - j0);
                T* base = out + o * n * inner + j0;
                int64_t t0 = 0;
                if constexpr (kLanes) {
                    if (simd)
                        for (; t0 + W <= tw; t0 += W) edt_lines_avx2(base + t0, n, inner, s, *lane_scratch);
                }
                if (t0 == tw) continue;
                // Scalar: the remaining lines gathered into a contiguous block.
                T* rest = base + t0;
                const int64_t rw = tw - t0;
                bool any_positive = false;
                for (int64_t q = 0; q < n; ++q) {
                    const T* src = rest + q * inner;
                    for (int64_t t = 0; t < rw; ++t) {
                        buf[t * n + q] = src[t];
                        any_positive |= src[t] != T(0);
                    }
                }
                if (!any_positive) continue;   // all sites: the lines are already final (zeros)
                for (int64_t t = 0; t < rw; ++t)
                    edt_line<T, Exact>(buf.data() + t * n, n, s, res.data() + t * n, v.data(), z.data(), false);
                for (int64_t q = 0; q < n; ++q) {
                    T* dst = rest + q * inner;
                    for (int64_t t = 0; t < rw; ++t) dst[t] = res[t * n + q];
                }
            }
        });
    }
    if (last < first_axis) return;
    const int64_t n = sh.shape[last];
    const int64_t rows = sh.prod(0, last);
    const T s = static_cast<T>(sh.spacing[last]);
    const bool simd = lanes && n < kMaxLaneLine;
    const int64_t groups = (rows + 7) / 8;   // 8 rows per item (one or two SIMD groups)
    maybe_parallel(parallel, groups, 8, [&](int64_t begin, int64_t end, int) {
        std::vector<T> f(n), z(n + 1);
        std::vector<int32_t> v(n);
        std::unique_ptr<EdtLaneScratch<T>> lane_scratch;
        if (simd) lane_scratch.reset(new EdtLaneScratch<T>(n));
        for (int64_t g = begin; g < end; ++g) {
            int64_t r = g * 8;
            const int64_t r_end = std::min(rows, r + 8);
            if constexpr (kLanes) {
                if (simd)
                    for (; r + W <= r_end; r += W) edt_rows_avx2(out + r * n, n, s, take_sqrt, *lane_scratch);
            }
            for (; r < r_end; ++r) {
                T* line = out + r * n;
                bool any_positive = false;
                for (int64_t q = 0; q < n; ++q) {
                    f[q] = line[q];
                    any_positive |= line[q] != T(0);
                }
                if (!any_positive) continue;   // zeros stay zeros (also after the square root)
                edt_line<T, Exact>(f.data(), n, s, line, v.data(), z.data(), take_sqrt);
            }
        }
    });
}

// Envelope passes along axes 1..ndim-1 of `out` (C-contiguous), after edt_first_axis. With
// enough planes along axis 0 for the threads, each thread takes whole planes and runs all their
// passes while the plane is in cache; otherwise every axis is split across the threads.
template <typename T, bool Exact = false>
void edt_other_axes(const EdtShape& sh, T* out, bool take_sqrt, bool parallel) {
    if (sh.ndim < 2) return;
    const int64_t planes = sh.shape[0], plane_size = sh.prod(1, sh.ndim);
    const int threads = parallel ? get_num_threads() : 1;
    if (sh.ndim < 3 || planes < 8 * int64_t(threads) || plane_size > (int64_t(1) << 22)) {
        edt_envelope_axes<T, Exact>(sh, 1, out, take_sqrt, parallel);
        return;
    }
    EdtShape plane;
    plane.ndim = sh.ndim - 1;
    for (int a = 1; a < sh.ndim; ++a) {
        plane.shape[a - 1] = sh.shape[a];
        plane.spacing[a - 1] = sh.spacing[a];
    }
    maybe_parallel(parallel, planes, 1, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i)
            edt_envelope_axes<T, Exact>(plane, 0, out + i * plane_size, take_sqrt, false);
    });
}

// Sites given as a C-contiguous byte buffer (nonzero = site) of the same shape.
struct ByteSites {
    const uint8_t* data;
    int64_t inner, row_len;
    const uint8_t* row_bytes(int64_t i, int64_t r, uint8_t*, bool& zero_is_site) const {
        zero_is_site = false;
        return data + i * inner + r * row_len;
    }
};

// Squared (or plain) distances of every element of a contiguous buffer to the nearest site.
// Returns false (and leaves +inf everywhere) when there is no site.
// Exact: every value is the exact minimum of the rounded squared distances (see
// edt_envelope_line_exact; T must be double).
template <typename T, bool Exact = false>
bool edt_from_sites(const EdtShape& sh, const uint8_t* sites, T* out, bool take_sqrt, bool parallel) {
    const int64_t inner = sh.prod(1, sh.ndim);
    const int64_t row_len = sh.ndim > 1 ? sh.shape[sh.ndim - 1] : 1;
    const bool any = edt_first_axis<T>(sh, ByteSites{sites, inner, row_len}, out, take_sqrt && sh.ndim == 1, parallel);
    if (!any) return false;
    edt_other_axes<T, Exact>(sh, out, take_sqrt, parallel);
    return true;
}

// ---------------------------------------------------------------------------- bindings API
// distance_transform: `mask` strided (any dtype, zero = site), `out` C-contiguous of `layout`
// (the physical axis order chosen by Python). With no zero element, every element gets its
// distance to the virtual point at index -1 along axis `virtual_axis` (scipy's behaviour).
void distance_transform(const Layout& layout, const ArrayArg& mask, const ArrayArg& out,
                        const std::vector<double>& spacing, bool squared, int virtual_axis);

}  // namespace medseg::cpu
