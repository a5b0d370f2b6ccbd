// Typed arguments of the resampling kernels (pybind11 only; no kernel logic): one ResampleSpec
// with named fields instead of the positional (in_shape, out_shape, orders, late_axis, clip_axis).
// Bound once here and registered by both _C and _C_cuda, module_local like the loss types.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "convert.h"
#include "medseg/resample.h"

namespace medseg::bindings {

namespace py = pybind11;

using Shape4 = std::array<int64_t, 4>;
using Orders4 = std::array<int, 4>;

inline Layout layout4(const Shape4& shape) { return make_layout(std::vector<int64_t>(shape.begin(), shape.end())); }

template <typename T, size_t N>
std::array<T, N> array_of(const T (&a)[N]) {
    std::array<T, N> r{};
    for (size_t i = 0; i < N; ++i) r[i] = a[i];
    return r;
}

inline void bind_resample_types(py::module_& m) {
    py::class_<ResampleSpec>(m, "ResampleSpec", py::module_local(),
                             "Frames and per-axis orders of one resample call; keyword arguments only.")
        .def(py::init([](const Shape4& in_shape, const Shape4& out_shape, const Orders4& orders, int late_axis,
                         int clip_axis) {
                 ResampleSpec spec;
                 for (int a = 0; a < kResampleDims; ++a) {
                     spec.in_shape[a] = in_shape[a];
                     spec.out_shape[a] = out_shape[a];
                     spec.order[a] = orders[a];
                 }
                 spec.late_axis = late_axis;
                 spec.clip_axis = clip_axis;
                 return spec;
             }),
             py::kw_only(), py::arg("in_shape"), py::arg("out_shape"), py::arg("orders"), py::arg("late_axis") = -1,
             py::arg("clip_axis") = -1)
        .def_property_readonly("in_shape", [](const ResampleSpec& s) { return array_of(s.in_shape); },
                               "(channels, n0, n1, n2)")
        .def_property_readonly("out_shape", [](const ResampleSpec& s) { return array_of(s.out_shape); })
        .def_property_readonly("orders", [](const ResampleSpec& s) { return array_of(s.order); },
                               "spline order per axis; [0] unused")
        .def_readonly("late_axis", &ResampleSpec::late_axis,
                      "1..3: resampled after every other axis (nnU-Net's separate z); -1: none")
        .def_readonly("clip_axis", &ResampleSpec::clip_axis,
                      "-1: no clipping; 0: to each channel's input range; 1..3: per (channel, slice)");
}

}  // namespace medseg::bindings
