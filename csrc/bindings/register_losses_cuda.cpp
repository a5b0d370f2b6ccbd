// Bindings of the CUDA fused-loss drivers; same arguments as the CPU ones plus device outputs and a stream.
#include "../cuda/losses_cuda.h"
#include "losses_convert.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_losses_cuda(py::module_& m) {
    bind_loss_types(m);
    m.def(
        "seg_loss_sums",
        [](const std::vector<int64_t>& dims, const SegLossConfig& config, const ArrayDesc& logits,
           const ArrayDesc& target, uintptr_t sums, uintptr_t counts, uintptr_t bad, uintptr_t stream) {
            const Layout shape = make_seg_layout(dims);
            cuda::seg_loss_sums(shape, kernel_config(config, shape), make_array(logits, shape),
                                make_array(target, shape), sums, counts, bad, stream);
        },
        py::arg("shape"), py::arg("config"), py::arg("logits"), py::arg("target"), py::arg("sums"), py::arg("counts"),
        py::arg("bad"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());

    m.def(
        "seg_loss_grad",
        [](const std::vector<int64_t>& dims, const SegLossConfig& config, const ArrayDesc& logits,
           const ArrayDesc& target, uintptr_t grad_sums, const ArrayDesc& grad, uintptr_t stream) {
            const Layout shape = make_seg_layout(dims);
            cuda::seg_loss_grad(shape, kernel_config(config, shape), make_array(logits, shape),
                                make_array(target, shape), grad_sums, make_array(grad, shape), stream);
        },
        py::arg("shape"), py::arg("config"), py::arg("logits"), py::arg("target"), py::arg("grad_sums"),
        py::arg("grad"), py::arg("stream"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace medseg::bindings
