// Conversion of the sliding-window descriptors built by medseg_fast.sliding_window (grid and
// region tuples) into the kernel structs; shared by the CPU and CUDA bindings.
#pragma once

#include <stdexcept>
#include <tuple>
#include <vector>

#include "convert.h"
#include "medseg/sliding_window.h"

namespace medseg::bindings {

// (image[3], patch[3], count[3], origin pointers[3]); the pointers address int64 arrays owned by Python.
using GridDesc = std::tuple<std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>, std::vector<uintptr_t>>;
// (batch, channels, origin[3], shape[3], wrap[3], assign_first, divide_last)
using RegionDesc =
    std::tuple<int64_t, int64_t, std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>, bool, bool>;

inline SwGrid make_grid(const GridDesc& desc) {
    const auto& [image, patch, count, ptrs] = desc;
    if (image.size() != 3 || patch.size() != 3 || count.size() != 3 || ptrs.size() != 3)
        throw std::invalid_argument("sliding-window grid descriptors must have 3 axes");
    SwGrid g;
    for (int a = 0; a < 3; ++a) {
        g.image[a] = image[a];
        g.patch[a] = patch[a];
        g.count[a] = count[a];
        g.origins[a] = reinterpret_cast<const int64_t*>(ptrs[a]);
    }
    return g;
}

inline SwRegion make_region(const RegionDesc& desc) {
    const auto& [batch, channels, origin, shape, wrap, assign_first, divide_last] = desc;
    if (origin.size() != 3 || shape.size() != 3 || wrap.size() != 3)
        throw std::invalid_argument("region descriptors must have 3 axes");
    if (wrap[2] != 0) throw std::invalid_argument("the fastest axis cannot be a ring");
    SwRegion r;
    r.assign_first = assign_first ? 1 : 0;
    r.divide_last = divide_last ? 1 : 0;
    r.batch = batch;
    r.channels = channels;
    for (int a = 0; a < 3; ++a) {
        r.origin[a] = origin[a];
        r.shape[a] = shape[a];
        r.wrap[a] = wrap[a];
    }
    return r;
}

// An array of any rank up to kMaxDims (the strides list gives the rank).
inline ArrayArg make_strided(const ArrayDesc& desc) {
    ArrayArg arg;
    arg.ptr = std::get<0>(desc);
    if (arg.ptr == 0) return arg;
    arg.dtype = parse_dtype(std::get<1>(desc));
    const auto& strides = std::get<2>(desc);
    if (strides.size() > static_cast<size_t>(kMaxDims)) throw std::invalid_argument("too many strides");
    for (size_t i = 0; i < strides.size(); ++i) arg.strides.s[i] = strides[i];
    return arg;
}

}  // namespace medseg::bindings
