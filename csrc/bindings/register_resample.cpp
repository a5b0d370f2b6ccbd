// Bindings of the CPU resampling kernels. Validation happens in Python (medseg_fast.resample).
#include <array>
#include <stdexcept>
#include <string>

#include "../cpu/resample_cpu.h"
#include "resample_args.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_resample(py::module_& m) {
    bind_resample_types(m);
    m.def(
        "resample",
        [](const ResampleSpec& spec, const ArrayDesc& in, const ArrayDesc& out) {
            cpu::resample(spec, make_array(in, layout4(array_of(spec.in_shape))),
                          make_array(out, layout4(array_of(spec.out_shape))));
        },
        py::arg("spec"), py::arg("x"), py::arg("out"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "resample_mapped",
        [](const ResampleSpec& spec, const std::array<double, 4>& scales, const std::array<double, 4>& offsets,
           const std::string& boundary, bool nearest_half_even, const ArrayDesc& in, const ArrayDesc& out) {
            AxisMaps maps;
            for (int a = 0; a < kResampleDims; ++a) {
                maps.scale[a] = scales[a];
                maps.offset[a] = offsets[a];
            }
            if (boundary == "edge") maps.boundary = ResampleBoundary::Edge;
            else if (boundary == "zeros") maps.boundary = ResampleBoundary::Zeros;
            else throw std::invalid_argument("boundary must be 'edge' or 'zeros', got '" + boundary + "'");
            maps.nearest_half_even = nearest_half_even;
            cpu::resample_mapped(spec, maps, make_array(in, layout4(array_of(spec.in_shape))),
                                 make_array(out, layout4(array_of(spec.out_shape))));
        },
        py::arg("spec"), py::arg("scales"), py::arg("offsets"), py::arg("boundary"), py::arg("nearest_half_even"),
        py::arg("x"), py::arg("out"), py::call_guard<py::gil_scoped_release>(),
        "resample on affine per-axis grids: sample k of axis a reads offsets[a] + scales[a] * k ([0] unused)");

    m.def(
        "resample_argmax",
        [](const ResampleSpec& spec, const ArrayDesc& in, const ArrayDesc& out) {
            Shape4 out_shape = array_of(spec.out_shape);
            out_shape[0] = 1;
            cpu::resample_argmax(spec, make_array(in, layout4(array_of(spec.in_shape))),
                                 make_array(out, layout4(out_shape)));
        },
        py::arg("spec"), py::arg("scores"), py::arg("out"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "resample_nearest",
        [](const Shape4& in_shape, const Shape4& out_shape, const ArrayDesc& in, const ArrayDesc& out) {
            cpu::resample_nearest(in_shape.data(), out_shape.data(), make_array(in, layout4(in_shape)),
                                  make_array(out, layout4(out_shape)));
        },
        py::arg("in_shape"), py::arg("out_shape"), py::arg("x"), py::arg("out"),
        py::call_guard<py::gil_scoped_release>());

    m.def(
        "resample_labels",
        [](const Shape4& in_shape, const Shape4& out_shape, const Orders4& orders, const ArrayDesc& in,
           const ArrayDesc& out) {
            cpu::resample_labels(in_shape.data(), out_shape.data(), orders.data(), make_array(in, layout4(in_shape)),
                                 make_array(out, layout4(out_shape)));
        },
        py::arg("in_shape"), py::arg("out_shape"), py::arg("orders"), py::arg("x"), py::arg("out"),
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
