import Foundation
import WconvTensor

extension Op {
    /// Elementwise with numpy broadcasting; inputs may be parameters (constants).
    public static let add: Op = "add", sub: Op = "sub", mul: Op = "mul"
    /// Integer inputs divide truncating toward zero (ONNX), floats as IEEE.
    public static let div: Op = "div"
    /// Elementwise on two inputs with broadcasting (ONNX Pow, Equal, Less, …, Min/Max of two).
    public static let pow: Op = "pow", equal: Op = "equal", less: Op = "less", lessOrEqual: Op = "lessOrEqual", greater: Op = "greater",
                      greaterOrEqual: Op = "greaterOrEqual", and: Op = "and", or: Op = "or", minimum: Op = "minimum", maximum: Op = "maximum"
    /// Elementwise math on one input.
    public static let erf: Op = "erf", sqrt: Op = "sqrt", exp: Op = "exp", log: Op = "log", abs: Op = "abs", neg: Op = "neg",
                      reciprocal: Op = "reciprocal", not: Op = "not", isNaN: Op = "isNaN"
    /// attrs to (a DType raw value: "f32", "i64", …). Float → integer truncates toward zero.
    public static let cast: Op = "cast"
    /// inputs [condition, x, y] with broadcasting.
    public static let `where`: Op = "where"
}

/// Elementwise ops (docs/adding-an-op.md). Integer and bool values flow through the same rules as
/// floats; the value rules fold integer arithmetic exactly (shape computations).
public enum ElementwiseOps {
    static let schemas: [OpSchema] = binary + unary + [cast, whereSelect]

    static func broadcastShape(_ a: ShapeArgs) throws -> [[Int]] { [try a.broadcast(try a.need(0), try a.need(1))] }

    static func binary(_ op: Op, dtype: DTypeRule = .sameAsInput, ints: ((Int, Int) -> Int?)? = nil,
                       doubles: ((Double, Double) -> Double?)? = nil) -> OpSchema {
        let fold: ((FoldArgs) throws -> [Tensor]?)? = ints == nil && doubles == nil ? nil : { a in
            try a.elementwise(ints: ints.map { f in { v in f(v[0], v[1]) } }, doubles: doubles.map { g in { v in g(v[0], v[1]) } })
        }
        return OpSchema(op, dtype: dtype, fold: fold, shape: broadcastShape)
    }

    static func flag(_ b: Bool) -> Int { b ? 1 : 0 }
    static func flag(_ b: Bool) -> Double { b ? 1 : 0 }

    static let binary: [OpSchema] = [
        binary(.add, ints: { $0.addingReportingOverflow($1).overflow ? nil : $0 + $1 }, doubles: { $0 + $1 }),
        binary(.sub, ints: { $0.subtractingReportingOverflow($1).overflow ? nil : $0 - $1 }, doubles: { $0 - $1 }),
        binary(.mul, ints: { $0.multipliedReportingOverflow(by: $1).overflow ? nil : $0 * $1 }, doubles: { $0 * $1 }),
        binary(.div, ints: { $1 == 0 || ($0 == .min && $1 == -1) ? nil : $0 / $1 }, doubles: { $0 / $1 }),
        binary(.pow),
        binary(.equal, dtype: .fixed(.bool), ints: { flag($0 == $1) }, doubles: { flag($0 == $1) }),
        binary(.less, dtype: .fixed(.bool), ints: { flag($0 < $1) }, doubles: { flag($0 < $1) }),
        binary(.lessOrEqual, dtype: .fixed(.bool), ints: { flag($0 <= $1) }, doubles: { flag($0 <= $1) }),
        binary(.greater, dtype: .fixed(.bool), ints: { flag($0 > $1) }, doubles: { flag($0 > $1) }),
        binary(.greaterOrEqual, dtype: .fixed(.bool), ints: { flag($0 >= $1) }, doubles: { flag($0 >= $1) }),
        binary(.and, dtype: .fixed(.bool), ints: { flag($0 != 0 && $1 != 0) }),
        binary(.or, dtype: .fixed(.bool), ints: { flag($0 != 0 || $1 != 0) }),
        binary(.minimum, ints: { Swift.min($0, $1) }, doubles: { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }),
        binary(.maximum, ints: { Swift.max($0, $1) }, doubles: { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }),
    ]

    static func unary(_ op: Op, dtype: DTypeRule = .sameAsInput, ints: ((Int) -> Int?)? = nil,
                      doubles: ((Double) -> Double?)? = nil) -> OpSchema {
        let fold: ((FoldArgs) throws -> [Tensor]?)? = ints == nil && doubles == nil ? nil : { a in
            try a.elementwise(ints: ints.map { f in { v in f(v[0]) } }, doubles: doubles.map { g in { v in g(v[0]) } })
        }
        return OpSchema(op, dtype: dtype, fold: fold) { a in [try a.need(0)] }
    }

    static let unary: [OpSchema] = [
        unary(.erf), unary(.sqrt), unary(.exp), unary(.log), unary(.reciprocal),
        unary(.abs, ints: { $0 == .min ? nil : Swift.abs($0) }, doubles: { Swift.abs($0) }),
        unary(.neg, ints: { $0 == .min ? nil : -$0 }, doubles: { -$0 }),
        unary(.not, dtype: .fixed(.bool), ints: { flag($0 == 0) }),
        unary(.isNaN, dtype: .fixed(.bool), doubles: { flag($0.isNaN) }),
    ]

    static let cast = OpSchema(.cast, dtype: .attribute("to"), fold: { a in
        let x = try a.value(0)
        let to = a.outDType
        if to == .bool { return a.out(ints: x.doubles().map { $0 != 0 ? 1 : 0 }) }
        if !x.dtype.isFloatingPoint { return a.out(ints: x.exactInts()) }
        return to.isFloatingPoint ? a.out(doubles: x.doubles()) : a.out(ints: x.doubles().map { Int(clamping: $0) })
    }) { a in [try a.need(0)] }

    static let whereSelect = OpSchema(.where, dtype: .input(1), fold: { a in
        let ints: ([Int]) -> Int? = { v in v[0] != 0 ? v[1] : v[2] }
        let doubles: ([Double]) -> Double? = { v in v[0] != 0 ? v[1] : v[2] }
        return try a.elementwise(ints: ints, doubles: doubles)
    }) { a in
        let c = try a.need(0), x = try a.need(1), y = try a.need(2)
        guard let xy = ShapeInference.broadcast(x, y), let out = ShapeInference.broadcast(c, xy) else {
            throw a.fail("condition \(c), x \(x) and y \(y) do not broadcast")
        }
        return [out]
    }
}
