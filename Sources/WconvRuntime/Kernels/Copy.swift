/// Bulk copies and fills for the step functions that `throw` (every `StepKernel.forward`/`backward`).
///
/// Swift 6.3.1's code generator miscompiles a `throws` function whose success path ends in a
/// memmove/memcpy/memset: it becomes a tail call that skips restoring the error register, so the
/// caller sees a phantom error (a stale pointer) and crashes retaining it (swiftlang/swift#90477,
/// fixed in LLVM after 6.3.1). Release builds only. These never-inlined, non-throwing helpers keep
/// the libcall out of throwing frames; `tools/check-binary` scans release builds for the pattern.
@inline(never)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, count: Int) {
    if count > 0 { dst.update(from: src, count: count) }
}

@inline(never)
func fillFloats(_ dst: UnsafeMutablePointer<Float>, with value: Float, count: Int) {
    if count > 0 { dst.update(repeating: value, count: count) }
}

@inline(never)
func copyFloats(_ dst: UnsafeMutablePointer<Float>, from values: [Float]) {
    values.withUnsafeBufferPointer { if let b = $0.baseAddress { dst.update(from: b, count: values.count) } }
}
