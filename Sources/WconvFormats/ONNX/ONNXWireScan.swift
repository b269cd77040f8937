import WconvTensor

/// A walk over the protobuf wire format of a ModelProto before protobuf-c sees it. protobuf-c's
/// unpack recurses once per nested message with no depth limit, and a few bytes per level are enough
/// to nest graphs inside attributes inside nodes until the stack overflows; this walk refuses nesting
/// deeper than `maxDepth` and names the byte offset of any malformed field, which protobuf-c cannot.
enum ONNXWireScan {
    static let maxDepth = 64

    /// The messages that can (transitively) contain themselves, and the fields that lead to them.
    private enum Message {
        case model, graph, node, attribute, valueInfo, typeProto, typeNested, trainingInfo, function

        func child(_ field: UInt64) -> Message? {
            switch (self, field) {
            case (.model, 7): return .graph
            case (.model, 20): return .trainingInfo
            case (.model, 25): return .function
            case (.graph, 1): return .node
            case (.graph, 11), (.graph, 12), (.graph, 13): return .valueInfo
            case (.node, 5): return .attribute
            case (.attribute, 6), (.attribute, 11): return .graph
            case (.attribute, 14), (.attribute, 15): return .typeProto
            case (.valueInfo, 2): return .typeProto
            // TypeProto.sequence_type 4, map_type 5, optional_type 9 hold a TypeProto again.
            case (.typeProto, 4), (.typeProto, 5), (.typeProto, 9): return .typeNested
            case (.typeNested, 1), (.typeNested, 2): return .typeProto
            case (.trainingInfo, 1), (.trainingInfo, 2): return .graph
            case (.function, 7): return .node
            case (.function, 11): return .attribute
            case (.function, 12): return .valueInfo
            default: return nil
            }
        }
    }

    /// Checks the wire structure of a serialized ModelProto (tags, lengths, nesting depth).
    static func validate(_ buf: UnsafeRawBufferPointer, path: String?) throws {
        try scan(buf, from: 0, to: buf.count, message: .model, depth: 0, path: path)
    }

    private static func fail(_ msg: String, _ path: String?) -> WconvError {
        WconvError.invalid("not a valid ONNX protobuf: \(msg); the file is corrupt, truncated or not an ONNX model", file: path)
    }

    private static func scan(_ buf: UnsafeRawBufferPointer, from start: Int, to end: Int, message: Message,
                             depth: Int, path: String?) throws {
        guard depth <= maxDepth else {
            throw fail("messages nested more than \(maxDepth) deep at byte \(start)", path)
        }
        var i = start
        while i < end {
            let tagAt = i
            guard let tag = readVarint(buf, &i, end) else { throw fail("truncated field tag at byte \(tagAt)", path) }
            let field = tag >> 3
            guard field != 0 else { throw fail("field number 0 at byte \(tagAt)", path) }
            switch tag & 7 {
            case 0:
                guard readVarint(buf, &i, end) != nil else { throw fail("truncated varint of field \(field) at byte \(tagAt)", path) }
            case 1:
                guard end - i >= 8 else { throw fail("truncated 8-byte field \(field) at byte \(tagAt)", path) }
                i += 8
            case 5:
                guard end - i >= 4 else { throw fail("truncated 4-byte field \(field) at byte \(tagAt)", path) }
                i += 4
            case 2:
                guard let len = readVarint(buf, &i, end), len <= UInt64(end - i) else {
                    throw fail("field \(field) at byte \(tagAt) claims more bytes than the \(end - i) left", path)
                }
                let next = i + Int(len)
                if let child = message.child(field) {
                    try scan(buf, from: i, to: next, message: child, depth: depth + 1, path: path)
                }
                i = next
            default:
                throw fail("unsupported wire type \(tag & 7) of field \(field) at byte \(tagAt)", path)
            }
        }
    }

    /// Reads a base-128 varint; nil when truncated or longer than 10 bytes.
    static func readVarint(_ buf: UnsafeRawBufferPointer, _ i: inout Int, _ end: Int) -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while i < end && shift < 70 {
            let b = buf[i]
            i += 1
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
        return nil
    }

    /// True when `head` (the first bytes of a file) reads as the start of a ModelProto: every complete
    /// field in it is a ModelProto field with its proper wire type, and `ir_version` (field 1, written
    /// first by every exporter) holds a plausible IR version.
    static func sniff(_ head: UnsafeRawBufferPointer) -> Bool {
        // ModelProto field → wire type (onnx.proto).
        let wire: [UInt64: UInt64] = [1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2]
        var i = 0
        let end = head.count
        guard let tag = readVarint(head, &i, end), tag == 0x08, let ir = readVarint(head, &i, end), ir >= 1, ir <= 64 else {
            return false
        }
        var fields = 1
        while i < end && fields < 8 {
            guard let t = readVarint(head, &i, end) else { return true }  // cut off by the head's end
            guard let w = wire[t >> 3], w == t & 7 else { return false }
            if w == 0 {
                guard readVarint(head, &i, end) != nil else { return true }
            } else {
                guard let len = readVarint(head, &i, end) else { return true }
                if len > UInt64(end - i) { return true }
                i += Int(len)
            }
            fields += 1
        }
        return true
    }
}
