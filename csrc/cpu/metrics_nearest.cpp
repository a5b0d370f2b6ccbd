// Nearest-neighbour surface distances: cell grid with a sorted offset list, k-d tree for the rest.
#include "metrics_nearest.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "distance_cpu.h"
#include "medseg/parallel.h"

namespace medseg::cpu {

namespace {

constexpr double kInfD = std::numeric_limits<double>::infinity();
// Lower bounds are real squared distances computed in double; a candidate can only be skipped
// when its bound exceeds the best value by far more than the rounding of either.
constexpr double kShrink = 1.0 - 1e-9;
constexpr int64_t kLeaf = 8;          // k-d tree leaf size
constexpr int64_t kBlock = 512;       // queries per work item (fixed: results never depend on it)
constexpr double kCellMm = 3.0;       // target physical cell edge before density adjustment

struct Point {
    int32_t c[3];
};

// fl(fl(d * s)^2) for d = 0 .. n-1: the EDT's per-axis term, bit for bit.
std::vector<double> term_table(int64_t n, double s) {
    std::vector<double> t(static_cast<size_t>(std::max<int64_t>(n, 1)));
    for (int64_t d = 0; d < n; ++d) {
        const double x = static_cast<double>(d) * s;
        t[d] = x * x;
    }
    return t;
}

struct Tables {
    std::vector<double> t[3];
    double operator()(const int32_t* q, const int32_t* p) const {
        const double a = t[0][std::abs(q[0] - p[0])];
        const double b = t[1][std::abs(q[1] - p[1])];
        const double c = t[2][std::abs(q[2] - p[2])];
        return (a + b) + c;
    }
};

Point decode(int64_t lin, const int64_t ext[3]) {
    Point p;
    p.c[2] = static_cast<int32_t>(lin % ext[2]);
    lin /= ext[2];
    p.c[1] = static_cast<int32_t>(lin % ext[1]);
    p.c[0] = static_cast<int32_t>(lin / ext[1]);
    return p;
}

// Sites bucketed by cell (counting sort), plus the offsets to visit in increasing lower bound.
struct CellGrid {
    int64_t cell[3], dims[3];
    std::vector<int32_t> start;     // CSR over cells, size cells + 1
    std::vector<Point> points;      // sites in cell order
    struct Offset {
        int32_t d[3];
        double lb;                  // real squared lower bound between the two cells' voxels
    };
    std::vector<Offset> offsets;
    double certified = kInfD;       // every site outside the listed cells is at least this far (squared)

    void build(const int64_t ext[3], const double sp[3], const std::vector<Point>& sites) {
        // Cell edge about kCellMm, enlarged while the grid has many more cells than sites.
        double len = kCellMm;
        for (;;) {
            int64_t total = 1;
            for (int a = 0; a < 3; ++a) {
                cell[a] = std::max<int64_t>(1, std::min<int64_t>(ext[a], std::llround(len / sp[a])));
                dims[a] = (ext[a] + cell[a] - 1) / cell[a];
                total *= dims[a];
            }
            if (total <= 8 * static_cast<int64_t>(sites.size()) + 4096) break;
            len *= 1.5;
        }
        const int64_t cells = dims[0] * dims[1] * dims[2];
        start.assign(static_cast<size_t>(cells + 1), 0);
        std::vector<int32_t> id(sites.size());
        for (size_t i = 0; i < sites.size(); ++i) {
            const Point& p = sites[i];
            id[i] = static_cast<int32_t>((p.c[0] / cell[0] * dims[1] + p.c[1] / cell[1]) * dims[2] + p.c[2] / cell[2]);
            ++start[id[i] + 1];
        }
        for (int64_t c = 0; c < cells; ++c) start[c + 1] += start[c];
        std::vector<int32_t> fill(start.begin(), start.end() - 1);
        points.resize(sites.size());
        for (size_t i = 0; i < sites.size(); ++i) points[fill[id[i]]++] = sites[i];

        // Offsets within a physical radius of a few cells, sorted by their lower bound.
        const double radius = 4.0 * len;
        int64_t reach[3];
        auto gap2 = [&](int a, int64_t d) {   // real squared gap along axis a for a cell offset d
            const int64_t g = d == 0 ? 0 : std::abs(d) * cell[a] - (cell[a] - 1);
            const double x = static_cast<double>(g) * sp[a];
            return x * x;
        };
        certified = kInfD;
        for (int a = 0; a < 3; ++a) {
            reach[a] = std::min<int64_t>(dims[a] - 1, static_cast<int64_t>(std::ceil(radius / (cell[a] * sp[a]))) + 1);
            if (reach[a] < dims[a] - 1) certified = std::min(certified, gap2(a, reach[a] + 1));
        }
        offsets.clear();
        for (int64_t i = -reach[0]; i <= reach[0]; ++i)
            for (int64_t j = -reach[1]; j <= reach[1]; ++j)
                for (int64_t k = -reach[2]; k <= reach[2]; ++k) {
                    const double lb = gap2(0, i) + gap2(1, j) + gap2(2, k);
                    if (lb >= certified) continue;
                    offsets.push_back({{static_cast<int32_t>(i), static_cast<int32_t>(j), static_cast<int32_t>(k)}, lb});
                }
        std::stable_sort(offsets.begin(), offsets.end(), [](const Offset& a, const Offset& b) { return a.lb < b.lb; });
    }

