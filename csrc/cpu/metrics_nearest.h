// Exact directed surface distances by nearest-neighbour search over the other surface's points,
// the fast path of the surface metrics (the EDT over the union box is the fallback).
//
// The squared distance of an offset (dz, dy, dx) in voxels is evaluated exactly as the separable
// EDT evaluates it, ((dz*s0)^2 + (dy*s1)^2) + (dx*s2)^2 in double, each term rounded as
// fl(fl(d*s)^2), and the search returns the minimum of these rounded values over all sites, so a
// query's result is a deterministic function of the two point sets. The EDT of the fallback path
// (edt_from_sites_exact) returns the same minimum: both paths give bit-identical distances.
//
// Search: sites are bucketed in a uniform grid of cells (about 3 mm, coarser when sites are
// sparse). The queries of one cell share a buffer of the sites of the cells they visit, gathered
// in increasing order of the cell-to-cell lower bound (a precomputed, sorted offset list); each
// query scans them until the next cell's bound exceeds its best distance, skipping cells whose
// tight site box is farther than that. Queries the list cannot certify (far from every site)
// finish in a tree of occupied cells' boxes, started with the best distance found so far.
// Lower bounds are compared with a relative margin of 1e-9, far above rounding, so pruning never
// drops the exact minimum.
#pragma once

#include <cstdint>
#include <vector>

namespace medseg::cpu {

// Distances (sqrt of the minimum squared distance, in mm) from each query to the nearest site.
// `ext` are the grid extents; sites and queries are linear indices (i * ext[1] + j) * ext[2] + k.
// Work (distance evaluations and visited cells/nodes) is capped at `budget`: returns false when
// the search would exceed it (the caller then uses the EDT). The decision depends only on the
// inputs, never on the thread count. With no site every distance is +inf.
bool nearest_distances(const int64_t ext[3], const double spacing[3], const std::vector<int64_t>& sites,
                       const std::vector<int64_t>& queries, std::vector<double>& out, int64_t budget,
                       bool parallel);

}  // namespace medseg::cpu
