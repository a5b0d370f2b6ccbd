// Controls of the CUDA emulation that its bindings expose (plain C++: no HIP-CPU headers, so the
// pybind11 units of the emulated module compile at their usual cost).
#pragma once

#include <cstdint>
#include <vector>

namespace msf_emu {

// Launch-shape overrides for the shape-independence tests (0 = as the driver asks):
// `max_grid` caps the blocks that medseg::cuda::fixed_grid() returns (the drivers size their
// per-block buffers from that same value, and their kernels stride over the grid);
// `max_block` caps the threads per block of the launches that ask for it through
// medseg::cuda::block_size() (rounded down to a multiple of 32, at least 32).
struct LaunchLimits {
    int max_grid = 0;
    int max_block = 0;
};
LaunchLimits& launch_limits();

long long launches();   // kernels launched so far in this process (tests check a driver ran kernels)
void count_launch();

// Wait for all emulated work (the bindings' Python wrapper calls it when a driver returns: the
// caller then reads the results on the host, as torch would after a stream synchronisation).
void synchronize();

// Defect probes (csrc/emu/probes.cpp). `raw`: HIP-CPU's own call instead of the mapped one.
std::vector<int> probe_atomics(bool raw);                     // old min, new min, old max, new max
std::vector<int64_t> probe_malloc_async(int64_t n);           // error, pointer null after the call, wrong values
int64_t probe_stream_order(int tries, int64_t n, bool raw);   // tries in which kernel 2 ran too early

}  // namespace msf_emu
