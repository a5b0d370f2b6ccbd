// State of the CUDA emulation shared by all emulated drivers (csrc/emu/cuda_runtime.h).
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>

namespace msf_emu {

cudaStream_t null_stream_replacement() {
    static const cudaStream_t s = [] {
        cudaStream_t created = nullptr;
        if (hipStreamCreate(&created) != hipSuccess || created == nullptr)
            throw std::runtime_error("CUDA emulation: could not create its stream");
        return created;
    }();
    return s;
}

LaunchLimits& launch_limits() {
    static LaunchLimits limits;
    return limits;
}

namespace {
std::atomic<long long> g_launches{0};
}

long long launches() { return g_launches.load(); }
void count_launch() { g_launches.fetch_add(1, std::memory_order_relaxed); }

void synchronize() {
    if (hipStreamSynchronize(null_stream_replacement()) != hipSuccess || hipDeviceSynchronize() != hipSuccess)
        throw std::runtime_error("CUDA emulation: synchronisation failed");
}

}  // namespace msf_emu
