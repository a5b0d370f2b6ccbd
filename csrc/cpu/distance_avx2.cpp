// AVX2 path of the float32 EDT envelope passes (edt_other_axes in distance_cpu.h calls it first).
//
// The Felzenszwalb-Huttenlocher construction is a stack walk whose pops depend on the data, so a
// scalar line spends most of its time on mispredicted branches. Here 8 neighbouring lines advance
// in lockstep, one per lane: each lane keeps its own stack (entry k of lane l at [k * 8 + l]) and
// the top entry in registers, a new parabola is compared with all 8 tops at once, and only lanes
// that pop reload their tops (gathers). The evaluation walks the 8 envelopes the same way. Every
// lane performs exactly the scalar operations of edt_envelope_line (medseg/distance.h) in the same
// order, so both paths give bit-identical results (tests run both via edt_simd_mode).
//
// Lines of a strided axis are 8 adjacent elements of each row (one unaligned load per step);
// contiguous rows are transposed 8 at a time into lane order and back.
#include "distance_cpu.h"
#include "simd_switch.h"

#if defined(MEDSEG_HAVE_AVX2_PATHS)
#include <immintrin.h>
#endif

namespace medseg::cpu {

namespace {

SimdSwitch& edt_switch() {
    static SimdSwitch sw("MEDSEG_EDT_SIMD");
    return sw;
}

}  // namespace

bool edt_simd_active() { return edt_switch().active(); }
int edt_simd_mode(int mode) { return edt_switch().set_mode(mode); }

#if defined(MEDSEG_HAVE_AVX2_PATHS)

#define MSF_EDT_AVX2 __attribute__((target("avx2")))
#define MSF_EDT_AVX2_INLINE __attribute__((target("avx2"), always_inline)) inline

namespace {

MSF_EDT_AVX2_INLINE __m256i lane_index(__m256i k) {
    return _mm256_add_epi32(_mm256_slli_epi32(k, 3), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// edt_intersection, lane by lane.
MSF_EDT_AVX2_INLINE __m256 intersection(__m256 f_q, __m256 f_v, __m256 q, __m256 v, __m256 two_s2, __m256 half) {
    return _mm256_add_ps(_mm256_div_ps(_mm256_sub_ps(f_q, f_v), _mm256_mul_ps(two_s2, _mm256_sub_ps(q, v))),
                         _mm256_mul_ps(_mm256_add_ps(q, v), half));
}

// Envelope of the 8 interleaved lines f[q * 8 + l] (q < n); writes d[q * d_stride + l].
MSF_EDT_AVX2_INLINE void envelope8(const float* f, int64_t n, float s, float* d, int64_t d_stride,
                                   EdtLaneScratch& w, bool take_sqrt) {
    int32_t* V = w.v.data();
    float* G = w.g.data();   // f[v] of each entry
    float* Z = w.z.data();
    const __m256 inf = _mm256_set1_ps(edt_inf<float>()), minus_inf = _mm256_set1_ps(-edt_inf<float>());
    const __m256 zero = _mm256_setzero_ps(), big = _mm256_set1_ps(3.0e38f);
    const __m256 two_s2 = _mm256_set1_ps(2.0f * (s * s)), half = _mm256_set1_ps(0.5f), vs = _mm256_set1_ps(s);
    const __m256i zero_i = _mm256_setzero_si256(), one_i = _mm256_set1_epi32(1), all_ones = _mm256_set1_epi32(-1);
    for (int l = 0; l < 8; ++l) V[l] = 0;   // lanes without a finite value still index entry 0 below

    __m256i k = _mm256_set1_epi32(-1);                                  // top index per lane
    __m256 top_v = zero, top_g = zero, top_z = minus_inf;               // top entry per lane
    alignas(32) int32_t k_out[8];
    alignas(32) float z_out[8], g_out[8];
    for (int64_t q = 0; q < n; ++q) {
        const __m256 fq = _mm256_loadu_ps(f + q * 8);
        // Left out, as in the scalar code: +inf, and the interior of a run of zeros.
        __m256 skip = _mm256_cmp_ps(fq, big, _CMP_GT_OQ);
        if (q > 0 && q + 1 < n) {
            const __m256 run = _mm256_and_ps(
                _mm256_and_ps(_mm256_cmp_ps(fq, zero, _CMP_EQ_OQ),
                              _mm256_cmp_ps(_mm256_loadu_ps(f + (q - 1) * 8), zero, _CMP_EQ_OQ)),
                _mm256_cmp_ps(_mm256_loadu_ps(f + (q + 1) * 8), zero, _CMP_EQ_OQ));
            skip = _mm256_or_ps(skip, run);
        }
        const int take_bits = ~_mm256_movemask_ps(skip) & 0xff;
        if (take_bits == 0) continue;
        const __m256 take = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(skip), all_ones));
        const __m256 first = _mm256_and_ps(take, _mm256_castsi256_ps(_mm256_cmpgt_epi32(zero_i, k)));
        const __m256 grow = _mm256_andnot_ps(first, take);
        const __m256 qq = _mm256_set1_ps(static_cast<float>(q));
        // Intersection with the top parabola (edt_intersection); pop while it lies at or left of
        // the top's start.
        __m256 x = intersection(fq, top_g, qq, top_v, two_s2, half);
        __m256 pop = _mm256_and_ps(grow, _mm256_cmp_ps(x, top_z, _CMP_LE_OQ));
        while (_mm256_movemask_ps(pop)) {
            k = _mm256_add_epi32(k, _mm256_castps_si256(pop));   // -1 where popped (never below 0: z[0] = -inf)
            const __m256i at = lane_index(_mm256_max_epi32(k, zero_i));
            top_v = _mm256_blendv_ps(top_v, _mm256_cvtepi32_ps(_mm256_i32gather_epi32(V, at, 4)), pop);
            top_g = _mm256_blendv_ps(top_g, _mm256_i32gather_ps(G, at, 4), pop);
            top_z = _mm256_blendv_ps(top_z, _mm256_i32gather_ps(Z, at, 4), pop);
            x = intersection(fq, top_g, qq, top_v, two_s2, half);
            pop = _mm256_and_ps(grow, _mm256_cmp_ps(x, top_z, _CMP_LE_OQ));
        }
        // Push q: the first entry of a lane starts at -inf, later ones at the intersection.
        k = _mm256_add_epi32(k, _mm256_and_si256(_mm256_castps_si256(take), one_i));
        const __m256 start = _mm256_blendv_ps(x, minus_inf, first);
        top_v = _mm256_blendv_ps(top_v, qq, take);
        top_g = _mm256_blendv_ps(top_g, fq, take);
        top_z = _mm256_blendv_ps(top_z, start, take);
        _mm256_store_si256(reinterpret_cast<__m256i*>(k_out), k);
        _mm256_store_ps(z_out, start);
        _mm256_store_ps(g_out, fq);
        for (int bits = take_bits; bits; bits &= bits - 1) {   // no scatter in AVX2
            const int l = __builtin_ctz(bits);
            const int64_t at = int64_t(k_out[l]) * 8 + l;
            V[at] = static_cast<int32_t>(q);
            G[at] = g_out[l];
            Z[at] = z_out[l];
        }
    }

    // Evaluation: parabola j is the lowest on the integers q with z[j] < q <= z[j + 1].
    const __m256i top = k;
    const __m256 no_value = _mm256_castsi256_ps(_mm256_cmpgt_epi32(zero_i, top));
    const __m256i eight = _mm256_set1_epi32(8);
    __m256i j = zero_i, at = lane_index(zero_i);
    __m256i vj = _mm256_i32gather_epi32(V, at, 4);
    __m256 fv = _mm256_i32gather_ps(f, lane_index(vj), 4);
    __m256 right = _mm256_i32gather_ps(Z, _mm256_add_epi32(at, eight), 4);   // z[j + 1] (read only when j < top)
    for (int64_t q = 0; q < n; ++q) {
        const __m256 qf = _mm256_set1_ps(static_cast<float>(q));
        __m256 next = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, j)), _mm256_cmp_ps(right, qf, _CMP_LT_OQ));
        if (_mm256_movemask_ps(next)) {
            do {
                j = _mm256_sub_epi32(j, _mm256_castps_si256(next));
                at = lane_index(j);
                right = _mm256_i32gather_ps(Z, _mm256_add_epi32(at, eight), 4);
                next = _mm256_and_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(top, j)), _mm256_cmp_ps(right, qf, _CMP_LT_OQ));
            } while (_mm256_movemask_ps(next));
            vj = _mm256_i32gather_epi32(V, at, 4);
            fv = _mm256_i32gather_ps(f, lane_index(vj), 4);
        }
        const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_set1_epi32(static_cast<int32_t>(q)), vj)), vs);
        __m256 value = _mm256_add_ps(fv, _mm256_mul_ps(t, t));
        value = _mm256_blendv_ps(value, zero, _mm256_cmp_ps(_mm256_loadu_ps(f + q * 8), zero, _CMP_EQ_OQ));
        value = _mm256_blendv_ps(value, inf, no_value);
        if (take_sqrt) value = _mm256_sqrt_ps(value);
        _mm256_storeu_ps(d + q * d_stride, value);
    }
}

}  // namespace

