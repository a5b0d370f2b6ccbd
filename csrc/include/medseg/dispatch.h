// Runtime dtype -> template instantiation, in one place for every kernel family.
#pragma once

#include <stdexcept>
#include <string>

#include "medseg/common.h"

namespace medseg {

template <typename T> struct TypeTag { using type = T; };

DType parse_dtype(const std::string& name);
const char* dtype_name(DType dtype);

// Calls fn(TypeTag<T>{}) for the storage type T of `dtype`.
template <typename Fn>
decltype(auto) dispatch_all(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::Bool: return fn(TypeTag<bool>{});
        case DType::UInt8: return fn(TypeTag<uint8_t>{});
        case DType::Int8: return fn(TypeTag<int8_t>{});
        case DType::UInt16: return fn(TypeTag<uint16_t>{});
        case DType::Int16: return fn(TypeTag<int16_t>{});
        case DType::UInt32: return fn(TypeTag<uint32_t>{});
        case DType::Int32: return fn(TypeTag<int32_t>{});
        case DType::UInt64: return fn(TypeTag<uint64_t>{});
        case DType::Int64: return fn(TypeTag<int64_t>{});
        case DType::Float16: return fn(TypeTag<half_t>{});
        case DType::BFloat16: return fn(TypeTag<bfloat16_t>{});
        case DType::Float32: return fn(TypeTag<float>{});
        case DType::Float64: return fn(TypeTag<double>{});
    }
    throw std::invalid_argument("unsupported dtype");
}

// Bool and integer types only (label maps, masks); `what` names the argument in the error.
template <typename Fn>
decltype(auto) dispatch_integer(const char* what, DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::Bool: return fn(TypeTag<bool>{});
        case DType::UInt8: return fn(TypeTag<uint8_t>{});
        case DType::Int8: return fn(TypeTag<int8_t>{});
        case DType::UInt16: return fn(TypeTag<uint16_t>{});
        case DType::Int16: return fn(TypeTag<int16_t>{});
        case DType::UInt32: return fn(TypeTag<uint32_t>{});
        case DType::Int32: return fn(TypeTag<int32_t>{});
        case DType::UInt64: return fn(TypeTag<uint64_t>{});
        case DType::Int64: return fn(TypeTag<int64_t>{});
        default: break;
    }
    throw std::invalid_argument(std::string(what) + " must have an integer or bool dtype, got " + dtype_name(dtype));
}

// Output types of the intensity kernels (float32, float16, bfloat16, float64).
template <typename Fn>
decltype(auto) dispatch_float_out(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::Float32: return fn(TypeTag<float>{});
        case DType::Float16: return fn(TypeTag<half_t>{});
        case DType::BFloat16: return fn(TypeTag<bfloat16_t>{});
        case DType::Float64: return fn(TypeTag<double>{});
        default: break;
    }
    throw std::invalid_argument(std::string("unsupported output dtype ") + dtype_name(dtype));
}

// Loss logits dtypes (float16, bfloat16, float32, float64) -> (storage type, compute type).
template <typename Fn>
decltype(auto) dispatch_logits(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::Float32: return fn(TypeTag<float>{}, TypeTag<float>{});
        case DType::Float16: return fn(TypeTag<half_t>{}, TypeTag<float>{});
        case DType::BFloat16: return fn(TypeTag<bfloat16_t>{}, TypeTag<float>{});
        case DType::Float64: return fn(TypeTag<double>{}, TypeTag<double>{});
        default: break;
    }
    throw std::invalid_argument(std::string("unsupported logits dtype ") + dtype_name(dtype));
}

// Loss target dtypes: integer labels or one-hot channels.
template <typename Fn>
decltype(auto) dispatch_target(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::Bool: return fn(TypeTag<uint8_t>{});
        case DType::UInt8: return fn(TypeTag<uint8_t>{});
        case DType::Int8: return fn(TypeTag<int8_t>{});
        case DType::Int16: return fn(TypeTag<int16_t>{});
        case DType::Int32: return fn(TypeTag<int32_t>{});
        case DType::Int64: return fn(TypeTag<int64_t>{});
        case DType::Float16: return fn(TypeTag<half_t>{});
        case DType::BFloat16: return fn(TypeTag<bfloat16_t>{});
        case DType::Float32: return fn(TypeTag<float>{});
        case DType::Float64: return fn(TypeTag<double>{});
        default: break;
    }
    throw std::invalid_argument(std::string("unsupported target dtype ") + dtype_name(dtype));
}

// Label outputs of the sliding-window argmax (uint8, int16, int32, int64).
template <typename Fn>
decltype(auto) dispatch_label_out(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::UInt8: return fn(TypeTag<uint8_t>{});
        case DType::Int16: return fn(TypeTag<int16_t>{});
        case DType::Int32: return fn(TypeTag<int32_t>{});
        case DType::Int64: return fn(TypeTag<int64_t>{});
        default: break;
    }
    throw std::invalid_argument(std::string("unsupported label dtype ") + dtype_name(dtype));
}

}  // namespace medseg
