// Conversion of the plain Python descriptors (shape list, (ptr, dtype, strides) tuples) that
// medseg_fast._backend builds into the kernel structs. pybind11 only; no kernel logic.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "medseg/array_arg.h"
#include "medseg/dispatch.h"

namespace medseg::bindings {

using ArrayDesc = std::tuple<uintptr_t, std::string, std::vector<int64_t>>;

inline Layout make_layout(const std::vector<int64_t>& shape) {
    if (shape.size() > static_cast<size_t>(kMaxDims))
        throw std::invalid_argument("at most " + std::to_string(kMaxDims) + " dimensions are supported after collapsing");
    Layout layout;
    layout.ndim = static_cast<int>(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) layout.shape[i] = shape[i];
    return layout;
}

inline ArrayArg make_array(const ArrayDesc& desc, const Layout& layout) {
    ArrayArg arg;
    arg.ptr = std::get<0>(desc);
    if (arg.ptr == 0) return arg;   // an absent optional array (mask)
    arg.dtype = parse_dtype(std::get<1>(desc));
    const auto& strides = std::get<2>(desc);
    if (static_cast<int>(strides.size()) != layout.ndim)
        throw std::invalid_argument("strides and shape disagree in length");
    for (size_t i = 0; i < strides.size(); ++i) arg.strides.s[i] = strides[i];
    return arg;
}

}  // namespace medseg::bindings