    // Best squared distance; returns whether it is certified (else the k-d tree continues).
    bool query(const Point& q, const Tables& tab, double& best, int64_t& work) const {
        const int64_t cq[3] = {q.c[0] / cell[0], q.c[1] / cell[1], q.c[2] / cell[2]};
        for (const Offset& o : offsets) {
            if (o.lb * kShrink > best) return true;
            const int64_t c0 = cq[0] + o.d[0], c1 = cq[1] + o.d[1], c2 = cq[2] + o.d[2];
            if (c0 < 0 || c1 < 0 || c2 < 0 || c0 >= dims[0] || c1 >= dims[1] || c2 >= dims[2]) continue;
            const int64_t c = (c0 * dims[1] + c1) * dims[2] + c2;
            const int32_t b = start[c], e = start[c + 1];
            ++work;
            for (int32_t i = b; i < e; ++i) best = std::min(best, tab(q.c, points[i].c));
            work += e - b;
        }
        return best < certified * kShrink;
    }
};

// Point k-d tree stored implicitly: node [lo, hi) splits at mid = (lo + hi) / 2 on axis[mid];
// points left of mid are <= the median along that axis, points right of it are >=.
struct KdTree {
    std::vector<Point> pts;
    std::vector<int8_t> axis;
    const double* spacing = nullptr;

