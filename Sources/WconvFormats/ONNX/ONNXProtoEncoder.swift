import WconvTensor

/// A protobuf wire-format encoder that keeps tensor payloads by reference: a message is a list of byte
/// runs and tensors, so a model is streamed to disk without assembling multi-GB buffers (protobuf-c's
/// pack would need the whole tree of C structs with every tensor copied in).
struct ProtoMessage {
    enum Segment {
        case bytes([UInt8])
        case tensor(Tensor)
    }

    private(set) var segments: [Segment] = []
    private var pending: [UInt8] = []
    /// Serialized size in bytes.
    private(set) var size = 0

    private mutating func flush() {
        if !pending.isEmpty { segments.append(.bytes(pending)); pending = [] }
    }

    private mutating func put(_ b: UInt8) { pending.append(b); size += 1 }

    private mutating func putVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { put(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        put(UInt8(v))
    }

    private mutating func tag(_ field: Int, _ wire: UInt64) { putVarint(UInt64(field) << 3 | wire) }

    static func varintSize(_ v: UInt64) -> Int {
        var n = 1, v = v
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    /// int32/int64/enum/bool field (negative values as 10-byte two's complement, as protobuf does).
    mutating func int(_ field: Int, _ v: Int) {
        tag(field, 0)
        putVarint(UInt64(bitPattern: Int64(v)))
    }

    mutating func float(_ field: Int, _ v: Float) {
        tag(field, 5)
        let b = v.bitPattern
        for s in stride(from: 0, to: 32, by: 8) { put(UInt8(truncatingIfNeeded: b >> UInt32(s))) }
    }

    mutating func bytes(_ field: Int, _ b: [UInt8]) {
        tag(field, 2)
        putVarint(UInt64(b.count))
        pending += b
        size += b.count
    }

    mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }

    /// Writes a string only when non-empty (proto2 optional strings are simply absent otherwise).
    mutating func stringIfSet(_ field: Int, _ s: String) { if !s.isEmpty { string(field, s) } }

    mutating func packedInts(_ field: Int, _ values: [Int]) {
        var body = ProtoMessage()
        for v in values { body.putVarint(UInt64(bitPattern: Int64(v))) }
        message(field, body)
    }

    mutating func packedFloats(_ field: Int, _ values: [Float]) {
        var body = ProtoMessage()
        for v in values {
            let b = v.bitPattern
            for s in stride(from: 0, to: 32, by: 8) { body.put(UInt8(truncatingIfNeeded: b >> UInt32(s))) }
        }
        message(field, body)
    }

    mutating func message(_ field: Int, _ m: ProtoMessage) {
        tag(field, 2)
        putVarint(UInt64(m.size))
        flush()
        var m = m
        m.flush()
        segments += m.segments
        size += m.size
    }

    /// A length-delimited field whose payload is a tensor's bytes (little-endian, C order).
    mutating func tensorBytes(_ field: Int, _ t: Tensor) {
        tag(field, 2)
        putVarint(UInt64(t.byteCount))
        flush()
        segments.append(.tensor(t))
        size += t.byteCount
    }

    /// Streams the message to a writer.
    func write(to w: AtomicFileWriter) throws {
        for s in segments {
            switch s {
            case .bytes(let b): try w.write(b)
            case .tensor(let t): try t.withContiguousBytes { try w.write($0) }
            }
        }
        if !pending.isEmpty { try w.write(pending) }
    }
}
