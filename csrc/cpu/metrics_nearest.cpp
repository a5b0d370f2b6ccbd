// Nearest-neighbour surface distances: cell grid with a sorted offset list, a tree of cell boxes for the rest.
#include "metrics_nearest.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
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
constexpr double kCellMm = 3.0;       // target physical cell edge before density adjustment

struct Point {
    int32_t c[3];
};

// Points stored as separate coordinate arrays, for the scanning loops below.
struct SoA {
    std::vector<int32_t> c[3];
    void resize(size_t n) {
        for (auto& v : c) v.resize(n);
    }
    void set(size_t i, const Point& p) {
        for (int a = 0; a < 3; ++a) c[a][i] = p.c[a];
    }
};

// min(best, min over i in [b, e) of ((dz*s0)^2 + (dy*s1)^2) + (dx*s2)^2), each product rounded
// as in the EDT (SSE2 has no fused multiply-add, so the two lanes round exactly as scalar code).
inline double scan_min(const int32_t* z, const int32_t* y, const int32_t* x, int64_t b, int64_t e, const int32_t q[3],
                       const double s[3], double best) {
    int64_t i = b;
#if defined(__SSE2__)
    const __m128i qz = _mm_set1_epi32(q[0]), qy = _mm_set1_epi32(q[1]), qx = _mm_set1_epi32(q[2]);
    const __m128d s0 = _mm_set1_pd(s[0]), s1 = _mm_set1_pd(s[1]), s2 = _mm_set1_pd(s[2]);
    __m128d m0 = _mm_set1_pd(best), m1 = m0;
    auto two = [&](int64_t j) {
        const __m128i pz = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(z + j));
        const __m128i py = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(y + j));
        const __m128i px = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + j));
        const __m128d a = _mm_mul_pd(_mm_cvtepi32_pd(_mm_sub_epi32(qz, pz)), s0);
        const __m128d bb = _mm_mul_pd(_mm_cvtepi32_pd(_mm_sub_epi32(qy, py)), s1);
        const __m128d c = _mm_mul_pd(_mm_cvtepi32_pd(_mm_sub_epi32(qx, px)), s2);
        return _mm_add_pd(_mm_add_pd(_mm_mul_pd(a, a), _mm_mul_pd(bb, bb)), _mm_mul_pd(c, c));
    };
    for (; i + 4 <= e; i += 4) {
        m0 = _mm_min_pd(m0, two(i));
        m1 = _mm_min_pd(m1, two(i + 2));
    }
    for (; i + 2 <= e; i += 2) m0 = _mm_min_pd(m0, two(i));
    m0 = _mm_min_pd(m0, m1);
    best = std::min(_mm_cvtsd_f64(m0), _mm_cvtsd_f64(_mm_unpackhi_pd(m0, m0)));
#endif
    for (; i < e; ++i) {
        const double a = static_cast<double>(q[0] - z[i]) * s[0];
        const double bb = static_cast<double>(q[1] - y[i]) * s[1];
        const double c = static_cast<double>(q[2] - x[i]) * s[2];
        best = std::min(best, (a * a + bb * bb) + c * c);
    }
    return best;
}

