// Surface metrics of every class of two label maps (or of two binary masks) in one call:
// one pass for counts and union bounding boxes, then per class, inside its box only, the
// surfaces of both masks, the distances from each surface to the other (nearest-neighbour
// search, metrics_nearest.cpp; exact EDT of the box when the search would cost more) and the
// statistics every query asks for.
//
// Surfaces: convention monai/medpy take the voxels of the mask that have a 6-neighbour outside
// it (scipy binary_erosion with the image border as background); deepmind takes the corners of
// the voxel grid whose 2x2x2 neighbourhood is neither empty nor full, weighted by surfel area.
// Restricting to the union box is exact: every surface element of either mask lies inside it,
// and outside it both masks are empty.
//
// Why one file (~510 lines): the per-class box pass, the surface extraction and the statistics
// share the box and surface layouts; the nearest-neighbour search is already its own unit.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "distance_cpu.h"
#include "medseg/metrics_surfels.h"
#include "metrics_cpu.h"
#include "metrics_nearest.h"

namespace medseg::cpu {

using detail::ClassLookup;
using detail::label_value;

namespace {

// Surface elements of one mask and, per element, the distance to the other mask's surface.
struct SurfaceSide {
    std::vector<int64_t> index;      // linear index in the box (or corner grid)
    std::vector<double> weight;      // surfel areas (deepmind) or empty
    std::vector<double> distance;    // to the other surface
};

struct BoxGrid {
    int64_t e[3];   // extents
    int64_t size() const { return e[0] * e[1] * e[2]; }
};

// Collects per-slab (axis 0) index lists in parallel and concatenates them in slab order, so
// the element order never depends on the thread count.
template <typename Fn>
void per_slab(int64_t slabs, bool parallel, SurfaceSide& side, bool weighted, Fn&& fn) {
    std::vector<SurfaceSide> parts(slabs);
    maybe_parallel(parallel, slabs, 1, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) fn(i, parts[i]);
    });
    size_t total = 0;
    for (const auto& p : parts) total += p.index.size();
    side.index.reserve(total);
    if (weighted) side.weight.reserve(total);
    for (const auto& p : parts) {
        side.index.insert(side.index.end(), p.index.begin(), p.index.end());
        if (weighted) side.weight.insert(side.weight.end(), p.weight.begin(), p.weight.end());
    }
}

// Rows of a 0/1 byte mask over the box: the extracted copy, or the caller's bool array itself.
struct MaskRows {
    const uint8_t* base;
    int64_t s0, s1;
    const uint8_t* row(int64_t a, int64_t b) const { return base + a * s0 + b * s1; }
};

// Indices of the nonzero bytes of flags[0, n) (offset by `base`), skipping zero words.
inline void push_nonzero(const uint8_t* flags, int64_t n, int64_t base, std::vector<int64_t>& out) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        std::memcpy(&w, flags + k, 8);
        if (!w) continue;
        for (int t = 0; t < 8; ++t)
            if (flags[k + t]) out.push_back(base + k + t);
    }
    for (; k < n; ++k)
        if (flags[k]) out.push_back(base + k);
}

// Voxel surfaces: inside voxels with at least one 6-neighbour (along active axes) outside; rows
// outside the box read as a zero row (the box holds every mask voxel, so that is exact).
void voxel_surface(const BoxGrid& g, int active, const MaskRows& m, SurfaceSide& side, bool parallel) {
    const int64_t e0 = g.e[0], e1 = g.e[1], e2 = g.e[2];
    const bool erode0 = active == 3, erode1 = active >= 2;
    std::vector<uint8_t> zeros(e2, 0);
    per_slab(e0, parallel, side, false, [&](int64_t i, SurfaceSide& part) {
        std::vector<uint8_t> flag(e2);
        auto row = [&](int64_t a, int64_t b) -> const uint8_t* {
            if (a < 0 || b < 0 || a >= e0 || b >= e1) return zeros.data();
            return m.row(a, b);
        };
        for (int64_t j = 0; j < e1; ++j) {
            const uint8_t* c = row(i, j);
            const uint8_t* u = erode0 ? row(i - 1, j) : c;
            const uint8_t* d = erode0 ? row(i + 1, j) : c;
            const uint8_t* f = erode1 ? row(i, j - 1) : c;
            const uint8_t* h = erode1 ? row(i, j + 1) : c;
            uint64_t any = 0;
            for (int64_t k = 0; k < e2; k += 8) {
                uint64_t w = 0;
                std::memcpy(&w, c + k, std::min<int64_t>(8, e2 - k));
                any |= w;
            }
            if (!any) continue;
            // Bytes are 0 or 1: flag = c & ~(all six neighbours); the row ends have an outside
            // neighbour along the last axis, so they are surface whenever inside.
            flag[0] = c[0];
            for (int64_t k = 1; k + 1 < e2; ++k)
                flag[k] = c[k] & static_cast<uint8_t>(1 ^ (u[k] & d[k] & f[k] & h[k] & c[k - 1] & c[k + 1]));
            flag[e2 - 1] = c[e2 - 1];
            push_nonzero(flag.data(), e2, (i * e1 + j) * e2, part.index);
        }
    });
}

