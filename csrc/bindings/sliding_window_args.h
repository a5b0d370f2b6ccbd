// Typed arguments of the sliding-window kernels (pybind11 only; no kernel logic), shared by the CPU
// and CUDA bindings: the window grid (SwGrid), the accumulator region (SwRegion) and the importance
// map (SwImportance) are bound here once, with keyword constructors and named fields.
//
// The types are module-local (py::module_local), like the loss types (losses_convert.h): _C and
// _C_cuda each register their own copy and neither imports the other (an instance made by one is
// still accepted by the other, pybind11 loading it through its own module). Addresses (origin
// lists, importance map) are integers owned by Python; Python caches the structs with the plan.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "convert.h"
#include "medseg/sliding_window.h"

namespace medseg::bindings {

namespace py = pybind11;

using Int3 = std::array<int64_t, 3>;
using Ptr3 = std::array<uintptr_t, 3>;

inline Int3 to_int3(const int64_t (&a)[3]) { return {a[0], a[1], a[2]}; }
inline void from_int3(int64_t (&dst)[3], const Int3& src) {
    for (int i = 0; i < 3; ++i) dst[i] = src[i];
}

inline void check_grid(const SwGrid& g) {
    for (int a = 0; a < 3; ++a) {
        if (g.image[a] < 1 || g.patch[a] < 1 || g.count[a] < 1)
            throw std::invalid_argument("SwGrid image, patch and count must be >= 1 on every axis, got axis " +
                                        std::to_string(a) + ": image=" + std::to_string(g.image[a]) +
                                        ", patch=" + std::to_string(g.patch[a]) +
                                        ", count=" + std::to_string(g.count[a]));
        if (g.origins[a] == nullptr) throw std::invalid_argument("SwGrid origins must not be null");
    }
}

inline void check_region(const SwRegion& r) {
    if (r.wrap[2] != 0) throw std::invalid_argument("SwRegion wrap[2] must be 0 (the fastest axis cannot be a ring)");
    for (int a = 0; a < 3; ++a)
        if (r.shape[a] < 0 || r.wrap[a] < 0)
            throw std::invalid_argument("SwRegion shape and wrap must be >= 0, got axis " + std::to_string(a) +
                                        ": shape=" + std::to_string(r.shape[a]) + ", wrap=" + std::to_string(r.wrap[a]));
}

inline void bind_sliding_window_types(py::module_& m) {
    py::class_<SwGrid>(m, "SwGrid", py::module_local(),
                       "Window grid of one image: extents (z, y, x) and the addresses of the per-axis int64 origin "
                       "lists (host memory for _C, device memory for _C_cuda).")
        .def(py::init([](const Int3& image, const Int3& patch, const Int3& count, const Ptr3& origins) {
                 SwGrid g{};
                 from_int3(g.image, image);
                 from_int3(g.patch, patch);
                 from_int3(g.count, count);
                 for (int a = 0; a < 3; ++a) g.origins[a] = reinterpret_cast<const int64_t*>(origins[a]);
                 check_grid(g);
                 return g;
             }),
             py::kw_only(), py::arg("image"), py::arg("patch"), py::arg("count"), py::arg("origins"))
        .def_property_readonly("image", [](const SwGrid& g) { return to_int3(g.image); })
        .def_property_readonly("patch", [](const SwGrid& g) { return to_int3(g.patch); })
        .def_property_readonly("count", [](const SwGrid& g) { return to_int3(g.count); })
        .def_property_readonly("origins",
                               [](const SwGrid& g) {
                                   Ptr3 p;
                                   for (int a = 0; a < 3; ++a) p[a] = reinterpret_cast<uintptr_t>(g.origins[a]);
                                   return p;
                               })
        .def_property_readonly("windows", &SwGrid::windows);

    py::class_<SwRegion>(m, "SwRegion", py::module_local(),
                         "Accumulator geometry: batch x channels over the image box [origin, origin + shape), a ring "
                         "along axes with wrap > 0; assign_first / divide_last are the in-order streaming flags.")
        .def(py::init([](int64_t batch, int64_t channels, const Int3& origin, const Int3& shape, const Int3& wrap,
                         bool assign_first, bool divide_last) {
                 SwRegion r{};
                 r.batch = batch;
                 r.channels = channels;
                 from_int3(r.origin, origin);
                 from_int3(r.shape, shape);
                 from_int3(r.wrap, wrap);
                 r.assign_first = assign_first ? 1 : 0;
                 r.divide_last = divide_last ? 1 : 0;
                 check_region(r);
                 return r;
             }),
             py::kw_only(), py::arg("batch"), py::arg("channels"), py::arg("origin"), py::arg("shape"),
             py::arg("wrap") = Int3{0, 0, 0}, py::arg("assign_first") = false, py::arg("divide_last") = false)
        .def_readonly("batch", &SwRegion::batch)
        .def_readonly("channels", &SwRegion::channels)
        .def_property_readonly("origin", [](const SwRegion& r) { return to_int3(r.origin); })
        .def_property_readonly("shape", [](const SwRegion& r) { return to_int3(r.shape); })
        .def_property_readonly("wrap", [](const SwRegion& r) { return to_int3(r.wrap); })
        .def_property_readonly("assign_first", [](const SwRegion& r) { return r.assign_first != 0; })
        .def_property_readonly("divide_last", [](const SwRegion& r) { return r.divide_last != 0; });

    py::class_<SwImportance>(m, "SwImportance", py::module_local(),
                             "Importance map: address of the contiguous float32 map and, optionally (CPU), of its "
                             "separable factors scale (pz * py) and row (px) with the floor.")
        .def(py::init([](uintptr_t map, uintptr_t scale, uintptr_t row, float floor) {
                 if (map == 0) throw std::invalid_argument("SwImportance map must not be null");
                 if ((scale == 0) != (row == 0))
                     throw std::invalid_argument("SwImportance scale and row must be given together");
                 SwImportance imp;
                 imp.map = reinterpret_cast<const float*>(map);
                 imp.scale = reinterpret_cast<const float*>(scale);
                 imp.row = reinterpret_cast<const float*>(row);
                 imp.floor = floor;
                 return imp;
             }),
             py::kw_only(), py::arg("map"), py::arg("scale") = 0, py::arg("row") = 0, py::arg("floor") = 0.0f)
        .def_property_readonly("map", [](const SwImportance& i) { return reinterpret_cast<uintptr_t>(i.map); })
        .def_property_readonly("scale", [](const SwImportance& i) { return reinterpret_cast<uintptr_t>(i.scale); })
        .def_property_readonly("row", [](const SwImportance& i) { return reinterpret_cast<uintptr_t>(i.row); })
        .def_readonly("floor", &SwImportance::floor);
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
