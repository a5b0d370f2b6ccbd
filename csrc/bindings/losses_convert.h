// Typed arguments of the fused-loss kernels (pybind11 only; no kernel logic).
//
// The enums and the configuration struct are bound once, here, and registered by both _C and
// _C_cuda. They are module-local (py::module_local): each extension registers its own Python types,
// so neither module has to import the other and registering the same C++ type twice is no error.
// pybind11 still loads an instance made by the other module (same C++ type: it asks that module's
// loader), so objects work across the two; Python builds them from the module it calls anyway.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "convert.h"
#include "medseg/losses.h"

namespace medseg::bindings {

namespace py = pybind11;

// (B, K, n0, n1, n2): the 5-D layout shared by every array of a call (arrays are ArrayDesc with
// 5 strides, read by make_array).
inline Layout make_seg_layout(const std::vector<int64_t>& dims) {
    if (dims.size() != 5)
        throw std::invalid_argument("loss shape must be (B, K, n0, n1, n2), got " + std::to_string(dims.size()) +
                                    " values");
    return make_layout(dims);
}

// The configuration as the kernels see it: classes come from the shape, and enum values made
// from out-of-range integers (pybind11 enums accept any int) are refused.
inline SegLossConfig kernel_config(SegLossConfig cfg, const Layout& shape) {
    const int act = static_cast<int>(cfg.act), term = static_cast<int>(cfg.term);
    if (act < 0 || act > 1) throw std::invalid_argument("config.act must be a DiceAct, got the value " + std::to_string(act));
    if (term < 0 || term > 3)
        throw std::invalid_argument("config.term must be a PixelTerm, got the value " + std::to_string(term));
    cfg.classes = seg_classes(shape);
    return cfg;
}

inline std::string seg_config_repr(const SegLossConfig& c) {
    const char* acts[] = {"softmax", "sigmoid"};
    const char* terms[] = {"none", "focal_softmax", "focal_sigmoid", "explog_softmax"};
    const int a = static_cast<int>(c.act), t = static_cast<int>(c.term);
    auto real = [](double v) { return py::repr(py::float_(v)).cast<std::string>(); };   // Python's shortest form
    return std::string("SegLossConfig(act=") + (a >= 0 && a <= 1 ? acts[a] : "?") +
           ", term=" + (t >= 0 && t <= 3 ? terms[t] : "?") + ", term_first=" + std::to_string(c.term_first) +
           ", gamma=" + real(c.gamma) + ", squared_pred=" + (c.squared_pred ? "True" : "False") +
           ", onehot=" + (c.onehot ? "True" : "False") +
           ", ignore_index=" + (c.has_ignore ? std::to_string(c.ignore_index) : std::string("None")) +
           ", explog_eps=" + real(c.explog_eps) + ")";
}

inline void bind_loss_types(py::module_& m) {
    py::enum_<DiceAct>(m, "DiceAct", py::module_local(), "Activation of the Dice probabilities.")
        .value("softmax", DiceAct::Softmax, "softmax over the classes")
        .value("sigmoid", DiceAct::Sigmoid, "a sigmoid per class");
    py::enum_<PixelTerm>(m, "PixelTerm", py::module_local(), "Per-element loss term summed into Tp / Tn.")
        .value("none", PixelTerm::None)
        .value("focal_softmax", PixelTerm::FocalSoftmax, "softmax focal term (cross-entropy at gamma 0)")
        .value("focal_sigmoid", PixelTerm::FocalSigmoid, "sigmoid focal term")
        .value("explog_softmax", PixelTerm::ExpLogSoftmax, "exponential-logarithmic cross term");
    py::enum_<SegSum>(m, "SegSum", py::module_local(), "Index of each per-(batch, class) sum in the last axis.")
        .value("I", SegSum::I, "sum p t")
        .value("P", SegSum::P, "sum p (p^2 with squared_pred)")
        .value("G", SegSum::G, "sum t (t^2 with squared_pred)")
        .value("Tp", SegSum::Tp, "sum t term")
        .value("Tn", SegSum::Tn, "sum (1 - t) term");

    py::class_<SegLossConfig>(m, "SegLossConfig", py::module_local(),
                              "What the fused loss kernels compute; keyword arguments only.")
        .def(py::init([](DiceAct act, PixelTerm term, int term_first, double gamma, bool squared_pred, bool onehot,
                         std::optional<int64_t> ignore_index, double explog_eps) {
                 SegLossConfig c;
                 c.act = act;
                 c.term = term;
                 c.term_first = term_first;
                 c.gamma = gamma;
                 c.squared_pred = squared_pred;
                 c.onehot = onehot;
                 c.has_ignore = ignore_index.has_value();
                 c.ignore_index = ignore_index.value_or(-1);
                 c.explog_eps = explog_eps;
                 return c;
             }),
             py::kw_only(), py::arg("act") = DiceAct::Softmax, py::arg("term") = PixelTerm::None,
             py::arg("term_first") = 0, py::arg("gamma") = 2.0, py::arg("squared_pred") = false,
             py::arg("onehot") = false, py::arg("ignore_index") = py::none(), py::arg("explog_eps") = 1e-7)
        .def_readwrite("act", &SegLossConfig::act)
        .def_readwrite("term", &SegLossConfig::term)
        .def_readwrite("term_first", &SegLossConfig::term_first,
                       "softmax terms normalise over classes [term_first, K)")
        .def_readwrite("gamma", &SegLossConfig::gamma, "focal exponent, or the exp-log cross exponent")
        .def_readwrite("squared_pred", &SegLossConfig::squared_pred)
        .def_readwrite("onehot", &SegLossConfig::onehot, "the target holds K channels instead of labels")
        .def_property(
            "ignore_index",
            [](const SegLossConfig& c) { return c.has_ignore ? std::optional<int64_t>(c.ignore_index) : std::nullopt; },
            [](SegLossConfig& c, std::optional<int64_t> v) {
                c.has_ignore = v.has_value();
                c.ignore_index = v.value_or(-1);
            },
            "label whose voxels are skipped, or None")
        .def_readwrite("explog_eps", &SegLossConfig::explog_eps)
        .def("__repr__", &seg_config_repr);
}

}  // namespace medseg::bindings