// Linear index -> (i, j, k); 32-bit division when the grid allows it (the common case, faster).
inline Point decode(int64_t lin, const int64_t ext[3]) {
    Point p;
    if (lin < (int64_t(1) << 32) && ext[1] * ext[2] < (int64_t(1) << 32)) {
        const uint32_t l = static_cast<uint32_t>(lin), e2 = static_cast<uint32_t>(ext[2]);
        const uint32_t row = l / e2, e1 = static_cast<uint32_t>(ext[1]);
        p.c[2] = static_cast<int32_t>(l - row * e2);
        p.c[0] = static_cast<int32_t>(row / e1);
        p.c[1] = static_cast<int32_t>(row - static_cast<uint32_t>(p.c[0]) * e1);
        return p;
    }
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
    SoA points;                     // sites in cell order
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
            if (total <= 2 * static_cast<int64_t>(sites.size()) + 4096) break;
            len *= 1.5;
        }
        const int64_t cells = dims[0] * dims[1] * dims[2];
        for (int a = 0; a < 3; ++a) {
            index_of[a].resize(ext[a]);
            for (int64_t x = 0; x < ext[a]; ++x) index_of[a][x] = static_cast<int32_t>(x / cell[a]);
        }
        start.assign(static_cast<size_t>(cells + 1), 0);
        std::vector<int32_t> id(sites.size());
        for (size_t i = 0; i < sites.size(); ++i) {
            id[i] = static_cast<int32_t>(cell_of(sites[i]));
            ++start[id[i] + 1];
        }
        for (int64_t c = 0; c < cells; ++c) start[c + 1] += start[c];
        std::vector<int32_t> fill(start.begin(), start.end() - 1);
        points.resize(sites.size());
        for (size_t i = 0; i < sites.size(); ++i) points.set(fill[id[i]]++, sites[i]);

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

    std::vector<int32_t> index_of[3];   // voxel coordinate -> cell coordinate, per axis
    int64_t cell_of(const Point& p) const {
        return (static_cast<int64_t>(index_of[0][p.c[0]]) * dims[1] + index_of[1][p.c[1]]) * dims[2] +
               index_of[2][p.c[2]];
    }

    // All queries of one cell share a buffer of the sites of the cells they visit, gathered in
    // offset order (group lower bounds never decrease) and extended only as far as some query
    // of the cell needs. Each query scans groups until the next group's bound exceeds its best.
    struct Scratch {
        SoA buf;
        size_t used = 0;
        struct Group {
            int64_t end;            // end in buf
            double lb;              // cell-to-cell lower bound (non-decreasing over groups)
            int32_t lo[3], hi[3];   // tight box of the group's sites
        };
        std::vector<Group> groups;
    };
    // best[i] for queries qs[0..n) of cell `cq`; pending[i] = 1 when not certified.
    void query_cell(int64_t cq, const Point* qs, int64_t n, const double sp[3], double* best, uint8_t* pending,
                    Scratch& sc, int64_t& work) const {
        const int64_t c0 = cq / (dims[1] * dims[2]), c1 = cq / dims[2] % dims[1], c2 = cq % dims[2];
        sc.used = 0;
        sc.groups.clear();
        size_t next = 0;
        auto extend = [&]() -> bool {
            while (next < offsets.size()) {
                const Offset& o = offsets[next++];
                ++work;
                const int64_t a = c0 + o.d[0], b = c1 + o.d[1], c = c2 + o.d[2];
                if (a < 0 || b < 0 || c < 0 || a >= dims[0] || b >= dims[1] || c >= dims[2]) continue;
                const int64_t id = (a * dims[1] + b) * dims[2] + c;
                const int32_t pb = start[id], pe = start[id + 1];
                if (pb == pe) continue;
                const size_t need = sc.used + static_cast<size_t>(pe - pb);
                if (sc.buf.c[0].size() < need) sc.buf.resize(std::max(need, 2 * sc.buf.c[0].size()));
                typename Scratch::Group grp;
                grp.end = static_cast<int64_t>(need);
                grp.lb = o.lb;
                for (int ax = 0; ax < 3; ++ax) {
                    const int32_t* src = points.c[ax].data();
                    int32_t* dst = sc.buf.c[ax].data() + sc.used;
                    int32_t lo = INT32_MAX, hi = INT32_MIN;
                    for (int32_t i = pb; i < pe; ++i) {
                        const int32_t v = src[i];
                        dst[i - pb] = v;
                        lo = std::min(lo, v);
                        hi = std::max(hi, v);
                    }
                    grp.lo[ax] = lo;
                    grp.hi[ax] = hi;
                }
                sc.used = need;
                work += pe - pb;
                sc.groups.push_back(grp);
                return true;
            }
            return false;
        };
        for (int64_t i = 0; i < n; ++i) {
            double b = kInfD;
            int64_t pos = 0;
            size_t g = 0;
            bool done = false;
            for (;;) {
                if (g == sc.groups.size() && !extend()) break;
                const auto& grp = sc.groups[g];
                if (grp.lb * kShrink > b) {
                    done = true;
                    break;
                }
                const int64_t end = grp.end;
                // The query's own bound to the group's box: skip groups that cannot improve.
                double qb = 0.0;
                for (int ax = 0; ax < 3; ++ax) {
                    const int32_t gap = std::max({grp.lo[ax] - qs[i].c[ax], qs[i].c[ax] - grp.hi[ax], 0});
                    const double x = static_cast<double>(gap) * sp[ax];
                    qb += x * x;
                }
                if (qb * kShrink <= b) {
                    b = scan_min(sc.buf.c[0].data(), sc.buf.c[1].data(), sc.buf.c[2].data(), pos, end, qs[i].c, sp, b);
                    work += end - pos;
                }
                ++work;
                pos = end;
                ++g;
            }
            best[i] = b;
            pending[i] = !(done || b < certified * kShrink);
        }
    }
};

