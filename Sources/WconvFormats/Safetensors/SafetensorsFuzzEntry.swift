import WconvTensor

/// libFuzzer entry for the safetensors header: parses and validates `data` as a whole file image
/// (length prefix, JSON header, offsets) and, when that succeeds, the same bytes as a sharded index.
/// Any input must end in a thrown `WconvError` or a valid header, never a crash or a hang.
public func fuzzSafetensorsHeader(_ data: UnsafeRawBufferPointer) {
    if let header = try? SafetensorsHeader.parse(data, file: "<fuzz>") {
        // Valid headers must describe ranges inside the buffer.
        for e in header.entries {
            precondition(header.dataStart + e.end <= data.count, "validated range outside the buffer")
        }
    }
    _ = try? ShardedCheckpoint.parse(data, file: "<fuzz>")
    _ = SafetensorsReader.sniff(data, fileSize: data.count)
}
