/// A minimal protocol-2 pickle writer for the opcodes `torch.load(weights_only=True)` accepts
/// (formats doc §1.4): no FRAME, no STACK_GLOBAL, no SHORT_BINUNICODE.
struct PickleEncoder {
    private(set) var bytes: [UInt8] = [0x80, 0x02]
    private var memoized: [String: Int] = [:]

    mutating func op(_ b: UInt8) { bytes.append(b) }

    mutating func mark() { op(0x28) }

    /// GLOBAL, memoized so repeated names cost a BINGET.
    mutating func global(_ module: String, _ name: String) {
        let q = module + "\n" + name + "\n"
        if let i = memoized[q] { get(i); return }
        op(0x63)
        bytes.append(contentsOf: Array(q.utf8))
        let i = memoized.count
        memoized[q] = i
        put(i)
    }

    mutating func put(_ i: Int) {
        if i < 256 { op(0x71); op(UInt8(i)) } else { op(0x72); bytes.le32(UInt32(i)) }
    }

    mutating func get(_ i: Int) {
        if i < 256 { op(0x68); op(UInt8(i)) } else { op(0x6A); bytes.le32(UInt32(i)) }
    }

    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        op(0x58); bytes.le32(UInt32(u.count)); bytes.append(contentsOf: u)
    }

    mutating func int(_ v: Int) {
        if v >= 0 && v < 256 { op(0x4B); op(UInt8(v)) }
        else if v >= 0 && v < 65536 { op(0x4D); bytes.le16(UInt16(v)) }
        else if v >= Int(Int32.min) && v <= Int(Int32.max) { op(0x4A); bytes.le32(UInt32(bitPattern: Int32(v))) }
        else { op(0x8A); op(8); bytes.le64(UInt64(bitPattern: Int64(v))) }
    }

    mutating func bool(_ b: Bool) { op(b ? 0x88 : 0x89) }

    mutating func intTuple(_ xs: [Int]) {
        switch xs.count {
        case 0: op(0x29)
        case 1: int(xs[0]); op(0x85)
        case 2: int(xs[0]); int(xs[1]); op(0x86)
        case 3: int(xs[0]); int(xs[1]); int(xs[2]); op(0x87)
        default: mark(); for x in xs { int(x) }; op(0x74)
        }
    }

    mutating func stop() { op(0x2E) }
}