// Bounding-box tree over the grid's occupied cells (each cell with the tight box of its sites),
// for the queries the offset list leaves open (far from every site). Building it touches cells,
// not points, so it is cheap; a query descends nearer child first and skips every node whose box
// is farther than its best; leaves scan their cells' sites.
struct CellTree {
    struct Node {
        int32_t lo[3], hi[3];     // voxel box of the sites below
        int32_t begin, end;       // range in `cells`
        int32_t left = -1, right = -1;
    };
    std::vector<int32_t> cells;   // occupied cell ids, in tree order
    std::vector<Node> nodes;
    std::vector<std::array<int32_t, 6>> box;   // per occupied cell (indexed like `cells` before permutation)
    const CellGrid* grid = nullptr;
    const double* spacing = nullptr;
    static constexpr int kLeafCells = 4;

    void build(const CellGrid& g, const double sp[3]) {
        grid = &g;
        spacing = sp;
        const int64_t ncell = g.dims[0] * g.dims[1] * g.dims[2];
        for (int64_t c = 0; c < ncell; ++c) {
            const int32_t b = g.start[c], e = g.start[c + 1];
            if (b == e) continue;
            std::array<int32_t, 6> bb = {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MIN, INT32_MIN, INT32_MIN};
            for (int32_t i = b; i < e; ++i)
                for (int a = 0; a < 3; ++a) {
                    bb[a] = std::min(bb[a], g.points.c[a][i]);
                    bb[3 + a] = std::max(bb[3 + a], g.points.c[a][i]);
                }
            cells.push_back(static_cast<int32_t>(c));
            box.push_back(bb);
        }
        std::vector<int32_t> order(cells.size());
        std::iota(order.begin(), order.end(), 0);
        nodes.reserve(2 * cells.size() / kLeafCells + 2);
        split(order, 0, static_cast<int32_t>(order.size()));
        std::vector<int32_t> permuted(cells.size());
        std::vector<std::array<int32_t, 6>> pbox(cells.size());
        for (size_t i = 0; i < order.size(); ++i) {
            permuted[i] = cells[order[i]];
            pbox[i] = box[order[i]];
        }
        cells.swap(permuted);
        box.swap(pbox);
    }
    int32_t split(std::vector<int32_t>& order, int32_t begin, int32_t end) {
        Node n;
        for (int a = 0; a < 3; ++a) n.lo[a] = INT32_MAX, n.hi[a] = INT32_MIN;
        for (int32_t i = begin; i < end; ++i)
            for (int a = 0; a < 3; ++a) {
                n.lo[a] = std::min(n.lo[a], box[order[i]][a]);
                n.hi[a] = std::max(n.hi[a], box[order[i]][3 + a]);
            }
        n.begin = begin;
        n.end = end;
        const int32_t id = static_cast<int32_t>(nodes.size());
        nodes.push_back(n);
        if (end - begin <= kLeafCells) return id;
        int axis = 0;
        double widest = -1.0;
        for (int a = 0; a < 3; ++a) {
            const double w = static_cast<double>(n.hi[a] - n.lo[a]) * spacing[a];
            if (w > widest) widest = w, axis = a;
        }
        const int32_t mid = begin + (end - begin) / 2;
        std::nth_element(order.begin() + begin, order.begin() + mid, order.begin() + end, [&](int32_t x, int32_t y) {
            return box[x][axis] + box[x][3 + axis] < box[y][axis] + box[y][3 + axis];
        });
        const int32_t left = split(order, begin, mid);
        const int32_t right = split(order, mid, end);
        nodes[id].left = left;
        nodes[id].right = right;
        return id;
    }
    // Real squared distance from q to a box, a lower bound for every site in it.
    double bound(const int32_t lo[3], const int32_t hi[3], const Point& q) const {
        double sum = 0.0;
        for (int a = 0; a < 3; ++a) {
            const int32_t g = std::max({lo[a] - q.c[a], q.c[a] - hi[a], 0});
            const double x = static_cast<double>(g) * spacing[a];
            sum += x * x;
        }
        return sum;
    }
    void query(int32_t id, const Point& q, double& best, int64_t& work) const {
        const Node& n = nodes[id];
        ++work;
        if (n.left < 0) {
            for (int32_t i = n.begin; i < n.end; ++i) {
                const int32_t c = cells[i];
                const int32_t b = grid->start[c], e = grid->start[c + 1];
                if (bound(&box[i][0], &box[i][3], q) * kShrink > best) continue;
                best = scan_min(grid->points.c[0].data(), grid->points.c[1].data(), grid->points.c[2].data(), b, e,
                                q.c, spacing, best);
                work += e - b;
            }
            return;
        }
        const double bl = bound(nodes[n.left].lo, nodes[n.left].hi, q);
        const double br = bound(nodes[n.right].lo, nodes[n.right].hi, q);
        const int32_t first = bl <= br ? n.left : n.right, second = bl <= br ? n.right : n.left;
        const double b1 = std::min(bl, br), b2 = std::max(bl, br);
        if (b1 * kShrink > best) return;
        query(first, q, best, work);
        if (b2 * kShrink > best) return;
        query(second, q, best, work);
    }
};