    void build(const std::vector<Point>& sites, const double sp[3]) {
        pts = sites;
        axis.assign(pts.size(), 0);
        spacing = sp;
        split(0, static_cast<int64_t>(pts.size()));
    }
    void split(int64_t lo, int64_t hi) {
        while (hi - lo > kLeaf) {
            // Split the widest axis (physical extent; sampled on large nodes).
            int32_t mn[3] = {INT32_MAX, INT32_MAX, INT32_MAX}, mx[3] = {INT32_MIN, INT32_MIN, INT32_MIN};
            const int64_t step = std::max<int64_t>(1, (hi - lo) / 1024);
            for (int64_t i = lo; i < hi; i += step)
                for (int a = 0; a < 3; ++a) {
                    mn[a] = std::min(mn[a], pts[i].c[a]);
                    mx[a] = std::max(mx[a], pts[i].c[a]);
                }
            int best = 0;
            double widest = -1.0;
            for (int a = 0; a < 3; ++a) {
                const double w = static_cast<double>(mx[a] - mn[a]) * spacing[a];
                if (w > widest) widest = w, best = a;
            }
            const int64_t mid = lo + (hi - lo) / 2;
            std::nth_element(pts.begin() + lo, pts.begin() + mid, pts.begin() + hi,
                             [best](const Point& a, const Point& b) { return a.c[best] < b.c[best]; });
            axis[mid] = static_cast<int8_t>(best);
            split(lo, mid);
            lo = mid + 1;
        }
    }
    // off[a]: squared gap along axis a between q and the node's region; rd: their sum (a lower
    // bound of every point of the node). Incremental bounds of Arya & Mount, "Algorithms for
    // fast vector quantization" (1993).
    void query(int64_t lo, int64_t hi, const Point& q, const Tables& tab, double off[3], double rd, double& best,
               int64_t& work) const {
        while (hi - lo > kLeaf) {
            const int64_t mid = lo + (hi - lo) / 2;
            const Point& p = pts[mid];
            const int a = axis[mid];
            best = std::min(best, tab(q.c, p.c));
            ++work;
            const int32_t diff = q.c[a] - p.c[a];
            const double gap = tab.t[a][std::abs(diff)];
            const double old = off[a];
            const double far_rd = rd - old + gap;
            // Near side first; the far side only when its region can hold a closer point.
            if (diff >= 0) query(mid + 1, hi, q, tab, off, rd, best, work);
            else query(lo, mid, q, tab, off, rd, best, work);
            if (far_rd * kShrink > best) return;
            off[a] = gap;
            if (diff >= 0) hi = mid;
            else lo = mid + 1;
            rd = far_rd;
            // Tail-iterate into the far side; restore off[a] for the caller afterwards.
            query(lo, hi, q, tab, off, rd, best, work);
            off[a] = old;
            return;
        }
        for (int64_t i = lo; i < hi; ++i) best = std::min(best, tab(q.c, pts[i].c));
        work += hi - lo;
    }
};

}  // namespace

bool nearest_distances(const int64_t ext[3], const double spacing[3], const std::vector<int64_t>& sites,
                       const std::vector<int64_t>& queries, std::vector<double>& out, int64_t budget,
                       bool parallel) {
    const int64_t nq = static_cast<int64_t>(queries.size());
    out.assign(queries.size(), kInfD);
    if (sites.empty() || nq == 0) return true;
    Tables tab;
    for (int a = 0; a < 3; ++a) tab.t[a] = term_table(ext[a], spacing[a]);
    std::vector<Point> pts(sites.size());
    maybe_parallel(parallel, static_cast<int64_t>(sites.size()), 4096, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) pts[i] = decode(sites[i], ext);
    });
    auto now = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count() * 1e3; };
    double t0 = now();
    CellGrid grid;
    grid.build(ext, spacing, pts);
    if (std::getenv("MSF_PROF")) std::fprintf(stderr, "  build %.2f\n", now() - t0);
    t0 = now();

    // Phase 1: the grid. Uncertified queries keep their best value and go to the k-d tree.
    const int64_t blocks = (nq + kBlock - 1) / kBlock;
    std::vector<uint8_t> pending(static_cast<size_t>(nq), 0);
    std::atomic<int64_t> spent{0};
    std::atomic<bool> over{false};
    std::atomic<int64_t> open{0};
    maybe_parallel(parallel, blocks, 1, [&](int64_t b0, int64_t b1, int) {
        int64_t local_open = 0;
        for (int64_t blk = b0; blk < b1 && !over.load(std::memory_order_relaxed); ++blk) {
            int64_t work = 0;
            const int64_t q1 = std::min(nq, (blk + 1) * kBlock);
            for (int64_t i = blk * kBlock; i < q1; ++i) {
                double best = kInfD;
                if (!grid.query(decode(queries[i], ext), tab, best, work)) {
                    pending[i] = 1;
                    ++local_open;
                }
                out[i] = best;
            }
            if (spent.fetch_add(work) + work > budget) over.store(true);
        }
        open.fetch_add(local_open);
    });
    if (std::getenv("MSF_PROF")) std::fprintf(stderr, "  phase1 %.2f ms ", now() - t0);
    t0 = now();
    if (std::getenv("MSF_PROF")) std::fprintf(stderr, "  phase1 spent %lld budget %lld open %lld offsets %zu cell %lld %lld %lld\n", (long long)spent.load(), (long long)budget, (long long)open.load(), grid.offsets.size(), (long long)grid.cell[0], (long long)grid.cell[1], (long long)grid.cell[2]);
    if (over.load()) return false;
    if (open.load() > 0) {
        KdTree tree;
        tree.build(pts, spacing);
        const int64_t n = static_cast<int64_t>(tree.pts.size());
        maybe_parallel(parallel, blocks, 1, [&](int64_t b0, int64_t b1, int) {
            for (int64_t blk = b0; blk < b1 && !over.load(std::memory_order_relaxed); ++blk) {
                int64_t work = 0;
                const int64_t q1 = std::min(nq, (blk + 1) * kBlock);
                for (int64_t i = blk * kBlock; i < q1; ++i) {
                    if (!pending[i]) continue;
                    double best = out[i];
                    double off[3] = {0.0, 0.0, 0.0};
                    tree.query(0, n, decode(queries[i], ext), tab, off, 0.0, best, work);
                    out[i] = best;
                    if (work > budget) break;
                }
                if (spent.fetch_add(work) + work > budget) over.store(true);
            }
        });
        if (over.load()) return false;
        if (std::getenv("MSF_PROF")) std::fprintf(stderr, "  tree %.2f ms spent %lld\n", now() - t0, (long long)spent.load());
    }
    maybe_parallel(parallel, nq, 4096, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) out[i] = std::sqrt(out[i]);
    });
    return true;
}

}  // namespace medseg::cpu
