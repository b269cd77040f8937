# Sourced by tools/bench-run and tools/bench-train/run.sh: `bench_isa NAME` holds both sides of a bench
# to an instruction set. avx2: AVX2 + FMA, as on a CPU without AVX-512 (Haswell to Alder Lake, Zen 1–3):
# oneDNN (both sides' copies), wconv's OpenBLAS core and vector kernels, PyTorch's ATen kernels and MKL.
bench_isa() {
  case "$1" in
    native) ;;
    avx2) export ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell WCONV_VECTOR_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ;;
    *) echo "$0: the ISA is avx2 or native (the default), not '$1'" >&2; exit 2 ;;
  esac
}
