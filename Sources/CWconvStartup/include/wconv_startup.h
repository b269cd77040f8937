#ifndef WCONV_STARTUP_H
#define WCONV_STARTUP_H
// Start-up of the `wconv` executable (wconv_startup.c): an entry in .preinit_array that re-executes
// an arithmetic command once with OMP_WAIT_POLICY=passive. Nothing to call.
#endif
