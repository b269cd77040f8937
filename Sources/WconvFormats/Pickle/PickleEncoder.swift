/// A minimal protocol-2 pickle writer for the opcodes `torch.load(weights_only=True)` accepts
/// (formats doc §1.4): no FRAME, no STACK_GLOBAL, no SHORT_BINUNICODE.
struct PickleEncoder {
    private(set) var bytes: [UInt8] = [PickleOpcode.proto.rawValue, 2]
    private var memoized: [String: Int] = [:]

    mutating func op(_ o: PickleOpcode) { bytes.append(o.rawValue) }

    mutating func mark() { op(.mark) }

    /// GLOBAL, memoized so repeated names cost a BINGET.
    mutating func global(_ module: String, _ name: String) {
        let q = module + "\n" + name + "\n"
        if let i = memoized[q] { get(i); return }
        op(.global)
        bytes.append(contentsOf: Array(q.utf8))
        let i = memoized.count
        memoized[q] = i
        put(i)
    }

    mutating func put(_ i: Int) {
        if i < 256 { op(.binput); bytes.append(UInt8(i)) } else { op(.longBinput); bytes.le32(UInt32(i)) }
    }

    mutating func get(_ i: Int) {
        if i < 256 { op(.binget); bytes.append(UInt8(i)) } else { op(.longBinget); bytes.le32(UInt32(i)) }
    }

    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        op(.binunicode); bytes.le32(UInt32(u.count)); bytes.append(contentsOf: u)
    }

    mutating func int(_ v: Int) {
        if v >= 0 && v < 256 { op(.binint1); bytes.append(UInt8(v)) }
        else if v >= 0 && v < 65536 { op(.binint2); bytes.le16(UInt16(v)) }
        else if v >= Int(Int32.min) && v <= Int(Int32.max) { op(.binint); bytes.le32(UInt32(bitPattern: Int32(v))) }
        else { op(.long1); bytes.append(8); bytes.le64(UInt64(bitPattern: Int64(v))) }
    }

    mutating func bool(_ b: Bool) { op(b ? .newtrue : .newfalse) }

    mutating func intTuple(_ xs: [Int]) {
        switch xs.count {
        case 0: op(.emptyTuple)
        case 1: int(xs[0]); op(.tuple1)
        case 2: int(xs[0]); int(xs[1]); op(.tuple2)
        case 3: int(xs[0]); int(xs[1]); int(xs[2]); op(.tuple3)
        default: mark(); for x in xs { int(x) }; op(.tuple)
        }
    }

    mutating func stop() { op(.stop) }
}
