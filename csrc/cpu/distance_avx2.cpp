// AVX2 path of the float32 EDT envelope passes (edt_other_axes in distance_cpu.h calls it first).
//
// The Felzenszwalb-Huttenlocher construction is a stack walk whose pops depend on the data, so a
// scalar line spends most of its time on mispredicted branches. Here 8 neighbouring lines advance
// in lockstep, one per lane: a new parabola is compared with the 8 stack tops (kept in registers)
// at once, and only lanes that pop reload their tops (gathers). Every lane performs exactly the
// scalar operations of edt_envelope_line (medseg/distance.h) in the same order, so both paths
// give bit-identical results (tests run both via edt_simd_mode).
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

MSF_EDT_AVX2_INLINE __m256i blend_i(__m256i a, __m256i b, __m256 mask) {   // mask ? b : a
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), mask));
}

// edt_intersection, lane by lane.
MSF_EDT_AVX2_INLINE __m256 intersection(__m256 f_q, __m256 f_v, __m256 q, __m256 v, __m256 two_s2, __m256 half) {
    return _mm256_add_ps(_mm256_div_ps(_mm256_sub_ps(f_q, f_v), _mm256_mul_ps(two_s2, _mm256_sub_ps(q, v))),
                         _mm256_mul_ps(_mm256_add_ps(q, v), half));
}

// Envelope of the 8 interleaved lines f[q * 8 + l] (q < n); writes d[q * d_stride + l].
//
// The stack of a lane is a linked list through the elements: below[q] is the entry under q
// and start[q] the abscissa where q's parabola starts, both stored for all 8 lanes at once at
// [q * 8 + l] (a lane that does not push q leaves an entry nobody links to), so pushes are
// plain vector stores. Only the top is kept in registers; a pop follows `below` (gathers).
// The evaluation walks the list from the top down, q from n - 1 to 0: the parabola for q is
// the first entry with start < q, the same one the scalar forward walk picks (starts are
// strictly increasing).
MSF_EDT_AVX2_INLINE void envelope8(const float* f, int64_t n, float s, float* d, int64_t d_stride,
                                   EdtLaneScratch& w, bool take_sqrt) {
    int32_t* below = w.v.data();
    float* start = w.z.data();
    const __m256 inf = _mm256_set1_ps(edt_inf<float>()), minus_inf = _mm256_set1_ps(-edt_inf<float>());
    const __m256 zero = _mm256_setzero_ps(), big = _mm256_set1_ps(3.0e38f);
    const __m256 two_s2 = _mm256_set1_ps(2.0f * (s * s)), half = _mm256_set1_ps(0.5f), vs = _mm256_set1_ps(s);
    const __m256i zero_i = _mm256_setzero_si256(), all_ones = _mm256_set1_epi32(-1);

    // The two upper entries of each stack live in registers: a pop promotes the second at once
    // and refills it from memory (gathers) off the critical path of the next comparison.
    __m256i top = all_ones, second = all_ones;                 // element indices, -1: none
    __m256 top_q = zero, top_f = zero, top_start = minus_inf;  // position, value, start
    __m256 second_q = zero, second_f = zero, second_start = minus_inf;
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
        if (_mm256_movemask_ps(skip) == 0xff) continue;
        const __m256 take = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(skip), all_ones));
        const __m256 empty = _mm256_castsi256_ps(_mm256_cmpgt_epi32(zero_i, top));
        const __m256 grow = _mm256_andnot_ps(empty, take);
        const __m256 qq = _mm256_set1_ps(static_cast<float>(q));
        // Intersection with the top parabola (edt_intersection); pop while it lies at or left of
        // the top's start (never the first entry: its start is -inf, so popped lanes have a second).
        __m256 x = intersection(fq, top_f, qq, top_q, two_s2, half);
        __m256 pop = _mm256_and_ps(grow, _mm256_cmp_ps(x, top_start, _CMP_LE_OQ));
        while (_mm256_movemask_ps(pop)) {
            top = blend_i(top, second, pop);
            top_q = _mm256_blendv_ps(top_q, second_q, pop);
            top_f = _mm256_blendv_ps(top_f, second_f, pop);
            top_start = _mm256_blendv_ps(top_start, second_start, pop);
            second = _mm256_mask_i32gather_epi32(second, below, lane_index(top), _mm256_castps_si256(pop), 4);
            const __m256i at = lane_index(_mm256_max_epi32(second, zero_i));   // -1: below the bottom, never read
            second_q = _mm256_blendv_ps(second_q, _mm256_cvtepi32_ps(second), pop);
            second_f = _mm256_mask_i32gather_ps(second_f, f, at, pop, 4);
            second_start = _mm256_mask_i32gather_ps(second_start, start, at, pop, 4);
            x = intersection(fq, top_f, qq, top_q, two_s2, half);
            pop = _mm256_and_ps(grow, _mm256_cmp_ps(x, top_start, _CMP_LE_OQ));
        }
        // Push q: the first entry of a lane starts at -inf, later ones at the intersection.
        const __m256 begins = _mm256_blendv_ps(x, minus_inf, empty);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(below + q * 8), top);
        _mm256_storeu_ps(start + q * 8, begins);
        second = blend_i(second, top, take);
        second_q = _mm256_blendv_ps(second_q, top_q, take);
        second_f = _mm256_blendv_ps(second_f, top_f, take);
        second_start = _mm256_blendv_ps(second_start, top_start, take);
        top = blend_i(top, _mm256_set1_epi32(static_cast<int32_t>(q)), take);
        top_q = _mm256_blendv_ps(top_q, qq, take);
        top_f = _mm256_blendv_ps(top_f, fq, take);
        top_start = _mm256_blendv_ps(top_start, begins, take);
    }

    // Evaluation, right to left. Lanes without any finite value give +inf.
    const __m256 no_value = _mm256_castsi256_ps(_mm256_cmpgt_epi32(zero_i, top));
    __m256i cur = _mm256_max_epi32(top, zero_i);
    __m256 cur_start = _mm256_blendv_ps(top_start, minus_inf, no_value);
    __m256 cur_f = _mm256_i32gather_ps(f, lane_index(cur), 4);
    for (int64_t q = n - 1; q >= 0; --q) {
        const __m256 qf = _mm256_set1_ps(static_cast<float>(q));
        __m256 down = _mm256_cmp_ps(cur_start, qf, _CMP_GE_OQ);   // q <= start: q lies left of cur
        if (_mm256_movemask_ps(down)) {
            do {
                cur = _mm256_mask_i32gather_epi32(cur, below, lane_index(cur), _mm256_castps_si256(down), 4);
                cur_start = _mm256_mask_i32gather_ps(cur_start, start, lane_index(cur), down, 4);
                down = _mm256_cmp_ps(cur_start, qf, _CMP_GE_OQ);
            } while (_mm256_movemask_ps(down));
            cur_f = _mm256_i32gather_ps(f, lane_index(cur), 4);
        }
        const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_set1_epi32(static_cast<int32_t>(q)), cur)), vs);
        __m256 value = _mm256_add_ps(cur_f, _mm256_mul_ps(t, t));
        value = _mm256_blendv_ps(value, zero, _mm256_cmp_ps(_mm256_loadu_ps(f + q * 8), zero, _CMP_EQ_OQ));
        value = _mm256_blendv_ps(value, inf, no_value);
        if (take_sqrt) value = _mm256_sqrt_ps(value);
        _mm256_storeu_ps(d + q * d_stride, value);
    }
}