// Corner surfels: corner (i, j, k) of the (e + 1) grid sees voxels i-1..i, j-1..j, k-1..k.
// Per corner row, the 2x2 voxel rows around it are read through zero-padded copies.
void corner_surface(const BoxGrid& g, const BoxGrid& c, int active, const MaskRows& m,
                    const double* table, SurfaceSide& side, bool parallel) {
    const int full = active == 3 ? 255 : 15;
    const int64_t e2 = g.e[2], c2 = c.e[2];
    per_slab(c.e[0], parallel, side, true, [&](int64_t i, SurfaceSide& part) {
        // rows[r][x + 1] = voxel (i - 1 + r / 2, j - 1 + r % 2, x) for x in [-1, e2], zero outside.
        std::vector<uint8_t> rows[4];
        for (auto& r : rows) r.assign(e2 + 2, 0);
        auto load = [&](std::vector<uint8_t>& dst, int64_t a, int64_t b) -> bool {
            if (a < 0 || b < 0 || a >= g.e[0] || b >= g.e[1]) {
                std::fill(dst.begin(), dst.end(), 0);
                return false;
            }
            const uint8_t* src = m.row(a, b);
            bool any = false;
            for (int64_t x = 0; x < e2; ++x) {
                dst[x + 1] = src[x] != 0;
                any |= src[x] != 0;
            }
            return any;
        };
        for (int64_t j = 0; j < c.e[1]; ++j) {
            bool any = false;
            if (active == 3) {
                any |= load(rows[0], i - 1, j - 1);
                any |= load(rows[1], i - 1, j);
            } else {
                std::fill(rows[0].begin(), rows[0].end(), 0);
                std::fill(rows[1].begin(), rows[1].end(), 0);
            }
            any |= load(rows[2], i, j - 1);
            any |= load(rows[3], i, j);
            if (!any) continue;
            const uint8_t *p = rows[0].data(), *q = rows[1].data(), *r = rows[2].data(), *t = rows[3].data();
            const int64_t base = (i * c.e[1] + j) * c2;
            for (int64_t k = 0; k < c2; ++k) {
                // x = k - 1 is at index k, x = k at index k + 1.
                int code;
                if (active == 3)
                    code = (p[k] << 7) | (p[k + 1] << 6) | (q[k] << 5) | (q[k + 1] << 4) | (r[k] << 3) |
                           (r[k + 1] << 2) | (t[k] << 1) | t[k + 1];
                else
                    code = (r[k] << 3) | (r[k + 1] << 2) | (t[k] << 1) | t[k + 1];
                if (code == 0 || code == full) continue;
                part.index.push_back(base + k);
                part.weight.push_back(table[code]);
            }
        }
    });
}

