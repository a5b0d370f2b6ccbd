// Shared definitions for CPU and CUDA kernels: host/device qualifiers, storage types for
// 16-bit floats, exact round-to-nearest-even conversions. No pybind11, no torch.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MSF_HD __host__ __device__
#define MSF_D __device__
#else
#define MSF_HD
#define MSF_D
#endif

namespace medseg {

// Bit-exact reinterpretation usable on host and device (memcpy is folded by both compilers).
template <typename To, typename From>
MSF_HD inline To bit_cast(const From& from) {
    static_assert(sizeof(To) == sizeof(From), "bit_cast size mismatch");
    To to;
    memcpy(&to, &from, sizeof(To));
    return to;
}

// IEEE binary16 and bfloat16 as plain 16-bit storage; arithmetic happens in float.
struct half_t { uint16_t bits; };
struct bfloat16_t { uint16_t bits; };

// float -> binary16, round to nearest even, NaN kept quiet, overflow to inf.
// Magic-number technique described by F. Giesen ("float->half variants", 2016).
MSF_HD inline uint16_t float_to_half_bits(float value) {
    uint32_t u = bit_cast<uint32_t>(value);
    const uint32_t sign = u & 0x80000000u;
    u ^= sign;
    uint16_t out;
    if (u >= 0x47800000u) {                 // |x| >= 65536 or inf/nan
        out = (u > 0x7f800000u) ? 0x7e00 : 0x7c00;
    } else if (u < 0x38800000u) {           // result is subnormal or zero
        // Adding 0.5 (as a float with exponent 126) aligns the binary16 subnormal ulp with
        // the float ulp, so the FPU performs the round-to-nearest-even for us.
        const float magic = bit_cast<float>(0x3f000000u);
        const float shifted = bit_cast<float>(u) + magic;
        out = static_cast<uint16_t>(bit_cast<uint32_t>(shifted) - 0x3f000000u);
    } else {
        const uint32_t mantissa_odd = (u >> 13) & 1u;
        u += 0xc8000fffu;                   // rebias exponent (15 - 127) << 23, plus rounding 0xfff
        u += mantissa_odd;
        out = static_cast<uint16_t>(u >> 13);
    }
    return static_cast<uint16_t>(out | (sign >> 16));
}

MSF_HD inline float half_bits_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t em = h & 0x7fffu;
    uint32_t bits;
    if (em >= 0x7c00u) {                    // inf / nan
        bits = sign | 0x7f800000u | ((em & 0x3ffu) << 13);
    } else if (em >= 0x0400u) {             // normal
        bits = sign | ((em << 13) + 0x38000000u);
    } else {                                // subnormal or zero: em * 2^-24 is exact in float
        const float v = static_cast<float>(em) * 5.9604644775390625e-08f;
        bits = sign | bit_cast<uint32_t>(v);
    }
    return bit_cast<float>(bits);
}

MSF_HD inline uint16_t float_to_bf16_bits(float value) {
    uint32_t u = bit_cast<uint32_t>(value);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

MSF_HD inline float bf16_bits_to_float(uint16_t b) {
    return bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

// Loading any storage type as a compute type, and storing a float/double result.
template <typename C, typename T> MSF_HD inline C load_as(const T& v) { return static_cast<C>(v); }
template <typename C> MSF_HD inline C load_as(const half_t& v) { return static_cast<C>(half_bits_to_float(v.bits)); }
template <typename C> MSF_HD inline C load_as(const bfloat16_t& v) { return static_cast<C>(bf16_bits_to_float(v.bits)); }
template <typename C> MSF_HD inline C load_as(const bool& v) { return v ? C(1) : C(0); }

template <typename T, typename C> MSF_HD inline T store_from(C v) { return static_cast<T>(v); }
template <> MSF_HD inline half_t store_from<half_t, float>(float v) { return half_t{float_to_half_bits(v)}; }
template <> MSF_HD inline half_t store_from<half_t, double>(double v) { return half_t{float_to_half_bits(static_cast<float>(v))}; }
template <> MSF_HD inline bfloat16_t store_from<bfloat16_t, float>(float v) { return bfloat16_t{float_to_bf16_bits(v)}; }
template <> MSF_HD inline bfloat16_t store_from<bfloat16_t, double>(double v) { return bfloat16_t{float_to_bf16_bits(static_cast<float>(v))}; }

// Runtime element types shared by every kernel family; Python passes their names.
enum class DType : int {
    Bool, UInt8, Int8, UInt16, Int16, UInt32, Int32, UInt64, Int64, Float16, BFloat16, Float32, Float64
};

}  // namespace medseg
