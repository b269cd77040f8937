#if os(Linux)
import Glibc
import Synchronization

/// The hand-over between the reader and the writer of a two-thread gathered write
/// (`AtomicFileWriter.write(gathering:)`): `slots` buffers of one call each, used in turn. The reader
/// fills buffer `j % slots` once the writer has released call `j - slots`; the writer writes call `j`
/// once the reader has published it.
///
/// A side that finds nothing to do yields its core a few hundred times before it sleeps in short
/// naps: a hand-over every 1 MiB must not wait for a wake-up from the scheduler (a semaphore per
/// call, tried before, waited for a core at every hand-over when other processes kept both busy).
final class StagingRing: @unchecked Sendable {
    /// Eight 1 MiB buffers: best of the sizes measured (4–16 slots of 0.5–4 MiB), 8 MiB of memory.
    static let slots = 8

    private let buffers: [UnsafeMutableRawPointer]
    /// Calls staged by the reader, and calls written by the writer (counts, in file order).
    private let published = Atomic<Int>(0)
    private let released = Atomic<Int>(0)
    /// Set by whichever side stops early (the writer on a failed write, the reader on a failed read).
    private let stopped = Atomic<Bool>(false)
    private var readError: Error?

    init() {
        buffers = (0..<Self.slots).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: AtomicFileWriter.gatherChunk, alignment: 4096)
        }
    }

    deinit { for b in buffers { b.deallocate() } }

    /// The buffer that call `j` is staged in.
    func buffer(_ j: Int) -> UnsafeMutableRawPointer { buffers[j % Self.slots] }

    /// Reader: waits until call `j`'s buffer is free; false when the writer has stopped.
    func waitForFreeSlot(_ j: Int) -> Bool {
        wait { j - self.released.load(ordering: .acquiring) < Self.slots || self.stopped.load(ordering: .acquiring) }
        return !stopped.load(ordering: .acquiring)
    }

    /// Reader: call `j` is staged.
    func publish(_ j: Int) { published.store(j + 1, ordering: .releasing) }

    /// Reader: staging failed; the writer rethrows `error` when it reaches that call.
    func fail(_ error: Error) {
        readError = error
        stopped.store(true, ordering: .releasing)
    }

    /// Writer: waits until call `j` is staged; throws the reader's error if it failed first.
    func waitForStaged(_ j: Int) throws {
        wait { self.published.load(ordering: .acquiring) > j || self.stopped.load(ordering: .acquiring) }
        if published.load(ordering: .acquiring) <= j { throw readError ?? WconvError(.runtime, "the reading thread stopped") }
    }

    /// Writer: call `j` is written; its buffer may be reused.
    func release(_ j: Int) { released.store(j + 1, ordering: .releasing) }

    /// Writer: done, or failed; a reader waiting for a slot gives up.
    func stop() { stopped.store(true, ordering: .releasing) }

    private func wait(until ready: () -> Bool) {
        var idle = 0
        while !ready() {
            idle += 1
            if idle < 400 { sched_yield() } else { usleep(50) }
        }
    }
}
#endif
