// Typed arguments of the intensity kernels (pybind11 only; no kernel logic): one Window per
// linear window instead of a positional 5-tuple. Bound once here and registered by both _C and
// _C_cuda, module_local like the loss types (see losses_convert.h).
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "medseg/intensity.h"

namespace medseg::bindings {

namespace py = pybind11;

inline std::string window_repr(const WindowParams& w) {
    auto real = [](double v) { return py::repr(py::float_(v)).cast<std::string>(); };   // Python's shortest form
    return "Window(lo=" + real(w.lo) + ", hi=" + real(w.hi) + ", center=" + real(w.center) +
           ", scale=" + real(w.scale) + ", offset=" + real(w.offset) + ")";
}

inline void bind_intensity_types(py::module_& m) {
    // Immutable: the derived fields (output range, float clamps) are filled by make_window.
    py::class_<WindowParams>(m, "Window", py::module_local(),
                             "y = (clamp(x, lo, hi) - center) * scale + offset; keyword arguments only.")
        .def(py::init(&make_window), py::kw_only(), py::arg("lo"), py::arg("hi"), py::arg("center"),
             py::arg("scale"), py::arg("offset"))
        .def_readonly("lo", &WindowParams::lo)
        .def_readonly("hi", &WindowParams::hi)
        .def_readonly("center", &WindowParams::center)
        .def_readonly("scale", &WindowParams::scale)
        .def_readonly("offset", &WindowParams::offset)
        .def("__repr__", &window_repr);
}

}  // namespace medseg::bindings