// Calls fn(block) for blocks 0..n-1, pulled from a shared counter (dynamic balance: far queries
// cost far more than near ones). Each block's outputs depend only on its own inputs.
template <typename Fn>
void for_blocks(int threads, int64_t n, Fn&& fn) {
    auto blocks = [&](int64_t begin, int64_t end, int worker) {
        for (int64_t b = begin; b < end; ++b) fn(b, worker);
    };
    if (threads > 1) parallel_for_dynamic(n, 1, blocks);
    else blocks(0, n, 0);
}

}  // namespace

bool nearest_distances(const int64_t ext[3], const double spacing[3], const std::vector<int64_t>& sites,
                       const std::vector<int64_t>& queries, std::vector<double>& out, int64_t budget,
                       bool parallel) {
    const int64_t nq = static_cast<int64_t>(queries.size());
    out.assign(queries.size(), kInfD);
    if (sites.empty() || nq == 0) return true;
    const int threads = parallel ? std::max(1, get_num_threads()) : 1;
    std::vector<Point> pts(sites.size());
    maybe_parallel(threads > 1, static_cast<int64_t>(sites.size()), 16384, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) pts[i] = decode(sites[i], ext);
    });
    CellGrid grid;
    grid.build(ext, spacing, pts);

    // Phase 1: the grid, query cell by query cell (queries counting-sorted by cell; a query's
    // result never depends on the others, so neither the order nor the thread count matters).
    const int64_t cells = grid.dims[0] * grid.dims[1] * grid.dims[2];
    std::vector<Point> qpts(static_cast<size_t>(nq));
    std::vector<int32_t> qstart(static_cast<size_t>(cells + 1), 0), qorder(static_cast<size_t>(nq));
    std::vector<int32_t> qcell(static_cast<size_t>(nq));
    maybe_parallel(threads > 1, nq, 16384, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) {
            qpts[i] = decode(queries[i], ext);
            qcell[i] = static_cast<int32_t>(grid.cell_of(qpts[i]));
        }
    });
    for (int64_t i = 0; i < nq; ++i) ++qstart[qcell[i] + 1];
    std::vector<int32_t> occupied;
    for (int64_t c = 0; c < cells; ++c) {
        if (qstart[c + 1]) occupied.push_back(static_cast<int32_t>(c));
        qstart[c + 1] += qstart[c];
    }
    {
        std::vector<int32_t> fill(qstart.begin(), qstart.end() - 1);
        for (int64_t i = 0; i < nq; ++i) qorder[fill[qcell[i]]++] = static_cast<int32_t>(i);
    }
    // Work is summed per block and the search abandoned once the total passes the budget; the
    // total is a function of the inputs, so the decision never depends on scheduling.
    std::atomic<int64_t> spent{0};
    std::atomic<bool> over{false};
    auto charge = [&](int64_t work) {
        if (spent.fetch_add(work) + work > budget) over.store(true);
    };
    const int64_t ncells = static_cast<int64_t>(occupied.size());
    constexpr int64_t kCellsPerBlock = 32;
    std::vector<uint8_t> pending(static_cast<size_t>(nq), 0);
    struct WorkerBuffers {
        CellGrid::Scratch sc;
        std::vector<Point> qs;
        std::vector<double> best;
        std::vector<uint8_t> pend;
    };
    std::vector<WorkerBuffers> buffers(static_cast<size_t>(threads));
    for_blocks(threads, (ncells + kCellsPerBlock - 1) / kCellsPerBlock, [&](int64_t blk, int w) {
        if (over.load(std::memory_order_relaxed)) return;
        WorkerBuffers& wb = buffers[w];
        CellGrid::Scratch& sc = wb.sc;
        std::vector<Point>& qs = wb.qs;
        std::vector<double>& best = wb.best;
        std::vector<uint8_t>& pend = wb.pend;
        int64_t work = 0;
        for (int64_t ci = blk * kCellsPerBlock; ci < std::min(ncells, (blk + 1) * kCellsPerBlock); ++ci) {
            const int64_t c = occupied[ci];
            const int32_t qb = qstart[c], qe = qstart[c + 1];
            const int64_t n = qe - qb;
            qs.resize(n);
            best.resize(n);
            pend.resize(n);
            for (int64_t i = 0; i < n; ++i) qs[i] = qpts[qorder[qb + i]];
            grid.query_cell(c, qs.data(), n, spacing, best.data(), pend.data(), sc, work);
            for (int64_t i = 0; i < n; ++i) {
                const int32_t q = qorder[qb + i];
                out[q] = pend[i] ? best[i] : std::sqrt(best[i]);
                pending[q] = pend[i];
            }
        }
        charge(work);
    });
    if (over.load()) return false;

    // Phase 2: queries the offset list could not certify, in the cell-box tree.
    std::vector<int32_t> open;
    for (int64_t i = 0; i < nq; ++i)
        if (pending[i]) open.push_back(static_cast<int32_t>(i));
    if (open.empty()) return true;
    CellTree tree;
    tree.build(grid, spacing);
    const int64_t nopen = static_cast<int64_t>(open.size());
    constexpr int64_t kQueriesPerBlock = 64;
    for_blocks(threads, (nopen + kQueriesPerBlock - 1) / kQueriesPerBlock, [&](int64_t blk, int) {
        if (over.load(std::memory_order_relaxed)) return;
        int64_t work = 0;
        for (int64_t k = blk * kQueriesPerBlock; k < std::min(nopen, (blk + 1) * kQueriesPerBlock); ++k) {
            const int32_t i = open[k];
            double best = out[i];
            tree.query(0, qpts[i], best, work);
            out[i] = std::sqrt(best);
            if (work > budget) break;
        }
        charge(work);
    });
    return !over.load();
}

}  // namespace medseg::cpu