// In-register transpose of 8 rows of 8 floats.
MSF_EDT_AVX2_INLINE void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5,
                                    __m256& r6, __m256& r7) {
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
    r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
    r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
    r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
    r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
    r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
    r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
    r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Columns q0..q0+7 of 8 rows (row l at src + l * src_row) become 8 lane groups of dst
// (dst[(q0 + i) * 8 + l]); dst_row = 8 for rows -> lanes, or the reverse with strides swapped.
MSF_EDT_AVX2_INLINE void transpose_block(const float* src, int64_t src_row, float* dst, int64_t dst_row) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + src_row), r2 = _mm256_loadu_ps(src + 2 * src_row),
           r3 = _mm256_loadu_ps(src + 3 * src_row), r4 = _mm256_loadu_ps(src + 4 * src_row),
           r5 = _mm256_loadu_ps(src + 5 * src_row), r6 = _mm256_loadu_ps(src + 6 * src_row),
           r7 = _mm256_loadu_ps(src + 7 * src_row);
    transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
    _mm256_storeu_ps(dst, r0);
    _mm256_storeu_ps(dst + dst_row, r1);
    _mm256_storeu_ps(dst + 2 * dst_row, r2);
    _mm256_storeu_ps(dst + 3 * dst_row, r3);
    _mm256_storeu_ps(dst + 4 * dst_row, r4);
    _mm256_storeu_ps(dst + 5 * dst_row, r5);
    _mm256_storeu_ps(dst + 6 * dst_row, r6);
    _mm256_storeu_ps(dst + 7 * dst_row, r7);
}

}  // namespace

MSF_EDT_AVX2 void edt_lines8_avx2(float* base, int64_t n, int64_t stride, float s, EdtLaneScratch& w) {
    float* f = w.f.data();
    __m256 nonzero = _mm256_setzero_ps();
    for (int64_t q = 0; q < n; ++q) {
        const __m256 x = _mm256_loadu_ps(base + q * stride);
        _mm256_storeu_ps(f + q * 8, x);
        nonzero = _mm256_or_ps(nonzero, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ));
    }
    if (_mm256_movemask_ps(nonzero)) envelope8(f, n, s, base, stride, w, false);   // all sites: already final
}

MSF_EDT_AVX2 void edt_rows8_avx2(float* rows, int64_t n, float s, bool take_sqrt, EdtLaneScratch& w) {
    float* f = w.f.data();
    float* d = w.d.data();
    const int64_t blocks = n / 8 * 8;
    for (int64_t q = 0; q < blocks; q += 8) transpose_block(rows + q, n, f + q * 8, 8);
    for (int64_t q = blocks; q < n; ++q)
        for (int l = 0; l < 8; ++l) f[q * 8 + l] = rows[l * n + q];
    __m256 nonzero = _mm256_setzero_ps();
    for (int64_t q = 0; q < n; ++q)
        nonzero = _mm256_or_ps(nonzero, _mm256_cmp_ps(_mm256_loadu_ps(f + q * 8), _mm256_setzero_ps(), _CMP_NEQ_UQ));
    if (!_mm256_movemask_ps(nonzero)) return;   // zeros stay zeros, also after the square root
    envelope8(f, n, s, d, 8, w, take_sqrt);
    for (int64_t q = 0; q < blocks; q += 8) transpose_block(d + q * 8, 8, rows + q, n);
    for (int64_t q = blocks; q < n; ++q)
        for (int l = 0; l < 8; ++l) rows[l * n + q] = d[q * 8 + l];
}

#else  // no AVX2 path in this build

void edt_lines8_avx2(float*, int64_t, int64_t, float, EdtLaneScratch&) {}
void edt_rows8_avx2(float*, int64_t, float, bool, EdtLaneScratch&) {}

#endif

}  // namespace medseg::cpu
