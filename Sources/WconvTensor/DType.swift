/// Element types wconv reads and writes. Activations are always `f32` inside the runtime;
/// the others are storage formats converted at the edges.
public enum DType: String, CaseIterable, Sendable, Codable {
    case f64, f32, f16, bf16
    case i64, i32, i16, i8, u8, bool
    /// float8 e4m3fn (no infinities, one NaN pattern) — read only.
    case f8e4m3
    /// float8 e5m2 (IEEE-like) — read only.
    case f8e5m2

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16, .f8e4m3, .f8e5m2: return true
        default: return false
        }
    }

    /// The dtype string of the safetensors header (`"F32"`, `"BF16"`, `"F8_E4M3"`, …).
    public var safetensorsName: String {
        switch self {
        case .f64: return "F64"
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .i64: return "I64"
        case .i32: return "I32"
        case .i16: return "I16"
        case .i8: return "I8"
        case .u8: return "U8"
        case .bool: return "BOOL"
        case .f8e4m3: return "F8_E4M3"
        case .f8e5m2: return "F8_E5M2"
        }
    }

    public init?(safetensorsName: String) {
        guard let d = DType.allCases.first(where: { $0.safetensorsName == safetensorsName }) else { return nil }
        self = d
    }

    /// The `torch.<name>` spelling, used by the .pth writer and in messages.
    public var torchName: String {
        switch self {
        case .f64: return "float64"
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .i64: return "int64"
        case .i32: return "int32"
        case .i16: return "int16"
        case .i8: return "int8"
        case .u8: return "uint8"
        case .bool: return "bool"
        case .f8e4m3: return "float8_e4m3fn"
        case .f8e5m2: return "float8_e5m2"
        }
    }

    /// Parses user spellings such as `f16`, `float16`, `half`, `bf16`.
    public init?(userSpelling s: String) {
        switch s.lowercased() {
        case "f64", "float64", "double": self = .f64
        case "f32", "float32", "float": self = .f32
        case "f16", "float16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "i64", "int64", "long": self = .i64
        case "i32", "int32", "int": self = .i32
        case "i16", "int16": self = .i16
        case "i8", "int8": self = .i8
        case "u8", "uint8": self = .u8
        case "bool": self = .bool
        default: return nil
        }
    }
}
