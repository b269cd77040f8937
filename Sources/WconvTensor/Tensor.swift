/// A typed n-d view into a `Storage`: shape, strides and offset in elements, as PyTorch keeps them.
/// Readers produce views (zero-copy where the format allows); `contiguous()` materialises.
public struct Tensor: @unchecked Sendable {
    public var dtype: DType
    public var shape: [Int]
    /// Strides in elements (may be 0 for expanded dims).
    public var strides: [Int]
    /// Offset of element [0,…,0] from the start of `storage`, in elements.
    public var offset: Int
    public var storage: Storage

    /// A view. Throws when the extent falls outside the storage — callers pass values read from files.
    public init(dtype: DType, shape: [Int], strides: [Int]? = nil, offset: Int = 0, storage: Storage) throws {
        let st = strides ?? Tensor.contiguousStrides(shape)
        guard st.count == shape.count else {
            throw WconvError.invalid("tensor has \(shape.count) dims but \(st.count) strides")
        }
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), st.allSatisfy({ $0 >= 0 }) else {
            throw WconvError.invalid("negative size, stride or offset (shape \(shape), strides \(st), offset \(offset))")
        }
        if try Tensor.checkedNumel(shape) > 0 {
            var last = offset
            for (n, s) in zip(shape, st) {
                let (m, o1) = (n - 1).multipliedReportingOverflow(by: s)
                let (a, o2) = last.addingReportingOverflow(m)
                guard !o1, !o2 else { throw WconvError.invalid("tensor extent overflows (shape \(shape), strides \(st))") }
                last = a
            }
            let (endByte, o3) = (last + 1).multipliedReportingOverflow(by: dtype.byteSize)
            guard !o3, endByte <= storage.byteCount else {
                throw WconvError.invalid("tensor view (shape \(shape), strides \(st), offset \(offset), \(dtype.rawValue)) needs \(endByte) bytes but its storage has \(storage.byteCount)")
            }
        }
        self.dtype = dtype
        self.shape = shape
        self.strides = st
        self.offset = offset
        self.storage = storage
    }

    /// A new owned contiguous tensor holding `values`.
    public init(shape: [Int], floats values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "values.count does not match shape \(shape)")
        self.dtype = .f32
        self.shape = shape
        self.strides = Tensor.contiguousStrides(shape)
        self.offset = 0
        self.storage = Storage(array: values)
    }

    /// A new owned contiguous zero tensor.
    public init(zeros shape: [Int], dtype: DType = .f32) {
        self.dtype = dtype
        self.shape = shape
        self.strides = Tensor.contiguousStrides(shape)
        self.offset = 0
        self.storage = Storage(zeroedByteCount: shape.reduce(1, *) * dtype.byteSize)
    }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            // Saturate instead of trapping: a tensor with a zero dim beside huge ones has no
            // elements, so its strides are never used, but the file that declared it must not crash us.
            let (m, overflow) = acc.multipliedReportingOverflow(by: max(shape[i], 1))
            acc = overflow ? Int.max : m
        }
        return strides
    }

    /// Product of dims with overflow checking.
    public static func checkedNumel(_ shape: [Int]) throws -> Int {
        var n = 1
        for d in shape {
            let (m, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw WconvError.invalid("shape \(shape) overflows") }
            n = m
        }
        return n
    }

    public var numel: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    /// Bytes of the logical tensor (numel × element size), not of the storage.
    public var byteCount: Int { numel * dtype.byteSize }

    public var isContiguous: Bool {
        var expected = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) where shape[i] != 1 {
            if strides[i] != expected { return false }
            expected *= shape[i]
        }
        return true
    }

    /// True when this tensor covers its whole storage contiguously from byte 0.
    public var coversWholeStorage: Bool {
        isContiguous && offset == 0 && byteCount == storage.byteCount
    }

    /// The tensor's bytes when it is contiguous (valid as long as its storage lives), else nil.
    public var contiguousBuffer: UnsafeRawBufferPointer? {
        isContiguous ? UnsafeRawBufferPointer(start: storage.bytes.advanced(by: offset * dtype.byteSize), count: byteCount) : nil
    }

    /// Calls `body` with the tensor's bytes in C order; zero-copy when already contiguous.
    public func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let bytes = contiguousBuffer { return try body(bytes) }
        let c = contiguous()
        return try body(c.storage.buffer)
    }

    /// A contiguous tensor with the same values: `self` when already contiguous, else an owned copy.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let es = dtype.byteSize
        let out = Storage(zeroedByteCount: byteCount)
        let dst = out.mutableBytes!
        let src = storage.bytes
        let n = numel
        if n > 0 {
            var index = [Int](repeating: 0, count: rank)
            var srcElem = offset
            for i in 0..<n {
                dst.advanced(by: i * es).copyMemory(from: src.advanced(by: srcElem * es), byteCount: es)
                // Odometer increment over the dims, last fastest.
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    srcElem += strides[d]
                    if index[d] < shape[d] { break }
                    srcElem -= strides[d] * shape[d]
                    index[d] = 0
                    d -= 1
                }
            }
        }
        // Force-try is safe: a fresh contiguous storage of exactly byteCount always fits.
        return try! Tensor(dtype: dtype, shape: shape, storage: out)
    }

    /// Values converted to Float in C order (every dtype; integers and bools as numbers).
    public func floats() -> [Float] {
        withContiguousBytes { raw in DTypeConversion.toFloats(raw, dtype: dtype, count: numel) }
    }

    /// Values converted to Double in C order (exact for f64 and integers up to 2^53).
    public func doubles() -> [Double] {
        withContiguousBytes { raw in DTypeConversion.toDoubles(raw, dtype: dtype, count: numel) }
    }

    /// Bytes of the values in C order, copied into an array.
    public func contiguousByteArray() -> [UInt8] {
        withContiguousBytes { Array($0) }
    }

    /// Converts to another dtype (round-to-nearest-even when narrowing floats), reporting overflow and flushes.
    public func converted(to target: DType) -> (tensor: Tensor, report: ConversionReport) {
        if target == dtype { return (contiguous(), ConversionReport()) }
        let (storage, report) = withContiguousBytes { raw in
            DTypeConversion.convert(raw, from: dtype, to: target, count: numel)
        }
        return (try! Tensor(dtype: target, shape: shape, storage: storage), report)
    }

    /// True when both hold the same dtype, shape and bytes.
    public func bitwiseEqual(_ other: Tensor) -> Bool {
        guard dtype == other.dtype, shape == other.shape else { return false }
        return withContiguousBytes { a in other.withContiguousBytes { b in a.elementsEqual(b) } }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "\(dtype.rawValue)\(shape)" }
}
