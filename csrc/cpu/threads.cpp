// The single thread-count knob shared by all CPU kernels.
#include <atomic>
#include <cstdlib>
#include <thread>

#include "medseg/parallel.h"

namespace medseg {
namespace {

int default_threads() {
    if (const char* env = std::getenv("MEDSEG_NUM_THREADS")) {
        const int n = std::atoi(env);
        if (n > 0) return n;
    }
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
        const int n = std::atoi(env);
        if (n > 0) return n;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

std::atomic<int>& thread_setting() {
    static std::atomic<int> setting{default_threads()};
    return setting;
}

}  // namespace

int get_num_threads() { return thread_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) { thread_setting().store(n > 0 ? n : default_threads(), std::memory_order_relaxed); }

}  // namespace medseg
