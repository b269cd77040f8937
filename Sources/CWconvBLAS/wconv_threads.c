// OpenMP wait policy for oneDNN's thread pool (Debian's libdnnl runs on libgomp).
//
// libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, in its constructor, which runs before main:
// setting them from Swift is too late. By default its idle workers spin for a while after every
// parallel region; between wconv's many small primitives, and beside OpenBLAS's and the runtime's
// own threads, that spinning took the CPU the next op needed (a few-label job: 19 s instead of 4 s
// on 2 shared cores, docs/runtime.md). An entry in the executable's .preinit_array runs before any
// shared library's constructor, so the default becomes "passive" (idle workers sleep) unless the
// user chose a policy or spin count.
#include <stdlib.h>

static void wconv_omp_wait_policy(int argc, char **argv, char **envp) {
    (void)argc; (void)argv; (void)envp;
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "passive", 0);
}

#if defined(__linux__) && defined(__ELF__)
__attribute__((section(".preinit_array"), used))
static void (*const wconv_preinit_omp)(int, char **, char **) = wconv_omp_wait_policy;
#endif
