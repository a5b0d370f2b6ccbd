// Bindings of the CUDA intensity drivers; same signatures as the CPU ones plus a stream.
#include <pybind11/numpy.h>

#include "../cuda/intensity_cuda.h"
#include "convert.h"
#include "intensity_args.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_intensity_cuda(py::module_& m) {
    bind_intensity_types(m);
    m.def(
        "window_apply",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& out, int64_t out_window_stride,
           const std::vector<WindowParams>& windows, const ArrayDesc& mask, double outside_value, uintptr_t stream) {
            const Layout layout = make_layout(shape);
            cuda::window_apply(layout, make_array(in, layout), make_array(out, layout), out_window_stride, windows,
                               make_array(mask, layout), outside_value, stream);
        },
        py::arg("shape"), py::arg("x"), py::arg("out"), py::arg("out_window_stride"), py::arg("windows"),
        py::arg("mask"), py::arg("outside_value"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "histogram16",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& mask, uintptr_t stream) {
            std::vector<uint64_t> hist;
            {
                py::gil_scoped_release release;
                const Layout layout = make_layout(shape);
                hist = cuda::histogram16(layout, make_array(in, layout), make_array(mask, layout), stream);
            }
            return py::array_t<uint64_t>(static_cast<py::ssize_t>(hist.size()), hist.data());
        },
        py::arg("shape"), py::arg("x"), py::arg("mask"), py::arg("stream"));

    m.def(
        "moments",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& mask, double lo, double hi,
           uintptr_t stream) {
            const Layout layout = make_layout(shape);
            const Moments mo = cuda::moments(layout, make_array(in, layout), make_array(mask, layout), lo, hi, stream);
            return std::make_tuple(mo.count, mo.nan_count, mo.mean, mo.m2, mo.min, mo.max);
        },
        py::arg("shape"), py::arg("x"), py::arg("mask"), py::arg("clamp_lo"), py::arg("clamp_hi"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());

    m.def(
        "order_statistics",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& mask,
           const std::vector<int64_t>& ranks, uintptr_t out_values, uintptr_t stream) {
            const Layout layout = make_layout(shape);
            cuda::order_statistics(layout, make_array(in, layout), make_array(mask, layout), ranks, out_values, stream);
        },
        py::arg("shape"), py::arg("x"), py::arg("mask"), py::arg("ranks"), py::arg("out_values"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
