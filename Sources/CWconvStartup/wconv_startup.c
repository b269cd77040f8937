// libgomp's wait policy for the `wconv` executable (oneDNN runs on libgomp's thread pool).
//
// By default libgomp's idle workers spin ~3 ms after each parallel region. Between wconv's many
// primitives, beside OpenBLAS's and the runtime's own threads, that spinning takes the cores the next
// step needs (docs/runtime.md: EfficientNet-B0 inference used 4.0–4.5 s of user CPU instead of 2.2–2.4
// for the same work). Not spinning at all (OMP_WAIT_POLICY=passive, until this was measured) makes
// every primitive a futex wake-up of a sleeping worker instead: at batch 1 on small real-world models
// that was most of the time (PaddleOCR's angle classifier 6.2 → 2.1 ms, MTCNN's PNet 0.70 → 0.10 ms
// with a short spin), while batch 16 ran the same either way. So a command that does arithmetic
// re-executes itself once with GOMP_SPINCOUNT=10000 (workers spin about that many rounds, then sleep),
// before any library constructor or Swift code has run: libgomp reads it in its constructor from the
// environment the process started with (a setenv from .preinit_array is lost: libc installs `environ`
// after it). A policy or spin count the user set is kept, and commands without arithmetic (convert,
// inspect, --version, …) are not re-executed.
#include "wconv_startup.h"
#include <string.h>
#include <unistd.h>

// libc's getenv/setenv are not usable yet here (environ is set by libc's own initialiser, which runs
// after .preinit_array): the environment is read from `envp` and a new one handed to execve.
static const char *env_value(char **envp, const char *name) {
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++) if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    return 0;
}

static void wconv_startup(int argc, char **argv, char **envp) {
    if (env_value(envp, "OMP_WAIT_POLICY") || env_value(envp, "GOMP_SPINCOUNT") || argc < 2) return;
    static const char *arithmetic[] = {"run", "bench", "finetune", "eval", "verify", "compare", 0};
    int found = 0;
    for (int i = 0; arithmetic[i]; i++) found |= strcmp(argv[1], arithmetic[i]) == 0;
    if (!found) return;
    size_t count = 0;
    while (envp && envp[count]) count++;
    char *env[count + 2];
    for (size_t i = 0; i < count; i++) env[i] = envp[i];
    env[count] = WCONV_GOMP_SPINCOUNT;
    env[count + 1] = 0;
    execve("/proc/self/exe", argv, env);
    // exec failed (no /proc): carry on with libgomp's default.
}

#if defined(__linux__) && defined(__ELF__)
__attribute__((section(".preinit_array"), used))
static void (*const wconv_startup_entry)(int, char **, char **) = wconv_startup;
#endif
