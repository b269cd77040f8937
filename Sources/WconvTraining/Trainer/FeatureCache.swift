#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation
import WconvTensor

/// Per-sample outputs of the frozen part of the network, computed once and reused every epoch.
/// Held in memory up to `memoryLimit` bytes; beyond that in a memory-mapped temporary file
/// (unlinked at once, so nothing is left behind even if the process is killed).
public final class FeatureCache {
    public let count: Int
    public let sampleShape: [Int]
    public let perSample: Int
    public let labels: [Int]
    public let onDisk: Bool
    private let base: UnsafeMutablePointer<Float>
    private let bytes: Int
    private var memory: UnsafeMutablePointer<Float>?

    public static let defaultMemoryLimit = 1 << 30

    public init(count: Int, sampleShape: [Int], labels: [Int], memoryLimit: Int = FeatureCache.defaultMemoryLimit) throws {
        self.count = count
        self.sampleShape = sampleShape
        self.labels = labels
        perSample = sampleShape.reduce(1, *)
        let (b, o) = (count * perSample).multipliedReportingOverflow(by: 4)
        guard !o else { throw WconvError(.runtime, "feature cache size overflows (\(count) × \(sampleShape))") }
        bytes = max(b, 4)
        if bytes <= memoryLimit {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count * perSample, 1))
            p.initialize(repeating: 0, count: max(count * perSample, 1))
            base = p
            memory = p
            onDisk = false
        } else {
            var template = Array((NSTemporaryDirectory() + "/wconv-features-XXXXXX").utf8CString)
            let fd = mkstemp(&template)
            guard fd >= 0 else { throw WconvError(.runtime, "cannot create the feature cache file in \(NSTemporaryDirectory()): \(String(cString: strerror(errno)))") }
            unlink(&template)
            defer { close(fd) }
            guard ftruncate(fd, off_t(bytes)) == 0,
                  let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
                throw WconvError(.runtime, "cannot map a \(bytes >> 20) MB feature cache in \(NSTemporaryDirectory()): \(String(cString: strerror(errno))); free disk space or set TMPDIR")
            }
            base = p.bindMemory(to: Float.self, capacity: count * perSample)
            onDisk = true
        }
    }

    public var byteCount: Int { bytes }

    /// Every sample's values, in order.
    public var storage: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: base, count: count * perSample) }

    public func sample(_ i: Int) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base + i * perSample, count: perSample)
    }

    /// A batch tensor of the given samples.
    public func batch(_ indices: [Int]) -> Tensor {
        var out = [Float](repeating: 0, count: indices.count * perSample)
        out.withUnsafeMutableBufferPointer { dst in
            for (k, i) in indices.enumerated() {
                (dst.baseAddress! + k * perSample).update(from: base + i * perSample, count: perSample)
            }
        }
        return Tensor(shape: [indices.count] + sampleShape, floats: out)
    }

    deinit {
        if let memory { memory.deallocate() } else { munmap(base, bytes) }
    }
}
