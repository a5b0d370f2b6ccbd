// Names of the runtime dtypes as Python spells them (numpy / torch names).
#include <stdexcept>
#include <string>

#include "medseg/dispatch.h"

namespace medseg {

DType parse_dtype(const std::string& name) {
    if (name == "bool") return DType::Bool;
    if (name == "uint8") return DType::UInt8;
    if (name == "int8") return DType::Int8;
    if (name == "uint16") return DType::UInt16;
    if (name == "int16") return DType::Int16;
    if (name == "uint32") return DType::UInt32;
    if (name == "int32") return DType::Int32;
    if (name == "uint64") return DType::UInt64;
    if (name == "int64") return DType::Int64;
    if (name == "float16") return DType::Float16;
    if (name == "bfloat16") return DType::BFloat16;
    if (name == "float32") return DType::Float32;
    if (name == "float64") return DType::Float64;
    throw std::invalid_argument("unsupported dtype '" + name + "'");
}

const char* dtype_name(DType dtype) {
    switch (dtype) {
        case DType::Bool: return "bool";
        case DType::UInt8: return "uint8";
        case DType::Int8: return "int8";
        case DType::UInt16: return "uint16";
        case DType::Int16: return "int16";
        case DType::UInt32: return "uint32";
        case DType::Int32: return "int32";
        case DType::UInt64: return "uint64";
        case DType::Int64: return "int64";
        case DType::Float16: return "float16";
        case DType::BFloat16: return "bfloat16";
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
    }
    return "unknown";
}

}  // namespace medseg
