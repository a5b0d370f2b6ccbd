// What the CUDA runtime reports; never throws so that import works on machines without a GPU.
#include <cuda_runtime.h>

#include "intensity_cuda.h"

namespace medseg::cuda {

int device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" error
        return 0;
    }
    return count;
}

int runtime_version() {
    int version = 0;
    cudaRuntimeGetVersion(&version);
    return version;
}

}  // namespace medseg::cuda