// Distances from the elements of `from` to the nearest element of `to` (+inf without any):
// a nearest-neighbour search over `to`'s elements, or, when that would cost more than an EDT of
// the box, the exact EDT of `to`'s surface (`sites`). Both give the exact minimum of the same
// rounded squared distances, so the choice never changes a result.
void distances_to(const EdtShape& sh, const SurfaceSide& to, SurfaceSide& from,
                  std::vector<double>& scratch, bool parallel, int path) {
    from.distance.assign(from.index.size(), kInf);
    if (to.index.empty() || from.index.empty()) return;
    const int64_t box = sh.size();
    // Budget: about the cost of the EDT of the box, in distance evaluations and visited cells.
    int64_t budget = 8 * box;
    if (path == kPathNearest) budget = std::numeric_limits<int64_t>::max();
    else if (path == kPathEdt) budget = -1;
    else if (path == kPathAutoSmallBudget) budget = static_cast<int64_t>(from.index.size()) / 2;
    if (budget >= 0 && nearest_distances(sh.shape, sh.spacing, to.index, from.index, from.distance, budget, parallel))
        return;
    std::vector<uint8_t> sites(box, 0);
    for (int64_t idx : to.index) sites[idx] = 1;
    scratch.resize(box);
    edt_from_sites<double, true>(sh, sites.data(), scratch.data(), false, parallel);
    for (size_t n = 0; n < from.index.size(); ++n) from.distance[n] = std::sqrt(scratch[from.index[n]]);
}

double maximum(const std::vector<double>& v) {
    double m = -kInf;
    for (double x : v) m = std::max(m, x);
    return v.empty() ? kNaN : m;
}

// ---------------------------------------------------------------------------------- statistics
struct ClassInput {
    SurfaceSide pred, gt;   // pred.distance: pred -> gt; gt.distance: gt -> pred
    bool pred_empty, gt_empty;
    bool have_gt_side;      // gt -> pred distances computed
};

double monai_stat(const SurfaceQuery& q, ClassInput& in) {
    auto as_f32 = [](const std::vector<double>& d) {
        std::vector<float> f(d.size());
        for (size_t i = 0; i < d.size(); ++i) f[i] = static_cast<float>(d[i]);
        return f;
    };
    const bool both_empty = in.pred_empty && in.gt_empty;
    if (in.pred_empty != in.gt_empty) {
        // MONAI fills both directions with +inf (one per surface voxel of the non-empty mask):
        // the maximum and the mean are +inf, torch.quantile of infinities is NaN, NSD is 0.
        if (q.stat == SurfaceStat::Hausdorff) return q.percentile > 0 ? kNaN : kInf;
        if (q.stat == SurfaceStat::AverageDistance) return kInf;
        return 0.0;
    }
    if (q.stat == SurfaceStat::Hausdorff) {
        if (both_empty) return kNaN;
        auto one = [&](const std::vector<double>& d) -> float {
            std::vector<float> f = as_f32(d);
            if (f.empty()) return std::numeric_limits<float>::quiet_NaN();
            if (!(q.percentile > 0)) {   // MONAI: `if not percentile` -> maximum (None or 0)
                float m = f[0];
                for (float x : f) m = (std::isnan(x) || x > m) ? x : m;
                return m;
            }
            return torch_quantile_f32(f, q.percentile);
        };
        const float a = one(in.pred.distance);
        if (q.directed) return a;
        const float b = one(in.gt.distance);
        if (std::isnan(a) || std::isnan(b)) return kNaN;
        return std::max(a, b);
    }
    if (q.stat == SurfaceStat::AverageDistance) {
        // mean of float32 distances (pooled over both directions when symmetric)
        double sum = 0.0;
        size_t n = 0;
        for (double x : in.pred.distance) sum += static_cast<float>(x), ++n;
        if (!q.directed)
            for (double x : in.gt.distance) sum += static_cast<float>(x), ++n;
        return n == 0 ? kNaN : static_cast<double>(static_cast<float>(sum / static_cast<double>(n)));
    }
    // surface Dice on voxel counts, thresholds compared in float32 as torch does
    const float tol = static_cast<float>(q.tolerance);
    const size_t complete = in.pred.distance.size() + in.gt.distance.size();
    if (complete == 0) return kNaN;
    size_t correct = 0;
    for (double x : in.pred.distance) correct += static_cast<float>(x) <= tol;
    for (double x : in.gt.distance) correct += static_cast<float>(x) <= tol;
    return static_cast<double>(static_cast<float>(static_cast<double>(correct) / static_cast<double>(complete)));
}

