// Exact Euclidean distance transform, the per-line core shared by the CPU and CUDA drivers.
//
// Separable algorithm of Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled
// Functions", Theory of Computing 8 (2012): the squared distance along axis 0 is computed
// from the binary sites by two sweeps, then every further axis takes the lower envelope of
// the parabolas f(q) + (s * (p - q))^2 rooted at the previous pass' values. Anisotropic
// spacing enters as the per-axis factor s. Values are squared distances until the last pass.
//
// Rounding follows scipy.ndimage.distance_transform_edt: the term of each axis is
// (delta * s)^2 and terms are summed in axis order, ((t0 + t1) + t2), so isotropic or
// integer spacings give bit-identical results and other spacings agree to an ulp or two.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "medseg/common.h"

namespace medseg {

template <typename T> MSF_HD inline T edt_inf() { return std::numeric_limits<T>::infinity(); }
template <typename T> MSF_HD inline bool edt_is_inf(T v) { return v > static_cast<T>(3.0e38); }

// Abscissa where the parabolas f_q + s^2 (x - q)^2 and f_v + s^2 (x - v)^2 (v < q) intersect,
// written as the offset from their midpoint. The textbook form ((f_q + s^2 q^2) - (f_v + s^2 v^2))
// / (2 s^2 (q - v)) cancels terms of size s^2 n^2: in float32 on a 1000-voxel line their rounding
// moves the abscissa by ~0.1 voxel and can drop a parabola from the envelope.
template <typename T>
MSF_HD inline T edt_intersection(T f_q, T f_v, T q, T v, T two_s2) {
    return (f_q - f_v) / (two_s2 * (q - v)) + (q + v) * T(0.5);
}

// Lower envelope of parabolas along one line.
//   f: n input values (squared distances so far, +inf where no site yet), read with stride fs.
//   d: n outputs, written with stride ds (must not alias f).
//   v, z: scratch of n and n + 1 elements (read/written with stride ws, for coalesced GPU access).
//   s: spacing of this axis. take_sqrt: write distances instead of squared distances.
// Returns false when the line has no finite value (then d is all +inf).
template <typename T>
MSF_HD inline bool edt_envelope_line(const T* f, int64_t fs, int64_t n, T s, T* d, int64_t ds, int32_t* v, T* z,
                                     int64_t ws, bool take_sqrt) {
    const T inf = edt_inf<T>();
    const T two_s2 = T(2) * (s * s);
    int64_t k = -1;
    for (int64_t q = 0; q < n; ++q) {
        const T fq = f[q * fs];
        if (edt_is_inf(fq)) continue;
        // Inside a run of zeros only the run's ends matter: for any point outside the run they
        // are strictly closer than its interior, and inside the run the result is 0 anyway.
        if (fq == T(0) && q > 0 && q + 1 < n && f[(q - 1) * fs] == T(0) && f[(q + 1) * fs] == T(0)) continue;
        if (k < 0) {
            k = 0;
            v[0] = static_cast<int32_t>(q);
            z[0] = -inf;
            z[ws] = inf;
            continue;
        }
        const T qq = static_cast<T>(q);
        T x;
        for (;;) {
            const int32_t vk = v[k * ws];
            const T vv = static_cast<T>(vk);
            x = edt_intersection<T>(fq, f[vk * fs], qq, vv, two_s2);
            // z[0] = -inf, so the envelope never loses its first parabola.
            if (x <= z[k * ws]) {
                --k;
                continue;
            }
            break;
        }
        ++k;
        v[k * ws] = static_cast<int32_t>(q);
        z[k * ws] = x;
        z[(k + 1) * ws] = inf;
    }
    if (k < 0) {
        for (int64_t q = 0; q < n; ++q) d[q * ds] = inf;
        return false;
    }
    // Parabola j is the lowest for the integers q in (z[j], z[j + 1]] (the first from 0, the last
    // up to n - 1): one branch-free, vectorisable loop per envelope segment instead of a search
    // per q. Sites keep 0 (interior zeros of a run were left out of the envelope).
    const int64_t top = k;
    int64_t q = 0;
    for (int64_t j = 0; j <= top && q < n; ++j) {
        const T right = z[(j + 1) * ws];
        int64_t q_end = n;
        // Truncation is floor for right >= 0 (no libm call on baseline x86-64).
        if (j < top && right < static_cast<T>(n - 1)) q_end = right < T(0) ? 0 : static_cast<int64_t>(right) + 1;
        const int32_t vj = v[j * ws];
        const T fv = f[vj * fs];
        for (; q < q_end; ++q) {
            const T t = static_cast<T>(q - vj) * s;
            const T value = fv + t * t;
            d[q * ds] = f[q * fs] == T(0) ? T(0) : value;
        }
    }
    if (take_sqrt)
        for (int64_t i = 0; i < n; ++i) d[i * ds] = sqrt(d[i * ds]);
    return true;
}

// First pass helper: distance in voxels to the nearest site along the line, given the running
// count from the previous voxel (forward or backward sweep). +inf until a site is seen.
template <typename T>
MSF_HD inline T edt_sweep_step(bool is_site, T previous) {
    return is_site ? T(0) : previous + T(1);
}

// (count * s)^2, or +inf (inf * s stays inf); optionally the square root.
template <typename T>
MSF_HD inline T edt_first_axis_value(T count, T s, bool take_sqrt) {
    const T t = count * s;
    return take_sqrt ? t : t * t;
}

}  // namespace medseg
