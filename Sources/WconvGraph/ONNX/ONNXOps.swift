/// Ops the ONNX importer needs beyond OpVocabulary.swift. They keep ONNX's semantics (numpy
/// broadcasting, negative axes counted from the end); attributes that later opsets moved to inputs are
/// always attributes here when the importer could read them as constants, and inputs otherwise.
extension Op {
    /// Elementwise math on one input.
    public static let erf: Op = "erf"
    public static let sqrt: Op = "sqrt"
    public static let exp: Op = "exp"
    public static let log: Op = "log"
    public static let abs: Op = "abs"
    public static let neg: Op = "neg"
    public static let reciprocal: Op = "reciprocal"
    public static let not: Op = "not"
    public static let isNaN: Op = "isNaN"
    /// Elementwise on two inputs with broadcasting (ONNX Pow, Equal, Less, …, Min/Max of two).
    public static let pow: Op = "pow"
    public static let equal: Op = "equal"
    public static let less: Op = "less"
    public static let lessOrEqual: Op = "lessOrEqual"
    public static let greater: Op = "greater"
    public static let greaterOrEqual: Op = "greaterOrEqual"
    public static let and: Op = "and"
    public static let or: Op = "or"
    public static let minimum: Op = "minimum"
    public static let maximum: Op = "maximum"
    /// inputs [condition, x, y].
    public static let `where`: Op = "where"
    /// attrs axes, keepdims (0/1). Axes empty means all dims.
    public static let reduceMean: Op = "reduceMean"
    public static let reduceSum: Op = "reduceSum"
    public static let reduceMax: Op = "reduceMax"
    /// Mean over H and W of NCHW (ONNX GlobalMaxPool); attrs keepdims.
    public static let globalMaxPool: Op = "globalMaxPool"
    /// attrs axes.
    public static let unsqueeze: Op = "unsqueeze"
    /// attrs axes (absent: every size-1 dim).
    public static let squeeze: Op = "squeeze"
    /// attrs axis, split (sizes); one output per piece.
    public static let split: Op = "split"
    // slice: declared in OpVocabularyExtra.swift (ONNX Slice semantics).
    /// attrs to (a DType raw value: "f32", "i64", …).
    public static let cast: Op = "cast"
    /// Broadcast to a shape. inputs [x, shape(i64)].
    public static let expand: Op = "expand"
    /// The shape of the input as an i64 vector; attrs start, end (optional).
    public static let shape: Op = "shape"
    /// inputs [shape(i64)]; attrs value (float), dtype.
    public static let constantOfShape: Op = "constantOfShape"
    /// inputs [start, limit, delta].
    public static let range: Op = "range"
    /// inputs [x, repeats].
    public static let tile: Op = "tile"
    /// inputs [data, indices]; attrs axis, batchDims (ONNX GatherND for batch_dims).
    public static let gatherND: Op = "gatherND"
    /// attrs axis, keepdims, selectLastIndex.
    public static let argMax: Op = "argMax"
}