double medpy_stat(const SurfaceQuery& q, ClassInput& in) {
    if (q.stat == SurfaceStat::SurfaceDice) {
        const size_t complete = in.pred.distance.size() + in.gt.distance.size();
        if (complete == 0) return kNaN;
        size_t correct = 0;
        for (double x : in.pred.distance) correct += x <= q.tolerance;
        for (double x : in.gt.distance) correct += x <= q.tolerance;
        return static_cast<double>(correct) / static_cast<double>(complete);
    }
    if (in.pred_empty || in.gt_empty) return kNaN;   // MedPy raises RuntimeError
    if (q.stat == SurfaceStat::Hausdorff) {
        if (q.percentile < 0) {
            const double a = maximum(in.pred.distance);
            return q.directed ? a : std::max(a, maximum(in.gt.distance));
        }
        std::vector<double> pooled = in.pred.distance;
        if (!q.directed) pooled.insert(pooled.end(), in.gt.distance.begin(), in.gt.distance.end());
        return numpy_percentile(pooled, q.percentile);
    }
    if (q.directed) return pairwise_mean(in.pred.distance);
    // medpy.metric.binary.assd: mean of the concatenated distances (pred -> gt first)
    std::vector<double> pooled = in.pred.distance;
    pooled.insert(pooled.end(), in.gt.distance.begin(), in.gt.distance.end());
    return pairwise_mean(pooled);
}

double deepmind_stat(const SurfaceQuery& q, ClassInput& in) {
    // Sides are sorted by (distance, area) before this is called.
    auto wmean = [](const SurfaceSide& s) {
        std::vector<double> prod(s.distance.size());
        for (size_t i = 0; i < prod.size(); ++i) prod[i] = s.distance[i] * s.weight[i];
        return pairwise_sum(prod.data(), static_cast<int64_t>(prod.size())) /
               pairwise_sum(s.weight.data(), static_cast<int64_t>(s.weight.size()));
    };
    if (q.stat == SurfaceStat::Hausdorff) {
        const double percent = q.percentile < 0 ? 100.0 : q.percentile;
        const double a = weighted_nearest_rank(in.pred.distance, in.pred.weight, percent);
        if (q.directed) return a;
        const double b = weighted_nearest_rank(in.gt.distance, in.gt.weight, percent);
        return std::max(b, a);
    }
    if (q.stat == SurfaceStat::AverageDistance) {
        const double a = wmean(in.pred);
        if (q.directed) return a;
        const double b = wmean(in.gt);
        return (b + a) / 2.0;
    }
    auto overlap = [&](const SurfaceSide& s) {
        std::vector<double> w;
        for (size_t i = 0; i < s.distance.size(); ++i)
            if (s.distance[i] <= q.tolerance) w.push_back(s.weight[i]);
        return pairwise_sum(w.data(), static_cast<int64_t>(w.size()));
    };
    const double num = overlap(in.gt) + overlap(in.pred);
    const double den = pairwise_sum(in.gt.weight.data(), static_cast<int64_t>(in.gt.weight.size())) +
                       pairwise_sum(in.pred.weight.data(), static_cast<int64_t>(in.pred.weight.size()));
    return num / den;
}

struct Context {
    Layout layout;
    int active;
    ArrayArg pred, gt;
    const ClassSpec* spec;
    const ClassLookup* lookup;
    double spacing[3];
    Convention convention;
    const std::vector<SurfaceQuery>* queries;
    double area_table[256];
    int path;
};

// Byte masks (class c in pred / gt) of the box, read from the label maps.
template <typename P, typename G>
void extract_masks(const Context& ctx, int c, const ClassBox& box, const BoxGrid& g, std::vector<uint8_t>& mp,
                   std::vector<uint8_t>& mg, bool parallel) {
    const P* pp = ctx.pred.data<P>();
    const G* gp = ctx.gt.data<G>();
    maybe_parallel(parallel, g.e[0], 1, [&](int64_t i0, int64_t i1, int) {
        for (int64_t i = i0; i < i1; ++i)
            for (int64_t j = 0; j < g.e[1]; ++j) {
                const int64_t gi = box.lo[0] + i, gj = box.lo[1] + j;
                const P* prow = pp + gi * ctx.pred.strides.s[0] + gj * ctx.pred.strides.s[1];
                const G* grow = gp + gi * ctx.gt.strides.s[0] + gj * ctx.gt.strides.s[1];
                uint8_t* op = mp.data() + (i * g.e[1] + j) * g.e[2];
                uint8_t* og = mg.data() + (i * g.e[1] + j) * g.e[2];
                if (ctx.spec->binary && ctx.pred.strides.s[2] == 1 && ctx.gt.strides.s[2] == 1) {
                    // Binary masks, contiguous rows: a vectorisable nonzero test.
                    const P* pr = prow + box.lo[2];
                    const G* gr = grow + box.lo[2];
                    for (int64_t k = 0; k < g.e[2]; ++k) op[k] = label_value<P>(pr[k]) != 0;
                    for (int64_t k = 0; k < g.e[2]; ++k) og[k] = label_value<G>(gr[k]) != 0;
                    continue;
                }
                for (int64_t k = 0; k < g.e[2]; ++k) {
                    const int64_t gk = box.lo[2] + k;
                    op[k] = (*ctx.lookup)(label_value<P>(prow[gk * ctx.pred.strides.s[2]])) == c;
                    og[k] = (*ctx.lookup)(label_value<G>(grow[gk * ctx.gt.strides.s[2]])) == c;
                }
            }
    });
}

