// Bindings of the CPU distance transform and segmentation metrics. Validation happens in Python
// (medseg_fast.distance, medseg_fast.metrics).
#include <pybind11/numpy.h>

#include "../cpu/distance_cpu.h"
#include "../cpu/metrics_cpu.h"
#include "convert.h"
#include "metrics_args.h"

namespace py = pybind11;

namespace medseg::bindings {

static cpu::ClassSpec make_spec(bool binary, const std::vector<int64_t>& classes) {
    cpu::ClassSpec spec;
    spec.binary = binary;
    spec.classes = classes;
    return spec;
}

void register_distance(py::module_& m) {
    m.def(
        "distance_transform",
        [](const std::vector<int64_t>& shape, const ArrayDesc& mask, const ArrayDesc& out,
           const std::vector<double>& spacing, bool squared, int virtual_axis) {
            const Layout layout = make_layout(shape);
            cpu::distance_transform(layout, make_array(mask, layout), make_array(out, layout), spacing, squared,
                                    virtual_axis);
        },
        py::arg("shape"), py::arg("mask"), py::arg("out"), py::arg("spacing"), py::arg("squared"),
        py::arg("virtual_axis"), py::call_guard<py::gil_scoped_release>());
    m.def("_edt_simd_mode", &cpu::edt_simd_mode, py::arg("mode") = -1,
          "Internal: 0 forces the scalar EDT envelope, 1 uses AVX2 where available, -1 queries; returns 1 "
          "when AVX2 is in use.");

    m.def(
        "class_counts",
        [](const std::vector<int64_t>& shape, const ArrayDesc& pred, const ArrayDesc& gt, bool binary,
           const std::vector<int64_t>& classes) {
            std::vector<cpu::ClassBox> boxes;
            {
                py::gil_scoped_release release;
                const Layout layout = make_layout(shape);
                boxes = cpu::class_boxes(layout, make_array(pred, layout), make_array(gt, layout),
                                         make_spec(binary, classes));
            }
            py::array_t<int64_t> out({static_cast<py::ssize_t>(boxes.size()), py::ssize_t(3)});
            auto r = out.mutable_unchecked<2>();
            for (size_t c = 0; c < boxes.size(); ++c) {
                r(c, 0) = boxes[c].pred;
                r(c, 1) = boxes[c].gt;
                r(c, 2) = boxes[c].both;
            }
            return out;
        },
        py::arg("shape"), py::arg("pred"), py::arg("gt"), py::arg("binary"), py::arg("classes"));

    m.def(
        "onehot_summary",
        [](const std::vector<int64_t>& bkn, const ArrayDesc& x, bool float32_ones, bool want_labels) {
            if (bkn.size() != 3) throw std::invalid_argument("bkn must be (B, K, N)");
            const int64_t B = bkn[0], K = bkn[1], N = bkn[2];
            if (B < 0 || K < 0 || N < 0) throw std::invalid_argument("negative extent");
            py::array_t<int64_t> counts({static_cast<py::ssize_t>(B), static_cast<py::ssize_t>(K), py::ssize_t(3)});
            py::array_t<int64_t> conflicts(static_cast<py::ssize_t>(B));
            py::array_t<int32_t> labels(want_labels ? std::vector<py::ssize_t>{static_cast<py::ssize_t>(B),
                                                                              static_cast<py::ssize_t>(N)}
                                                    : std::vector<py::ssize_t>{0});
            int64_t* c = counts.mutable_data();
            int64_t* f = conflicts.mutable_data();
            int32_t* l = want_labels ? labels.mutable_data() : nullptr;
            {
                py::gil_scoped_release release;
                cpu::onehot_summary(B, K, N, make_array(x, make_layout({B, K, N})), float32_ones, c, l, f);
            }
            return py::make_tuple(counts, labels, conflicts);
        },
        py::arg("bkn"), py::arg("x"), py::arg("float32_ones"), py::arg("want_labels"),
        "(counts (B, K, 3) [nonzero, ==1, ==0], labels (B, N) int32 or empty, conflicts (B,)) of a one-hot array");

    bind_metric_types(m);
    m.def(
        "surface_metrics",
        [](const std::vector<int64_t>& shape, const ArrayDesc& pred, const ArrayDesc& gt,
           const SurfaceMetricsConfig& config) {
            check_surface_config(config);
            std::vector<double> values;
            const cpu::ClassSpec spec = make_spec(config.binary, config.classes);
            {
                py::gil_scoped_release release;
                const Layout layout = make_layout(shape);
                values = cpu::surface_metrics(layout, config.active, make_array(pred, layout), make_array(gt, layout),
                                              spec, config.spacing.data(), config.convention, config.queries,
                                              static_cast<int>(config.path));
            }
            const py::ssize_t k = spec.num_classes();
            const py::ssize_t width = static_cast<py::ssize_t>(5 + config.queries.size());
            py::array_t<double> out({k, width});
            std::copy(values.begin(), values.end(), out.mutable_data());
            return out;
        },
        py::arg("shape"), py::arg("pred"), py::arg("gt"), py::arg("config"),
        "Per class: |P|, |G|, |P & G|, pred and gt surface elements, then one column per config.queries entry.");

    m.def(
        "confusion_matrix",
        [](const std::vector<int64_t>& shape, const ArrayDesc& pred, const ArrayDesc& gt, int64_t k) {
            std::vector<int64_t> counts;
            {
                py::gil_scoped_release release;
                const Layout layout = make_layout(shape);
                counts = cpu::confusion_matrix(layout, make_array(pred, layout), make_array(gt, layout), k);
            }
            py::array_t<int64_t> out({static_cast<py::ssize_t>(k), static_cast<py::ssize_t>(k)});
            std::copy(counts.begin(), counts.end(), out.mutable_data());
            return out;
        },
        py::arg("shape"), py::arg("pred"), py::arg("gt"), py::arg("num_classes"));
}

}  // namespace medseg::bindings
