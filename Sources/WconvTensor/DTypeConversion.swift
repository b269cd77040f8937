/// What narrowing a tensor cost: values that became ±inf and non-zero values that became zero.
public struct ConversionReport: Sendable, Equatable {
    public var overflowed = 0
    public var flushedToZero = 0
    /// Integer conversions that could not hold the value (clamped) or floats that were not whole.
    public var inexactIntegers = 0
    public init() {}
    public static func += (a: inout ConversionReport, b: ConversionReport) {
        a.overflowed += b.overflowed
        a.flushedToZero += b.flushedToZero
        a.inexactIntegers += b.inexactIntegers
    }
    public var isLossless: Bool { overflowed == 0 && flushedToZero == 0 && inexactIntegers == 0 }
}

/// Element conversions between dtypes. Float narrowing is round-to-nearest-even, like PyTorch's `.to()`.
public enum DTypeConversion {
    /// bfloat16 bits → Float (exact).
    @inline(__always) public static func bf16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Float → bfloat16 bits, round-to-nearest-even; NaN stays a quiet NaN.
    @inline(__always) public static func floatToBF16(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        let rounding = 0x7FFF + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }

    /// float16 bits → Float (exact).
    @inline(__always) public static func f16ToFloat(_ h: UInt16) -> Float {
        Float(Float16(bitPattern: h))
    }

    /// Float → float16 bits, round-to-nearest-even.
    @inline(__always) public static func floatToF16(_ f: Float) -> UInt16 {
        Float16(f).bitPattern
    }

    /// float8 e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; no infinities, S.1111.111 is NaN.
    public static func f8e4m3ToFloat(_ b: UInt8) -> Float {
        let sign: Float = (b & 0x80) != 0 ? -1 : 1
        let e = Int((b >> 3) & 0xF)
        let m = Int(b & 0x7)
        if e == 0xF && m == 0x7 { return .nan }
        if e == 0 { return sign * Float(m) / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + Float(m) / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
    }

    /// float8 e5m2 is the top byte of a float16.
    @inline(__always) public static func f8e5m2ToFloat(_ b: UInt8) -> Float {
        f16ToFloat(UInt16(b) << 8)
    }

    /// Reads element `i` of a raw buffer as Double.
    @inline(__always) static func load(_ raw: UnsafeRawBufferPointer, _ dtype: DType, _ i: Int) -> Double {
        switch dtype {
        case .f64: return raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)
        case .f32: return Double(raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
        case .f16: return Double(f16ToFloat(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
        case .bf16: return Double(bf16ToFloat(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
        case .i64: return Double(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
        case .i32: return Double(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self))
        case .i16: return Double(raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))
        case .i8: return Double(raw.load(fromByteOffset: i, as: Int8.self))
        case .u8: return Double(raw.load(fromByteOffset: i, as: UInt8.self))
        case .bool: return raw.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
        case .f8e4m3: return Double(f8e4m3ToFloat(raw.load(fromByteOffset: i, as: UInt8.self)))
        case .f8e5m2: return Double(f8e5m2ToFloat(raw.load(fromByteOffset: i, as: UInt8.self)))
        }
    }

    /// All elements as Float.
    public static func toFloats(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int) -> [Float] {
        switch dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                if count > 0 { UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: count * 4) }
                n = count
            }
        case .f16:
            return (0..<count).map { f16ToFloat(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        case .bf16:
            return (0..<count).map { bf16ToFloat(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
        default:
            return (0..<count).map { Float(load(raw, dtype, $0)) }
        }
    }

    /// All elements as Double.
    public static func toDoubles(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int) -> [Double] {
        (0..<count).map { load(raw, dtype, $0) }
    }

    /// Converts `count` elements into a new owned storage of `target`.
    public static func convert(_ raw: UnsafeRawBufferPointer, from source: DType, to target: DType, count: Int) -> (Storage, ConversionReport) {
        let out = Storage(zeroedByteCount: count * target.byteSize)
        let dst = out.mutableBytes!
        var report = ConversionReport()
        for i in 0..<count {
            let v = load(raw, source, i)
            switch target {
            case .f64:
                dst.storeBytes(of: v, toByteOffset: i * 8, as: Double.self)
            case .f32:
                let f = Float(v)
                if source == .f64 { track(v, Double(f), &report) }
                dst.storeBytes(of: f, toByteOffset: i * 4, as: Float.self)
            case .f16:
                // Round once from the source precision: Double → Float is exact for every
                // narrower source; for f64 sources it may double-round, as torch's .half() does.
                let h = Float16(Float(v))
                track(v, Double(Float(h)), &report)
                dst.storeBytes(of: h.bitPattern, toByteOffset: i * 2, as: UInt16.self)
            case .bf16:
                let b = floatToBF16(Float(v))
                track(v, Double(bf16ToFloat(b)), &report)
                dst.storeBytes(of: b, toByteOffset: i * 2, as: UInt16.self)
            case .i64: dst.storeBytes(of: Int64(clamping: toInt(v, Int64.min, Int64.max, &report)), toByteOffset: i * 8, as: Int64.self)
            case .i32: dst.storeBytes(of: Int32(clamping: toInt(v, Int64(Int32.min), Int64(Int32.max), &report)), toByteOffset: i * 4, as: Int32.self)
            case .i16: dst.storeBytes(of: Int16(clamping: toInt(v, Int64(Int16.min), Int64(Int16.max), &report)), toByteOffset: i * 2, as: Int16.self)
            case .i8: dst.storeBytes(of: Int8(clamping: toInt(v, Int64(Int8.min), Int64(Int8.max), &report)), toByteOffset: i, as: Int8.self)
            case .u8: dst.storeBytes(of: UInt8(clamping: toInt(v, 0, 255, &report)), toByteOffset: i, as: UInt8.self)
            case .bool: dst.storeBytes(of: UInt8(v != 0 ? 1 : 0), toByteOffset: i, as: UInt8.self)
            case .f8e4m3, .f8e5m2:
                preconditionFailure("float8 is read-only; callers must refuse f8 as a conversion target")
            }
        }
        return (out, report)
    }

    @inline(__always) static func track(_ original: Double, _ narrowed: Double, _ r: inout ConversionReport) {
        if original.isFinite && narrowed.isInfinite { r.overflowed += 1 }
        else if original != 0 && narrowed == 0 { r.flushedToZero += 1 }
    }

    @inline(__always) static func toInt(_ v: Double, _ lo: Int64, _ hi: Int64, _ r: inout ConversionReport) -> Int64 {
        guard v.isFinite else { r.inexactIntegers += 1; return v.isNaN ? 0 : (v > 0 ? hi : lo) }
        let t = v.rounded(.towardZero)
        if t != v { r.inexactIntegers += 1 }
        if t < Double(lo) { r.inexactIntegers += 1; return lo }
        if t > Double(hi) { r.inexactIntegers += 1; return hi }
        return Int64(t)
    }
}
