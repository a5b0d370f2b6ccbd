// Bindings of the CUDA connected-components driver; same descriptors as the CPU ones plus a stream.
#include "../cuda/components_cuda.h"
#include "convert.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_components_cuda(py::module_& m) {
    m.def(
        "label",
        [](const std::vector<int64_t>& shape, const ArrayDesc& in, const ArrayDesc& out, int connectivity,
           int64_t background, int64_t max_label, uintptr_t stream) {
            const Layout layout = make_layout(shape);
            return cuda::label_components(layout, make_array(in, layout), make_array(out, layout), connectivity,
                                          background, max_label, stream);
        },
        py::arg("shape"), py::arg("x"), py::arg("out"), py::arg("connectivity"), py::arg("background"),
        py::arg("max_label"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
