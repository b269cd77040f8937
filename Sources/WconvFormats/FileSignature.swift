import WconvTensor

/// Byte-signature checks used by `ModelFile.sniff`.
enum FileSignature {
    static func startsWith(_ buf: UnsafeRawBufferPointer, _ bytes: [UInt8]) -> Bool {
        buf.count >= bytes.count && zip(buf, bytes).allSatisfy { $0 == $1 }
    }

    static func startsWith(_ buf: UnsafeRawBufferPointer, _ text: String) -> Bool {
        startsWith(buf, Array(text.utf8))
    }

    static func matches(_ buf: UnsafeRawBufferPointer, at offset: Int, _ text: String) -> Bool {
        let b = Array(text.utf8)
        guard offset >= 0, buf.count >= offset + b.count else { return false }
        return startsWith(UnsafeRawBufferPointer(rebasing: buf[offset...]), b)
    }

    /// The HDF5 superblock signature may sit at 0, 512, 1024, 2048, … (a user block before it).
    static func hdf5Offset(_ buf: UnsafeRawBufferPointer) -> Int? {
        let sig: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
        for off in [0, 512, 1024, 2048] where buf.count >= off + 8 {
            if startsWith(UnsafeRawBufferPointer(rebasing: buf[off...]), sig) { return off }
        }
        return nil
    }

    /// `<!DOCTYPE html`, `<html`, `<head`, `<body` or an XML prolog followed by html, after optional
    /// BOM and whitespace, case-insensitive.
    static func looksLikeHTML(_ head: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        if startsWith(head, [0xEF, 0xBB, 0xBF]) { i = 3 }
        while i < head.count, [0x20, 0x09, 0x0A, 0x0D].contains(head[i]) { i += 1 }
        let rest = head[i..<min(head.count, i + 256)].map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 + 32 : $0 }
        let text = String(decoding: rest, as: UTF8.self)
        for p in ["<!doctype html", "<html", "<head", "<body"] where text.hasPrefix(p) { return true }
        return text.hasPrefix("<?xml") && text.contains("<html")
    }

    /// An ONNX ModelProto written by onnx/torch.onnx starts with field 1 (ir_version, varint, small)
    /// followed by another field tag of the ModelProto.
    static func looksLikeONNX(_ head: UnsafeRawBufferPointer) -> Bool {
        guard head.count >= 4, head[0] == 0x08 else { return false }
        let ir = head[1]
        guard ir >= 1, ir <= 32 else { return false }
        let tag = head[2]
        let field = tag >> 3, wire = tag & 7
        // producer_name 2, producer_version 3, domain 4, model_version 5 (varint), doc_string 6,
        // graph 7, opset_import 8, metadata_props 14, training_info 20, functions 25.
        switch (field, wire) {
        case (2...4, 2), (5, 0), (6...8, 2), (14, 2): return true
        default: return false
        }
    }
}
