import WconvTensor

/// ONNX `TensorProto.DataType` codes and their wconv dtypes.
public enum ONNXDataType {
    public static let float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7
    public static let string = 8, bool = 9, float16 = 10, double = 11, uint32 = 12, uint64 = 13
    public static let bfloat16 = 16, float8e4m3fn = 17, float8e5m2 = 19

    /// The dtype for an ONNX code, or nil when the tensor layer does not hold that type.
    public static func dtype(_ code: Int) -> DType? {
        switch code {
        case float: return .f32
        case uint8: return .u8
        case int8: return .i8
        case int16: return .i16
        case int32: return .i32
        case int64: return .i64
        case bool: return .bool
        case float16: return .f16
        case double: return .f64
        case bfloat16: return .bf16
        case float8e4m3fn: return .f8e4m3
        case float8e5m2: return .f8e5m2
        default: return nil
        }
    }

    /// The ONNX code for a dtype.
    public static func code(_ dtype: DType) -> Int {
        switch dtype {
        case .f32: return float
        case .u8: return uint8
        case .i8: return int8
        case .i16: return int16
        case .i32: return int32
        case .i64: return int64
        case .bool: return bool
        case .f16: return float16
        case .f64: return double
        case .bf16: return bfloat16
        case .f8e4m3: return float8e4m3fn
        case .f8e5m2: return float8e5m2
        }
    }

    /// The ONNX spelling of a code, for messages.
    public static func name(_ code: Int) -> String {
        let names = [0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
                     8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
                     15: "COMPLEX128", 16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
                     20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1", 24: "FLOAT8E8M0", 25: "UINT2",
                     26: "INT2", 27: "FLOAT6E2M3", 28: "FLOAT6E3M2"]
        return names[code] ?? "type \(code)"
    }
}
