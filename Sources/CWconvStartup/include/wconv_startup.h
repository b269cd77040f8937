#ifndef WCONV_STARTUP_H
#define WCONV_STARTUP_H
// Start-up of the `wconv` executable (wconv_startup.c): an entry in .preinit_array that re-executes
// an arithmetic command once with libgomp's spin count set to WCONV_GOMP_SPINCOUNT. Nothing to call.
#define WCONV_GOMP_SPINCOUNT "GOMP_SPINCOUNT=10000"
#endif
