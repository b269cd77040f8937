#ifndef WCONV_ISA_LEVEL_H
#define WCONV_ISA_LEVEL_H
// Internal to CWconvVector: the code path its kernels run, 0 portable, 1 AVX2+FMA, 2 AVX-512F
// (decided once from CPUID and WCONV_VECTOR_ISA; wconv_vector.c).
int wconv_vector_level(void);
#endif
