// Bindings of the CPU fused-loss kernels. Validation happens in Python (medseg_fast.losses).
#include "../cpu/losses_cpu.h"
#include "losses_convert.h"

namespace py = pybind11;

namespace medseg::bindings {

void register_losses(py::module_& m) {
    bind_loss_types(m);
    m.def(
        "seg_loss_sums",
        [](const std::vector<int64_t>& dims, const SegLossConfig& config, const ArrayDesc& logits,
           const ArrayDesc& target, uintptr_t sums, uintptr_t counts) {
            const Layout shape = make_seg_layout(dims);
            return cpu::seg_loss_sums(shape, kernel_config(config, shape), make_array(logits, shape),
                                      make_array(target, shape), reinterpret_cast<double*>(sums),
                                      reinterpret_cast<int64_t*>(counts));
        },
        py::arg("shape"), py::arg("config"), py::arg("logits"), py::arg("target"), py::arg("sums"), py::arg("counts"),
        py::call_guard<py::gil_scoped_release>(),
        "Per-(batch, class) sums (I, P, G, Tp, Tn) into sums (float64, B*K*5) and valid-voxel counts (int64, B); "
        "returns the number of out-of-range labels.");

    m.def(
        "seg_loss_grad",
        [](const std::vector<int64_t>& dims, const SegLossConfig& config, const ArrayDesc& logits,
           const ArrayDesc& target, uintptr_t grad_sums, const ArrayDesc& grad) {
            const Layout shape = make_seg_layout(dims);
            cpu::seg_loss_grad(shape, kernel_config(config, shape), make_array(logits, shape),
                               make_array(target, shape), reinterpret_cast<const double*>(grad_sums),
                               make_array(grad, shape));
        },
        py::arg("shape"), py::arg("config"), py::arg("logits"), py::arg("target"), py::arg("grad_sums"),
        py::arg("grad"), py::call_guard<py::gil_scoped_release>(),
        "Gradient of the logits from d loss / d sums (float64, B*K*5), written into grad.");

    m.def("_losses_simd_mode", &cpu::loss_simd_mode, py::arg("mode") = -1,
          "Internal: 0 forces the scalar loss path, 1 uses AVX2 where available, -1 queries; returns 1 when AVX2 "
          "is in use.");
    py::enum_<cpu::LossMathFn>(m, "LossMathFn", py::module_local(),
                               "Internal: the float functions that _losses_math evaluates.")
        .value("exp", cpu::LossMathFn::Exp)
        .value("log", cpu::LossMathFn::Log)
        .value("log1p", cpu::LossMathFn::Log1p)
        .value("sigmoid", cpu::LossMathFn::Sigmoid);
    m.def(
        "_losses_math",
        [](cpu::LossMathFn fn, bool use_simd, uintptr_t x, uintptr_t y, int64_t n) {
            return cpu::loss_math(fn, use_simd, reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y), n);
        },
        py::arg("fn"), py::arg("simd"), py::arg("x"), py::arg("y"), py::arg("n"),
        py::call_guard<py::gil_scoped_release>(),
        "Internal test hook: float32 exp, log, log1p or sigmoid (a LossMathFn) of n values, AVX2 or scalar; "
        "False when that path is not available.");
}

}  // namespace medseg::bindings