using ExtractFn = void (*)(const Context&, int, const ClassBox&, const BoxGrid&, std::vector<uint8_t>&,
                           std::vector<uint8_t>&, bool);

void evaluate_class(const Context& ctx, ExtractFn extract, int c, const ClassBox& box, bool parallel, double* row) {
    const auto& queries = *ctx.queries;
    const int nq = static_cast<int>(queries.size());
    ClassInput in;
    in.pred_empty = box.pred == 0;
    in.gt_empty = box.gt == 0;
    if (box.empty()) {
        // Neither mask has the class: no surface elements on either side.
        in.have_gt_side = true;
        for (int qi = 0; qi < nq; ++qi) {
            const SurfaceQuery& q = queries[qi];
            if (ctx.convention == Convention::Monai) row[5 + qi] = monai_stat(q, in);
            else if (ctx.convention == Convention::Medpy) row[5 + qi] = medpy_stat(q, in);
            else row[5 + qi] = deepmind_stat(q, in);
        }
        return;
    }
    BoxGrid g;
    for (int a = 0; a < 3; ++a) g.e[a] = box.hi[a] - box.lo[a] + 1;
    const int64_t n = g.size();
    std::vector<uint8_t> mp, mg;
    MaskRows rp{nullptr, g.e[1] * g.e[2], g.e[2]}, rg = rp;
    if (ctx.spec->binary && ctx.pred.dtype == DType::Bool && ctx.gt.dtype == DType::Bool &&
        ctx.pred.strides.s[2] == 1 && ctx.gt.strides.s[2] == 1) {
        // Binary bool masks with contiguous rows: read the box in place (bool bytes are 0 or 1).
        auto at = [&](const ArrayArg& x) {
            return MaskRows{x.data<uint8_t>() + box.lo[0] * x.strides.s[0] + box.lo[1] * x.strides.s[1] + box.lo[2],
                            x.strides.s[0], x.strides.s[1]};
        };
        rp = at(ctx.pred);
        rg = at(ctx.gt);
    } else {
        mp.resize(n);
        mg.resize(n);
        extract(ctx, c, box, g, mp, mg, parallel);
        rp.base = mp.data();
        rg.base = mg.data();
    }
    bool need_gt_side = false;
    for (const auto& q : queries) need_gt_side |= !q.directed || q.stat == SurfaceStat::SurfaceDice;
    in.have_gt_side = need_gt_side;

    EdtShape sh;
    sh.ndim = 3;
    for (int a = 0; a < 3; ++a) sh.spacing[a] = ctx.spacing[a];
    if (ctx.convention == Convention::DeepMind) {
        BoxGrid cg;
        for (int a = 0; a < 3; ++a) cg.e[a] = (a >= 3 - ctx.active) ? g.e[a] + 1 : g.e[a];
        corner_surface(g, cg, ctx.active, rp, ctx.area_table, in.pred, parallel);
        corner_surface(g, cg, ctx.active, rg, ctx.area_table, in.gt, parallel);
        for (int a = 0; a < 3; ++a) sh.shape[a] = cg.e[a];
    } else {
        voxel_surface(g, ctx.active, rp, in.pred, parallel);
        voxel_surface(g, ctx.active, rg, in.gt, parallel);
        for (int a = 0; a < 3; ++a) sh.shape[a] = g.e[a];
    }
    row[3] = static_cast<double>(in.pred.index.size());
    row[4] = static_cast<double>(in.gt.index.size());
    if (nq == 0) return;
    std::vector<double> scratch;
    distances_to(sh, in.gt, in.pred, scratch, parallel, ctx.path);
    if (need_gt_side) distances_to(sh, in.pred, in.gt, scratch, parallel, ctx.path);
    else in.gt.distance.clear();
    if (ctx.convention == Convention::DeepMind) {
        sort_by_distance_then_area(in.pred.distance, in.pred.weight);
        if (need_gt_side) sort_by_distance_then_area(in.gt.distance, in.gt.weight);
    }
    for (int qi = 0; qi < nq; ++qi) {
        const SurfaceQuery& q = queries[qi];
        if (ctx.convention == Convention::Monai) row[5 + qi] = monai_stat(q, in);
        else if (ctx.convention == Convention::Medpy) row[5 + qi] = medpy_stat(q, in);
        else row[5 + qi] = deepmind_stat(q, in);
    }
}

}  // namespace

