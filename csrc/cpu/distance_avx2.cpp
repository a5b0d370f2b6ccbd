// AVX2 path of the EDT envelope passes (edt_other_axes in distance_cpu.h calls it first), for
// float32 (8 lanes) and float64 (4 lanes) results.
//
// The Felzenszwalb-Huttenlocher construction is a stack walk whose pops depend on the data, so a
// scalar line spends most of its time on mispredicted branches. Here W neighbouring lines advance
// in lockstep, one per lane: a new parabola is compared with the W stack tops (kept in registers)
// at once, and only lanes that pop reload their tops (gathers). Every lane performs exactly the
// scalar operations of edt_envelope_line (medseg/distance.h) in the same order, so both paths
// give bit-identical results (tests run both via edt_simd_mode).
//
// Lines of a strided axis are W adjacent elements of each row (one unaligned load per step);
// contiguous rows are transposed W at a time into lane order and back.
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

// Lane types: 8 float lanes or 4 double lanes per 256-bit register, int32 element indices with
// them (an __m256i or an __m128i). Real-valued masks are all-ones lanes, as the compares give.
struct F8 {
    using R = float;
    using V = __m256;
    using I = __m256i;
    static constexpr int W = 8;
    static constexpr int kAll = 0xff;
    static MSF_EDT_AVX2_INLINE V load(const R* p) { return _mm256_loadu_ps(p); }
    static MSF_EDT_AVX2_INLINE void store(R* p, V v) { _mm256_storeu_ps(p, v); }
    static MSF_EDT_AVX2_INLINE V set1(R x) { return _mm256_set1_ps(x); }
    static MSF_EDT_AVX2_INLINE V add(V a, V b) { return _mm256_add_ps(a, b); }
    static MSF_EDT_AVX2_INLINE V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    static MSF_EDT_AVX2_INLINE V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static MSF_EDT_AVX2_INLINE V div(V a, V b) { return _mm256_div_ps(a, b); }
    static MSF_EDT_AVX2_INLINE V sqrt(V a) { return _mm256_sqrt_ps(a); }
    static MSF_EDT_AVX2_INLINE V gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    static MSF_EDT_AVX2_INLINE V ge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
    static MSF_EDT_AVX2_INLINE V le(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
    static MSF_EDT_AVX2_INLINE V eq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
    static MSF_EDT_AVX2_INLINE V ne(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
    static MSF_EDT_AVX2_INLINE V and_(V a, V b) { return _mm256_and_ps(a, b); }
    static MSF_EDT_AVX2_INLINE V or_(V a, V b) { return _mm256_or_ps(a, b); }
    static MSF_EDT_AVX2_INLINE V andnot(V a, V b) { return _mm256_andnot_ps(a, b); }   // ~a & b
    static MSF_EDT_AVX2_INLINE V not_(V a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(-1))); }
    static MSF_EDT_AVX2_INLINE int bits(V m) { return _mm256_movemask_ps(m); }
    static MSF_EDT_AVX2_INLINE V blend(V a, V b, V m) { return _mm256_blendv_ps(a, b, m); }   // m ? b : a
    static MSF_EDT_AVX2_INLINE I iset1(int32_t x) { return _mm256_set1_epi32(x); }
    static MSF_EDT_AVX2_INLINE V negative(I k) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_setzero_si256(), k)); }
    static MSF_EDT_AVX2_INLINE I clamp0(I k) { return _mm256_max_epi32(k, _mm256_setzero_si256()); }
    static MSF_EDT_AVX2_INLINE I iblend(I a, I b, V m) {
        return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), m));
    }
    static MSF_EDT_AVX2_INLINE I lane_index(I k) {   // k * 8 + lane
        return _mm256_add_epi32(_mm256_slli_epi32(k, 3), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static MSF_EDT_AVX2_INLINE V real(I k) { return _mm256_cvtepi32_ps(k); }
    static MSF_EDT_AVX2_INLINE I isub(I a, I b) { return _mm256_sub_epi32(a, b); }
    static MSF_EDT_AVX2_INLINE void istore(int32_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
    static MSF_EDT_AVX2_INLINE I igather(I src, const int32_t* base, I at, V m) {
        return _mm256_mask_i32gather_epi32(src, base, at, _mm256_castps_si256(m), 4);
    }
    static MSF_EDT_AVX2_INLINE V gather(const R* base, I at) { return _mm256_i32gather_ps(base, at, 4); }
    static MSF_EDT_AVX2_INLINE V gather(V src, const R* base, I at, V m) { return _mm256_mask_i32gather_ps(src, base, at, m, 4); }
};

struct D4 {
    using R = double;
    using V = __m256d;
    using I = __m128i;
    static constexpr int W = 4;
    static constexpr int kAll = 0xf;
    // Four 64-bit lane masks <-> four 32-bit lane masks.
    static MSF_EDT_AVX2_INLINE I narrow(V m) {
        return _mm256_castsi256_si128(
            _mm256_permutevar8x32_epi32(_mm256_castpd_si256(m), _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
    }
    static MSF_EDT_AVX2_INLINE V widen(I m) { return _mm256_castsi256_pd(_mm256_cvtepi32_epi64(m)); }
    static MSF_EDT_AVX2_INLINE V load(const R* p) { return _mm256_loadu_pd(p); }
    static MSF_EDT_AVX2_INLINE void store(R* p, V v) { _mm256_storeu_pd(p, v); }
    static MSF_EDT_AVX2_INLINE V set1(R x) { return _mm256_set1_pd(x); }
    static MSF_EDT_AVX2_INLINE V add(V a, V b) { return _mm256_add_pd(a, b); }
    static MSF_EDT_AVX2_INLINE V sub(V a, V b) { return _mm256_sub_pd(a, b); }
    static MSF_EDT_AVX2_INLINE V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static MSF_EDT_AVX2_INLINE V div(V a, V b) { return _mm256_div_pd(a, b); }
    static MSF_EDT_AVX2_INLINE V sqrt(V a) { return _mm256_sqrt_pd(a); }
    static MSF_EDT_AVX2_INLINE V gt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
    static MSF_EDT_AVX2_INLINE V ge(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
    static MSF_EDT_AVX2_INLINE V le(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
    static MSF_EDT_AVX2_INLINE V eq(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
    static MSF_EDT_AVX2_INLINE V ne(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_NEQ_UQ); }
    static MSF_EDT_AVX2_INLINE V and_(V a, V b) { return _mm256_and_pd(a, b); }
    static MSF_EDT_AVX2_INLINE V or_(V a, V b) { return _mm256_or_pd(a, b); }
    static MSF_EDT_AVX2_INLINE V andnot(V a, V b) { return _mm256_andnot_pd(a, b); }
    static MSF_EDT_AVX2_INLINE V not_(V a) { return _mm256_xor_pd(a, _mm256_castsi256_pd(_mm256_set1_epi32(-1))); }
    static MSF_EDT_AVX2_INLINE int bits(V m) { return _mm256_movemask_pd(m); }
    static MSF_EDT_AVX2_INLINE V blend(V a, V b, V m) { return _mm256_blendv_pd(a, b, m); }
    static MSF_EDT_AVX2_INLINE I iset1(int32_t x) { return _mm_set1_epi32(x); }
    static MSF_EDT_AVX2_INLINE V negative(I k) { return widen(_mm_cmpgt_epi32(_mm_setzero_si128(), k)); }
    static MSF_EDT_AVX2_INLINE I clamp0(I k) { return _mm_max_epi32(k, _mm_setzero_si128()); }
    static MSF_EDT_AVX2_INLINE I iblend(I a, I b, V m) { return _mm_blendv_epi8(a, b, narrow(m)); }
    static MSF_EDT_AVX2_INLINE I lane_index(I k) {   // k * 4 + lane
        return _mm_add_epi32(_mm_slli_epi32(k, 2), _mm_setr_epi32(0, 1, 2, 3));
    }
    static MSF_EDT_AVX2_INLINE V real(I k) { return _mm256_cvtepi32_pd(k); }
    static MSF_EDT_AVX2_INLINE I isub(I a, I b) { return _mm_sub_epi32(a, b); }
    static MSF_EDT_AVX2_INLINE void istore(int32_t* p, I v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
    static MSF_EDT_AVX2_INLINE I igather(I src, const int32_t* base, I at, V m) {
        return _mm_mask_i32gather_epi32(src, base, at, narrow(m), 4);
    }
    static MSF_EDT_AVX2_INLINE V gather(const R* base, I at) {   // (the unmasked intrinsic warns on GCC 12)
        const V all = _mm256_castsi256_pd(_mm256_set1_epi32(-1));
        return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), base, at, all, 8);
    }
    static MSF_EDT_AVX2_INLINE V gather(V src, const R* base, I at, V m) { return _mm256_mask_i32gather_pd(src, base, at, m, 8); }
};

// edt_intersection, lane by lane.
template <class L>
MSF_EDT_AVX2_INLINE typename L::V intersection(typename L::V f_q, typename L::V f_v, typename L::V q, typename L::V v,
                                               typename L::V two_s2, typename L::V half) {
    return L::add(L::div(L::sub(f_q, f_v), L::mul(two_s2, L::sub(q, v))), L::mul(L::add(q, v), half));
}

// Envelope of the W interleaved lines f[q * W + l] (q < n); writes d[q * d_stride + l].
//
// The stack of a lane is a list linked through the elements: below[q] is the entry under q and
// start[q] the abscissa where q's parabola starts, both stored for all lanes at once at
// [q * W + l] (a lane that does not push q leaves an entry nobody links to), so pushes are plain
// vector stores. The evaluation walks the list from the top down, q from n - 1 to 0: the
// parabola for q is the first entry with start < q, the same one the scalar forward walk picks
// (starts are strictly increasing).
template <class L>
MSF_EDT_AVX2_INLINE void envelope_lanes(const typename L::R* f, int64_t n, typename L::R s, typename L::R* d,
                                        int64_t d_stride, EdtLaneScratch<typename L::R>& w, bool take_sqrt) {
    using R = typename L::R;
    using V = typename L::V;
    using I = typename L::I;
    constexpr int W = L::W;
    int32_t* below = w.v.data();
    R* start = w.z.data();
    const V inf = L::set1(edt_inf<R>()), minus_inf = L::set1(-edt_inf<R>());
    const V zero = L::set1(R(0)), big = L::set1(R(3.0e38));
    const V two_s2 = L::set1(R(2) * (s * s)), half = L::set1(R(0.5)), vs = L::set1(s);

    // The two upper entries of each stack live in registers: a pop promotes the second at once
    // and refills it from memory (gathers) off the critical path of the next comparison.
    I top = L::iset1(-1), second = L::iset1(-1);               // element indices, -1: none
    V top_q = zero, top_f = zero, top_start = minus_inf;       // position, value, start
    V second_q = zero, second_f = zero, second_start = minus_inf;
    for (int64_t q = 0; q < n; ++q) {
        const V fq = L::load(f + q * W);
        // Left out, as in the scalar code: +inf, and the interior of a run of zeros.
        V skip = L::gt(fq, big);
        if (q > 0 && q + 1 < n)
            skip = L::or_(skip, L::and_(L::and_(L::eq(fq, zero), L::eq(L::load(f + (q - 1) * W), zero)),
                                        L::eq(L::load(f + (q + 1) * W), zero)));
        if (L::bits(skip) == L::kAll) continue;
        const V take = L::not_(skip);
        const V empty = L::negative(top);
        const V grow = L::andnot(empty, take);
        const V qq = L::set1(static_cast<R>(q));
        // Intersection with the top parabola; pop while it lies at or left of the top's start
        // (never the first entry: its start is -inf, so popped lanes have a second).
        V x = intersection<L>(fq, top_f, qq, top_q, two_s2, half);
        V pop = L::and_(grow, L::le(x, top_start));
        while (L::bits(pop)) {
            top = L::iblend(top, second, pop);
            top_q = L::blend(top_q, second_q, pop);
            top_f = L::blend(top_f, second_f, pop);
            top_start = L::blend(top_start, second_start, pop);
            second = L::igather(second, below, L::lane_index(top), pop);
            const I at = L::lane_index(L::clamp0(second));   // -1: below the bottom, never read
            second_q = L::blend(second_q, L::real(second), pop);
            second_f = L::gather(second_f, f, at, pop);
            second_start = L::gather(second_start, start, at, pop);
            x = intersection<L>(fq, top_f, qq, top_q, two_s2, half);
            pop = L::and_(grow, L::le(x, top_start));
        }
        // Push q: the first entry of a lane starts at -inf, later ones at the intersection.
        const V begins = L::blend(x, minus_inf, empty);
        L::istore(below + q * W, top);
        L::store(start + q * W, begins);
        second = L::iblend(second, top, take);
        second_q = L::blend(second_q, top_q, take);
        second_f = L::blend(second_f, top_f, take);
        second_start = L::blend(second_start, top_start, take);
        top = L::iblend(top, L::iset1(static_cast<int32_t>(q)), take);
        top_q = L::blend(top_q, qq, take);
        top_f = L::blend(top_f, fq, take);
        top_start = L::blend(top_start, begins, take);
    }

    // Evaluation, right to left. Lanes without any finite value give +inf.
    const V no_value = L::negative(top);
    I cur = L::clamp0(top);
    V cur_start = L::blend(top_start, minus_inf, no_value);
    V cur_f = L::gather(f, L::lane_index(cur));
    for (int64_t q = n - 1; q >= 0; --q) {
        const V qf = L::set1(static_cast<R>(q));
        V down = L::ge(cur_start, qf);   // q <= start: q lies left of cur
        if (L::bits(down)) {
            do {
                cur = L::igather(cur, below, L::lane_index(cur), down);
                cur_start = L::gather(cur_start, start, L::lane_index(cur), down);
                down = L::ge(cur_start, qf);
            } while (L::bits(down));
            cur_f = L::gather(f, L::lane_index(cur));
        }
        const V t = L::mul(L::real(L::isub(L::iset1(static_cast<int32_t>(q)), cur)), vs);
        V value = L::add(cur_f, L::mul(t, t));
        value = L::blend(value, zero, L::eq(L::load(f + q * W), zero));
        value = L::blend(value, inf, no_value);
        if (take_sqrt) value = L::sqrt(value);
        L::store(d + q * d_stride, value);
    }
}

// In-register transposes: W rows of W values (row l at src + l * src_row) to W columns
// (column i at dst + i * dst_row).
MSF_EDT_AVX2_INLINE void transpose_block(const float* src, int64_t src_row, float* dst, int64_t dst_row) {
    __m256 r[8];
    for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(src + l * src_row);
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + dst_row, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dst_row, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dst_row, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dst_row, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dst_row, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dst_row, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dst_row, _mm256_permute2f128_ps(u3, u7, 0x31));
}

MSF_EDT_AVX2_INLINE void transpose_block(const double* src, int64_t src_row, double* dst, int64_t dst_row) {
    const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + src_row);
    const __m256d r2 = _mm256_loadu_pd(src + 2 * src_row), r3 = _mm256_loadu_pd(src + 3 * src_row);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + dst_row, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * dst_row, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * dst_row, _mm256_permute2f128_pd(t1, t3, 0x31));
}

template <class L>
MSF_EDT_AVX2_INLINE void lines(typename L::R* base, int64_t n, int64_t stride, typename L::R s,
                               EdtLaneScratch<typename L::R>& w) {
    using V = typename L::V;
    constexpr int W = L::W;
    typename L::R* f = w.f.data();
    const V zero = L::set1(0);
    V nonzero = zero;
    for (int64_t q = 0; q < n; ++q) {
        const V x = L::load(base + q * stride);
        L::store(f + q * W, x);
        nonzero = L::or_(nonzero, L::ne(x, zero));
    }
    if (L::bits(nonzero)) envelope_lanes<L>(f, n, s, base, stride, w, false);   // all sites: already final
}

template <class L>
MSF_EDT_AVX2_INLINE void rows(typename L::R* r, int64_t n, typename L::R s, bool take_sqrt,
                              EdtLaneScratch<typename L::R>& w) {
    using V = typename L::V;
    constexpr int W = L::W;
    typename L::R* f = w.f.data();
    typename L::R* d = w.d.data();
    const int64_t blocks = n / W * W;
    for (int64_t q = 0; q < blocks; q += W) transpose_block(r + q, n, f + q * W, W);
    for (int64_t q = blocks; q < n; ++q)
        for (int l = 0; l < W; ++l) f[q * W + l] = r[l * n + q];
    const V zero = L::set1(0);
    V nonzero = zero;
    for (int64_t q = 0; q < n; ++q) nonzero = L::or_(nonzero, L::ne(L::load(f + q * W), zero));
    if (!L::bits(nonzero)) return;   // zeros stay zeros, also after the square root
    envelope_lanes<L>(f, n, s, d, W, w, take_sqrt);
    for (int64_t q = 0; q < blocks; q += W) transpose_block(d + q * W, W, r + q, n);
    for (int64_t q = blocks; q < n; ++q)
        for (int l = 0; l < W; ++l) r[l * n + q] = d[q * W + l];
}

}  // namespace

MSF_EDT_AVX2 void edt_lines_avx2(float* base, int64_t n, int64_t stride, float s, EdtLaneScratch<float>& w) {
    lines<F8>(base, n, stride, s, w);
}
MSF_EDT_AVX2 void edt_lines_avx2(double* base, int64_t n, int64_t stride, double s, EdtLaneScratch<double>& w) {
    lines<D4>(base, n, stride, s, w);
}
MSF_EDT_AVX2 void edt_rows_avx2(float* r, int64_t n, float s, bool take_sqrt, EdtLaneScratch<float>& w) {
    rows<F8>(r, n, s, take_sqrt, w);
}
MSF_EDT_AVX2 void edt_rows_avx2(double* r, int64_t n, double s, bool take_sqrt, EdtLaneScratch<double>& w) {
    rows<D4>(r, n, s, take_sqrt, w);
}

#else  // no AVX2 path in this build

void edt_lines_avx2(float*, int64_t, int64_t, float, EdtLaneScratch<float>&) {}
void edt_lines_avx2(double*, int64_t, int64_t, double, EdtLaneScratch<double>&) {}
void edt_rows_avx2(float*, int64_t, float, bool, EdtLaneScratch<float>&) {}
void edt_rows_avx2(double*, int64_t, double, bool, EdtLaneScratch<double>&) {}

#endif

}  // namespace medseg::cpu
