import Foundation

/// Chunked parallel loops for the memory-bound kernels (elementwise, pooling, depthwise conv).
/// One closure call per chunk, never per element.
enum Parallel {
    /// Number of chunks the work is split into (set by `RuntimeThreads.configure`).
    nonisolated(unsafe) static var width: Int = 2

    /// Work (count × costPerItem, about one unit per simple float operation) below which a range
    /// runs on the calling thread. A hand-off to libdispatch's second worker costs 30–50 µs on this
    /// project's VM (an add of 256 Ki floats: 52 µs on one thread, 107 µs split in two; 1 Mi floats
    /// 273–308 against 313–421 µs): at 32 Ki units, batch-1 models handed off every small op
    /// (PaddleOCR's recogniser: 190 adds and muls of 10–100 Ki floats at 40–50 µs each).
    /// `WCONV_PARALLEL_MIN_WORK` sets it for a process (measurements).
    nonisolated(unsafe) static var minimumWork = ProcessInfo.processInfo.environment["WCONV_PARALLEL_MIN_WORK"].flatMap { Int($0) } ?? 262_144

    /// Runs `body` over `0..<count` split into at most `width` contiguous ranges; serial when the
    /// work (count × costPerItem) is too small to pay for a thread hand-off.
    @inline(__always)
    static func forRange(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let w = width
        if w <= 1 || count < 2 || count &* max(costPerItem, 1) < Parallel.minimumWork {
            if count > 0 { body(0..<count) }
            return
        }
        let chunks = min(w, count)
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            let lo = count * i / chunks
            let hi = count * (i + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// A grow-only scratch buffer reused across layers (im2col columns, GEMM staging).
final class Workspace {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init() {
        capacity = 0
        pointer = Workspace.allocate(1)
    }

    /// 64-byte aligned: oneDNN's staging lives here, and some of its kernels (Winograd's) use
    /// aligned vector loads on their blocked buffers (a 16-byte aligned staging crashed them).
    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
    }

    /// A buffer of at least `count` floats, 64-byte aligned; contents undefined.
    func get(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            UnsafeMutableRawPointer(pointer).deallocate()
            pointer = Workspace.allocate(count)
            capacity = count
        }
        return pointer
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
