// Typed arguments of the surface-metric kernel (pybind11 only; no kernel logic).
//
// Conventions, statistics and the distance path are bound enums used by name from Python; one
// surface-metrics call is described by a SurfaceMetricsConfig with named fields instead of a long
// positional list. module_local like the loss types (see losses_convert.h): only _C registers
// these today (the surface kernels run on the CPU), and a CUDA registration would include this
// header unchanged.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cpu/metrics_cpu.h"

namespace medseg::bindings {

namespace py = pybind11;

// How the surface distances are found (the kPath* constants of metrics_cpu.h).
enum class SurfacePath : int {
    Auto = cpu::kPathAuto,
    Nearest = cpu::kPathNearest,
    Edt = cpu::kPathEdt,
    AutoSmallBudget = cpu::kPathAutoSmallBudget,
};

// Everything of one surface_metrics call besides the arrays and their shape.
struct SurfaceMetricsConfig {
    int active = 3;                       // spatial axes of the caller's arrays (1..3)
    bool binary = true;                   // masks (nonzero = in) instead of label maps
    std::vector<int64_t> classes;         // labels scored (label maps only), rows in this order
    std::vector<double> spacing{1.0, 1.0, 1.0};   // 3 values, padded in front
    Convention convention = Convention::Monai;
    std::vector<SurfaceQuery> queries;
    SurfacePath path = SurfacePath::Auto;
};

// Enum values made from out-of-range integers (pybind11 enums accept any int) are refused.
inline void check_surface_config(const SurfaceMetricsConfig& c) {
    const int conv = static_cast<int>(c.convention), path = static_cast<int>(c.path);
    if (conv < 0 || conv > 2)
        throw std::invalid_argument("config.convention must be a Convention, got the value " + std::to_string(conv));
    if (path < 0 || path > 3)
        throw std::invalid_argument("config.path must be a SurfacePath, got the value " + std::to_string(path));
    if (c.active < 1 || c.active > 3)
        throw std::invalid_argument("config.active must be 1, 2 or 3, got " + std::to_string(c.active));
    if (c.spacing.size() != 3)
        throw std::invalid_argument("config.spacing must have 3 values, got " + std::to_string(c.spacing.size()));
    for (const SurfaceQuery& q : c.queries) {
        const int s = static_cast<int>(q.stat);
        if (s < 0 || s > 2)
            throw std::invalid_argument("query.stat must be a SurfaceStat, got the value " + std::to_string(s));
    }
}

inline void bind_metric_types(py::module_& m) {
    py::enum_<Convention>(m, "Convention", py::module_local(), "Whose surface-metric definition is reproduced.")
        .value("monai", Convention::Monai)
        .value("medpy", Convention::Medpy)
        .value("deepmind", Convention::DeepMind);
    py::enum_<SurfaceStat>(m, "SurfaceStat", py::module_local(), "One statistic of the surface distances.")
        .value("hausdorff", SurfaceStat::Hausdorff, "maximum, or a percentile")
        .value("average_distance", SurfaceStat::AverageDistance, "mean surface distance")
        .value("surface_dice", SurfaceStat::SurfaceDice, "surface Dice at a tolerance");
    py::enum_<SurfacePath>(m, "SurfacePath", py::module_local(),
                           "How surface distances are found; every path gives bit-identical results.")
        .value("auto", SurfacePath::Auto, "nearest-neighbour search, the EDT when that would cost more")
        .value("nearest", SurfacePath::Nearest)
        .value("edt", SurfacePath::Edt)
        .value("auto_small_budget", SurfacePath::AutoSmallBudget, "the search gives up early (tests)");

    py::class_<SurfaceQuery>(m, "SurfaceQuery", py::module_local(), "One requested statistic; keyword arguments only.")
        .def(py::init([](SurfaceStat stat, double percentile, bool directed, double tolerance) {
                 SurfaceQuery q;
                 q.stat = stat;
                 q.percentile = percentile;
                 q.directed = directed;
                 q.tolerance = tolerance;
                 return q;
             }),
             py::kw_only(), py::arg("stat"), py::arg("percentile") = -1.0, py::arg("directed") = false,
             py::arg("tolerance") = 0.0)
        .def_readwrite("stat", &SurfaceQuery::stat)
        .def_readwrite("percentile", &SurfaceQuery::percentile, "< 0: the maximum")
        .def_readwrite("directed", &SurfaceQuery::directed, "pred -> gt only")
        .def_readwrite("tolerance", &SurfaceQuery::tolerance, "surface Dice tolerance (mm)");

    py::class_<SurfaceMetricsConfig>(m, "SurfaceMetricsConfig", py::module_local(),
                                     "What one surface_metrics call computes; keyword arguments only.")
        .def(py::init([](int active, bool binary, std::vector<int64_t> classes, std::vector<double> spacing,
                         Convention convention, std::vector<SurfaceQuery> queries, SurfacePath path) {
                 SurfaceMetricsConfig c;
                 c.active = active;
                 c.binary = binary;
                 c.classes = std::move(classes);
                 c.spacing = std::move(spacing);
                 c.convention = convention;
                 c.queries = std::move(queries);
                 c.path = path;
                 return c;
             }),
             py::kw_only(), py::arg("active"), py::arg("binary"), py::arg("classes") = std::vector<int64_t>{},
             py::arg("spacing") = std::vector<double>{1.0, 1.0, 1.0}, py::arg("convention") = Convention::Monai,
             py::arg("queries") = std::vector<SurfaceQuery>{}, py::arg("path") = SurfacePath::Auto)
        .def_readwrite("active", &SurfaceMetricsConfig::active, "spatial axes of the caller's arrays")
        .def_readwrite("binary", &SurfaceMetricsConfig::binary, "masks instead of label maps")
        .def_readwrite("classes", &SurfaceMetricsConfig::classes)
        .def_readwrite("spacing", &SurfaceMetricsConfig::spacing, "3 values (padded in front with 1)")
        .def_readwrite("convention", &SurfaceMetricsConfig::convention)
        .def_readwrite("queries", &SurfaceMetricsConfig::queries)
        .def_readwrite("path", &SurfaceMetricsConfig::path);
}

}  // namespace medseg::bindings
