// AVX2+FMA versions of the float elementary functions of medseg/losses.h (fast_exp, fast_log,
// fast_log1p01, sigmoid), 8 lanes at a time: the same algorithms, range reductions, special values
// and selects, with the polynomials evaluated by fused multiply-adds (fewer operations, one
// rounding per step; the scalar code keeps separate roundings, -ffp-contract=off). Lanes may differ
// from the scalar results in the last bit; tests/test_losses_simd.py bounds both against float64
// (about 1 ulp) and checks the special values.
//
// Only for translation units that call these from functions compiled with MSF_AVX2 and entered
// after a run-time CPU check (losses_avx2.cpp); x86-64 GCC/Clang only.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MEDSEG_NO_SIMD)
#define MEDSEG_HAVE_AVX2_LOSSES 1
#include <immintrin.h>

#include <cstdint>

#define MSF_AVX2 __attribute__((target("avx2,fma")))
#define MSF_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace medseg::cpu::simd {

using vf = __m256;
using vi = __m256i;

// Lane masks. GCC: vector-extension compares and `m ? a : b` (one vcmpps + one vblendvps; the
// blendv intrinsic on a compare result costs an extra integer compare there). Others: intrinsics.
#if defined(__GNUC__) && !defined(__clang__)
typedef int32_t vm __attribute__((vector_size(32)));
MSF_AVX2_INLINE vm vlt(vf a, vf b) { return a < b; }
MSF_AVX2_INLINE vm vgt(vf a, vf b) { return a > b; }
MSF_AVX2_INLINE vm vge(vf a, vf b) { return a >= b; }
MSF_AVX2_INLINE vm veq(vf a, vf b) { return a == b; }
MSF_AVX2_INLINE vm vnan(vf a) { return a != a; }
MSF_AVX2_INLINE vm vor(vm a, vm b) { return a | b; }
MSF_AVX2_INLINE vm vmask(vi a) { return reinterpret_cast<vm>(a); }
MSF_AVX2_INLINE vf vsel(vm m, vf a, vf b) { return m ? a : b; }   // mask ? a : b
#else
using vm = __m256;
MSF_AVX2_INLINE vm vlt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
MSF_AVX2_INLINE vm vgt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
MSF_AVX2_INLINE vm vge(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
MSF_AVX2_INLINE vm veq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
MSF_AVX2_INLINE vm vnan(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
MSF_AVX2_INLINE vm vor(vm a, vm b) { return _mm256_or_ps(a, b); }
MSF_AVX2_INLINE vm vmask(vi a) { return _mm256_castsi256_ps(a); }
MSF_AVX2_INLINE vf vsel(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
#endif

MSF_AVX2_INLINE vf vset(float a) { return _mm256_set1_ps(a); }
MSF_AVX2_INLINE vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
MSF_AVX2_INLINE vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
MSF_AVX2_INLINE vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
MSF_AVX2_INLINE vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
MSF_AVX2_INLINE vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }    // a b + c, one rounding
MSF_AVX2_INLINE vf vfms(vf a, vf b, vf c) { return _mm256_fmsub_ps(a, b, c); }    // a b - c
MSF_AVX2_INLINE vf vfnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a b
MSF_AVX2_INLINE vf vneg(vf a) { return _mm256_xor_ps(a, vset(-0.0f)); }
// Same as the scalar `a > b ? a : b` (NaN in a gives b).
MSF_AVX2_INLINE vf vmax(vf a, vf b) { return vsel(vgt(a, b), a, b); }
MSF_AVX2_INLINE vf vpow2i(vi n) {   // 2^n for n in [-126, 127]
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

// fast_exp of medseg/losses.h.
MSF_AVX2_INLINE vf vexp(vf x) {
    // maxps/minps give their second operand for NaN: a NaN lane computes exp(-104) and is
    // restored below; other lanes clamp as the scalar selects do.
    vf xc = _mm256_max_ps(x, vset(-104.0f));
    xc = _mm256_min_ps(xc, vset(89.0f));
    // round to nearest even, as (v + 1.5 * 2^23) - 1.5 * 2^23 in the scalar code (|v| < 2^22)
    const vf n = _mm256_round_ps(vmul(xc, vset(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = vfnma(n, vset(0.693359375f), xc);
    r = vfma(n, vset(2.12194440e-4f), r);
    const vf z = vmul(r, r);
    vf y = vset(1.9875691500e-4f);
    y = vfma(y, r, vset(1.3981999507e-3f));
    y = vfma(y, r, vset(8.3334519073e-3f));
    y = vfma(y, r, vset(4.1665795894e-2f));
    y = vfma(y, r, vset(1.6666665459e-1f));
    y = vfma(y, r, vset(5.0000001201e-1f));
    y = vadd(vfma(y, z, r), vset(1.0f));
    const vi ni = _mm256_cvttps_epi32(n);
    const vi n1 = _mm256_srai_epi32(ni, 1);
    const vi n2 = _mm256_sub_epi32(ni, n1);
    const vf out = vmul(vmul(y, vpow2i(n1)), vpow2i(n2));
    return vsel(vnan(x), x, out);
}

// fast_log of medseg/losses.h for positive, normal, finite x (e.g. 1 + exp(-|x|)): the same
// operations without the special-value selects.
MSF_AVX2_INLINE vf vlog_core(vf xs, vf e_adjust) {
    const vi bits = _mm256_castps_si256(xs);
    const vi ebits = _mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff));
    vf e = _mm256_cvtepi32_ps(_mm256_sub_epi32(ebits, _mm256_set1_epi32(126)));
    e = vsub(e, e_adjust);
    vf m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                               _mm256_set1_epi32(0x3f000000)));
    const vm low = vlt(m, vset(0.707106781186547524f));
    e = vsel(low, vsub(e, vset(1.0f)), e);
    m = vsel(low, vsub(vadd(m, m), vset(1.0f)), vsub(m, vset(1.0f)));
    const vf z = vmul(m, m);
    vf y = vset(7.0376836292e-2f);
    y = vfms(y, m, vset(1.1514610310e-1f));
    y = vfma(y, m, vset(1.1676998740e-1f));
    y = vfms(y, m, vset(1.2420140846e-1f));
    y = vfma(y, m, vset(1.4249322787e-1f));
    y = vfms(y, m, vset(1.6668057665e-1f));
    y = vfma(y, m, vset(2.0000714765e-1f));
    y = vfms(y, m, vset(2.4999993993e-1f));
    y = vfma(y, m, vset(3.3333331174e-1f));
    y = vmul(vmul(y, m), z);
    y = vfnma(vset(2.12194440e-4f), e, y);
    y = vfnma(vset(0.5f), z, y);
    return vfma(vset(0.693359375f), e, vadd(m, y));
}

// fast_log of medseg/losses.h.
MSF_AVX2_INLINE vf vlog(vf x) {
    const vm sub = vlt(x, vset(1.17549435e-38f));
    const vf xs = vsel(sub, vmul(x, vset(8388608.0f)), x);
    // e - 23 for subnormal inputs: (e - 0) is e exactly, so one subtraction serves both
    vf out = vlog_core(xs, vsel(sub, vset(23.0f), vset(0.0f)));
    const vf inf = vset(__builtin_inff());
    out = vsel(veq(x, inf), inf, out);
    out = vsel(veq(x, vset(0.0f)), vneg(inf), out);
    out = vsel(vor(vlt(x, vset(0.0f)), vnan(x)), vset(__builtin_nanf("")), out);
    return out;
}

// fast_log1p01 of medseg/losses.h: log(1 + e) for e in [0, 1].
MSF_AVX2_INLINE vf vlog1p01(vf e) {
    const vf s2 = vdiv(vadd(e, e), vadd(vset(2.0f), e));
    const vf z = vmul(vset(0.25f), vmul(s2, s2));
    vf y = vset(0.0769230769f);
    y = vfma(y, z, vset(0.0909090909f));
    y = vfma(y, z, vset(0.111111111f));
    y = vfma(y, z, vset(0.142857143f));
    y = vfma(y, z, vset(0.2f));
    y = vfma(y, z, vset(0.333333333f));
    y = vmul(y, z);
    return vfma(s2, y, s2);
}

// sigmoid of medseg/losses.h.
MSF_AVX2_INLINE vf vsigmoid(vf x) {
    const vm nonneg = vge(x, vset(0.0f));
    const vf e = vexp(vsel(nonneg, vneg(x), x));
    const vf r = vdiv(vset(1.0f), vadd(vset(1.0f), e));
    return vsel(nonneg, r, vmul(e, r));
}

// Sum of the 8 lanes in double, in a fixed order.
MSF_AVX2_INLINE double vsum_double(vf a) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    const __m256d s = _mm256_add_pd(lo, hi);
    const __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));
}

}  // namespace medseg::cpu::simd

#endif