MSF_EDT_AVX2 bool edt_lines8_avx2(float* base, int64_t n, int64_t stride, float s, EdtLaneScratch& w) {
    float* f = w.f.data();
    __m256 nonzero = _mm256_setzero_ps();
    for (int64_t q = 0; q < n; ++q) {
        const __m256 x = _mm256_loadu_ps(base + q * stride);
        _mm256_storeu_ps(f + q * 8, x);
        nonzero = _mm256_or_ps(nonzero, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ));
    }
    if (_mm256_movemask_ps(nonzero)) envelope8(f, n, s, base, stride, w, false);   // all sites: already final
    return true;
}

MSF_EDT_AVX2 bool edt_rows8_avx2(float* rows, int64_t n, float s, bool take_sqrt, EdtLaneScratch& w) {
    float* f = w.f.data();
    float* d = w.d.data();
    bool nonzero = false;
    for (int l = 0; l < 8; ++l) {
        const float* row = rows + l * n;
        for (int64_t q = 0; q < n; ++q) {
            f[q * 8 + l] = row[q];
            nonzero |= row[q] != 0.0f;
        }
    }
    if (!nonzero) return true;   // zeros stay zeros, also after the square root
    envelope8(f, n, s, d, 8, w, take_sqrt);
    for (int l = 0; l < 8; ++l) {
        float* row = rows + l * n;
        for (int64_t q = 0; q < n; ++q) row[q] = d[q * 8 + l];
    }
    return true;
}

#else  // no AVX2 path in this build

bool edt_lines8_avx2(float*, int64_t, int64_t, float, EdtLaneScratch&) { return false; }
bool edt_rows8_avx2(float*, int64_t, float, bool, EdtLaneScratch&) { return false; }

#endif

}  // namespace medseg::cpu
