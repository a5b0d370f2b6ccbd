// Bindings of the CPU intensity kernels. Validation happens in Python (medseg_fast.intensity).
#include <pybind11/numpy.h>

#include "../cpu/intensity_cpu.h"
#include "convert.h"
#include "intensity_args.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_intensity(py::module_& m) {
    bind_intensity_types(m);
    m.def("_window_simd_mode", &cpu::window_simd_mode, py::arg("mode") = -1,
          "Internal: 0 forces the portable window loop, 1 uses AVX2 where available, -1 queries; returns 1 "
          "when AVX2 is in use.");
    m.def(
        "window_apply",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& out, int64_t out_window_stride,
           const std::vector<WindowParams>& windows, const ArrayDesc& mask, double outside_value) {
            const Layout layout = make_layout(shape);
            cpu::window_apply(layout, make_array(in, layout), make_array(out, layout), out_window_stride,
                              windows, make_array(mask, layout), outside_value);
        },
        py::arg("shape"), py::arg("x"), py::arg("out"), py::arg("out_window_stride"), py::arg("windows"),
        py::arg("mask"), py::arg("outside_value"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "histogram16",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& mask) {
            std::vector<uint64_t> hist;
            {
                py::gil_scoped_release release;
                const Layout layout = make_layout(shape);
                hist = cpu::histogram16(layout, make_array(in, layout), make_array(mask, layout));
            }
            return py::array_t<uint64_t>(static_cast<py::ssize_t>(hist.size()), hist.data());
        },
        py::arg("shape"), py::arg("x"), py::arg("mask"));

    m.def(
        "moments",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& mask, double lo, double hi) {
            const Layout layout = make_layout(shape);
            const Moments mo = cpu::moments(layout, make_array(in, layout), make_array(mask, layout), lo, hi);
            return std::make_tuple(mo.count, mo.nan_count, mo.mean, mo.m2, mo.min, mo.max);
        },
        py::arg("shape"), py::arg("x"), py::arg("mask"), py::arg("clamp_lo"), py::arg("clamp_hi"),
        py::call_guard<py::gil_scoped_release>());

    m.def(
        "order_statistics",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& mask,
           const std::vector<int64_t>& ranks, uintptr_t out_values) {
            const Layout layout = make_layout(shape);
            cpu::order_statistics(layout, make_array(in, layout), make_array(mask, layout), ranks, out_values);
        },
        py::arg("shape"), py::arg("x"), py::arg("mask"), py::arg("ranks"), py::arg("out_values"),
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
