#include <oneapi/dnnl/dnnl.h>

// oneDNN (Debian's libdnnl, OpenMP build) runs its primitives on libgomp's thread pool. The thread
// count is libgomp's per-thread ICV: wconv sets it on the thread that executes a primitive. Declared
// here because omp.h sits in the C compiler's own include folder, which Swift's clang may not have.
int omp_get_max_threads(void);
void omp_set_num_threads(int n);
