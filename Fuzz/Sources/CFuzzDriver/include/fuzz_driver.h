#ifndef WCONV_FUZZ_DRIVER_H
#define WCONV_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>
/// libFuzzer's driver entry (LLVM >= 11). SwiftPM renames an executable's entry point to
/// `<Target>_main` and points `main` at it, so each harness calls the driver from there.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
#endif
