// Bindings of the CUDA resampling drivers; same signatures as the CPU ones plus a stream.
#include <array>

#include "../cuda/resample_cuda.h"
#include "convert.h"

namespace py = pybind11;

namespace medseg::bindings {

using Shape4 = std::array<int64_t, 4>;

namespace {

Layout layout4(const Shape4& shape) { return make_layout(std::vector<int64_t>(shape.begin(), shape.end())); }

}  // namespace

void register_resample_cuda(py::module_& m) {
    m.def(
        "resample",
        [](const Shape4& in_shape, const Shape4& out_shape, const std::array<int, 4>& orders, int late_axis,
           int clip_axis, const ArrayDesc& in, const ArrayDesc& out, uintptr_t stream) {
            ResampleSpec spec;
            for (int a = 0; a < kResampleDims; ++a) {
                spec.in_shape[a] = in_shape[a];
                spec.out_shape[a] = out_shape[a];
                spec.order[a] = orders[a];
            }
            spec.late_axis = late_axis;
            spec.clip_axis = clip_axis;
            cuda::resample(spec, make_array(in, layout4(in_shape)), make_array(out, layout4(out_shape)), stream);
        },
        py::arg("in_shape"), py::arg("out_shape"), py::arg("orders"), py::arg("late_axis"), py::arg("clip_axis"),
        py::arg("x"), py::arg("out"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "resample_nearest",
        [](const Shape4& in_shape, const Shape4& out_shape, const ArrayDesc& in, const ArrayDesc& out, uintptr_t stream) {
            cuda::resample_nearest(in_shape.data(), out_shape.data(), make_array(in, layout4(in_shape)),
                                   make_array(out, layout4(out_shape)), stream);
        },
        py::arg("in_shape"), py::arg("out_shape"), py::arg("x"), py::arg("out"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());

    m.def(
        "resample_labels",
        [](const Shape4& in_shape, const Shape4& out_shape, const std::array<int, 4>& orders, const ArrayDesc& in,
           const ArrayDesc& out, uintptr_t stream) {
            cuda::resample_labels(in_shape.data(), out_shape.data(), orders.data(), make_array(in, layout4(in_shape)),
                                  make_array(out, layout4(out_shape)), stream);
        },
        py::arg("in_shape"), py::arg("out_shape"), py::arg("orders"), py::arg("x"), py::arg("out"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