std::vector<double> surface_metrics(const Layout& layout, int active, const ArrayArg& pred, const ArrayArg& gt,
                                    const ClassSpec& spec, const double spacing[3], Convention convention,
                                    const std::vector<SurfaceQuery>& queries, int path) {
    if (layout.ndim != 3) throw std::invalid_argument("surface_metrics expects a 3-axis layout");
    if (active < 1 || active > 3) throw std::invalid_argument("active axes must be 1, 2 or 3");
    if (convention == Convention::DeepMind && active < 2)
        throw std::invalid_argument("the deepmind convention needs 2-D or 3-D masks");
    const std::vector<ClassBox> boxes = class_boxes(layout, pred, gt, spec);
    const int k = spec.num_classes();
    const int width = 5 + static_cast<int>(queries.size());
    std::vector<double> out(static_cast<size_t>(k) * width, 0.0);
    const ClassLookup lookup(spec);
    Context ctx;
    ctx.layout = layout;
    ctx.active = active;
    ctx.pred = pred;
    ctx.gt = gt;
    ctx.spec = &spec;
    ctx.lookup = &lookup;
    for (int a = 0; a < 3; ++a) ctx.spacing[a] = spacing[a];
    ctx.convention = convention;
    ctx.queries = &queries;
    ctx.path = path;
    if (active == 3) {
        surfel_area_table_3d(spacing, ctx.area_table);
    } else {
        double lengths[16];
        surfel_length_table_2d(spacing + 1, lengths);
        for (int code = 0; code < 256; ++code) ctx.area_table[code] = code < 16 ? lengths[code] : 0.0;
    }
    for (int c = 0; c < k; ++c) {
        out[c * width + 0] = static_cast<double>(boxes[c].pred);
        out[c * width + 1] = static_cast<double>(boxes[c].gt);
        out[c * width + 2] = static_cast<double>(boxes[c].both);
    }
    const ExtractFn extract = detail::dispatch_labels(pred.dtype, [&](auto pt) {
        using P = typename decltype(pt)::type;
        return detail::dispatch_labels(gt.dtype, [&](auto gtag) -> ExtractFn {
            using G = typename decltype(gtag)::type;
            return &extract_masks<P, G>;
        });
    });
    if (k == 1) {
        evaluate_class(ctx, extract, 0, boxes[0], true, out.data());
        return out;
    }
    // Classes in parallel (largest boxes first, pulled from a shared counter), each one on a
    // single thread; every class writes only its own row, so results never depend on scheduling.
    std::vector<int> order(k);
    for (int c = 0; c < k; ++c) order[c] = c;
    auto volume = [&](int c) {
        const ClassBox& b = boxes[c];
        if (b.empty()) return int64_t(0);
        return (b.hi[0] - b.lo[0] + 1) * (b.hi[1] - b.lo[1] + 1) * (b.hi[2] - b.lo[2] + 1);
    };
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return volume(a) > volume(b); });
    std::atomic<int> next{0};
    const int threads = std::min(get_num_threads(), k);
    parallel_for(threads, 1, [&](int64_t, int64_t, int) {
        for (int i = next.fetch_add(1); i < k; i = next.fetch_add(1)) {
            const int c = order[i];
            evaluate_class(ctx, extract, c, boxes[c], false, out.data() + static_cast<size_t>(c) * width);
        }
    });
    return out;
}

}  // namespace medseg::cpu
