import WconvTensor

/// `convert --dtype`: floating-point tensors converted once per distinct view, so tied tensors stay
/// tied; integers are left alone.
public enum DTypeNarrowing {
    /// Converts in place; returns how many tensors were converted and each one's report (in bundle
    /// order, a tied view reported once). `progress` is told the bytes of each tensor as it goes.
    public static func convert(_ bundle: inout TensorBundle, to target: DType,
                               progress: (Int) -> Void) -> (Int, [(String, ConversionReport)]) {
        struct ViewKey: Hashable { var storage: ObjectIdentifier; var dtype: DType; var shape: [Int]; var strides: [Int]; var offset: Int }
        var cache: [ViewKey: Tensor] = [:]
        var reports: [(String, ConversionReport)] = []
        var converted = 0
        for (name, t) in bundle.tensors {
            progress(t.byteCount)
            guard t.dtype.isFloatingPoint, t.dtype != target else { continue }
            let key = ViewKey(storage: ObjectIdentifier(t.storage), dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.offset)
            if let c = cache[key] { bundle.tensors[name] = c; continue }
            let (c, r) = t.converted(to: target)
            cache[key] = c
            bundle.tensors[name] = c
            reports.append((name, r))
            converted += 1
        }
        return (converted, reports)
    }
}
