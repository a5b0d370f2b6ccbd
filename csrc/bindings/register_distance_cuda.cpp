// Bindings of the CUDA distance transform; same signature as the CPU one plus a stream.
#include "../cuda/distance_cuda.h"
#include "convert.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_distance_cuda(py::module_& m) {
    m.def(
        "distance_transform",
        [](const std::vector<int64_t>& shape, const ArrayDesc& mask, const ArrayDesc& out,
           const std::vector<double>& spacing, bool squared, int virtual_axis, uintptr_t stream) {
            const Layout layout = make_layout(shape);
            cuda::distance_transform(layout, make_array(mask, layout), make_array(out, layout), spacing, squared,
                                     virtual_axis, stream);
        },
        py::arg("shape"), py::arg("mask"), py::arg("out"), py::arg("spacing"), py::arg("squared"),
        py::arg("virtual_axis"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
