#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import CWconvMPI
import Foundation
import WconvTensor

/// How a run chooses its communicator (`--distributed`).
public enum DistributedMode: String, CaseIterable, Sendable {
    /// MPI when a launcher (mpirun, srun) started the process, otherwise one process.
    case auto
    /// Always MPI (a process started alone becomes a world of one).
    case mpi
    /// One process, even under a launcher.
    case none
}

/// The ranks of a data-parallel run and the collectives between them: Open MPI on
/// MPI_COMM_WORLD, or a single process where every collective is the identity and MPI is never
/// initialised (so the normal path needs no running MPI).
///
/// Failures never hang silently: the world communicator returns error codes (they become
/// `WconvError`s naming the collective), and a watchdog thread ends this process, saying why, when
/// one collective waits longer than `timeout` for the other ranks (a rank that hangs; a rank that
/// dies is reported by the launcher, which then stops the others).
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Whether MPI was initialised (false for the single-process communicator).
    public let usesMPI: Bool
    /// Host name of this rank (for messages).
    public let host: String
    /// Seconds one collective may wait before the watchdog ends the process.
    public var timeout: Double

    public var isRoot: Bool { rank == 0 }
    /// "rank 1 of 2 (host)", for messages.
    public var name: String { "rank \(rank) of \(size)\(host.isEmpty ? "" : " (\(host))")" }

    /// One process: rank 0 of 1, no MPI.
    public static let single = Communicator(rank: 0, size: 1, usesMPI: false, host: "", timeout: 0)

    private init(rank: Int, size: Int, usesMPI: Bool, host: String, timeout: Double) {
        self.rank = rank
        self.size = size
        self.usesMPI = usesMPI
        self.host = host
        self.timeout = timeout
    }

    /// Default for `timeout`: long enough for rank 0 to write a checkpoint or evaluate while the
    /// others wait at the next collective.
    public static let defaultTimeout = 600.0

    /// Environment variables by which Open MPI, MPICH/Hydra, PMIx and Slurm's PMI announce a launch.
    public static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"]

    /// Whether a launcher started this process (from its environment).
    public static func launchedByMPI(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        launcherVariables.contains { environment[$0] != nil }
    }

    /// Open MPI's `mpirun` on the PATH, if installed.
    public static func mpirunPath(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { $0 + "/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var started: Communicator?

    /// The communicator for `mode`; MPI is initialised at most once per process.
    public static func start(_ mode: DistributedMode, timeout: Double = defaultTimeout,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Communicator {
        guard mode == .mpi || (mode == .auto && launchedByMPI(environment)) else { return .single }
        guard timeout > 0, timeout.isFinite else { throw WconvError(.usage, "--collective-timeout must be a positive number of seconds") }
        lock.lock()
        defer { lock.unlock() }
        if let c = started { c.timeout = timeout; return c }
        var r: Int32 = 0, s: Int32 = 0
        let rc = wconv_mpi_init(&r, &s)
        guard rc == 0 else { throw WconvError(.runtime, "MPI_Init failed: \(errorString(rc)); start the run with mpirun (Open MPI) or drop --distributed mpi") }
        var buf = [CChar](repeating: 0, count: 256)
        wconv_mpi_processor_name(&buf, Int32(buf.count))
        let c = Communicator(rank: Int(r), size: Int(s), usesMPI: true, host: String(cString: buf), timeout: timeout)
        c.startWatchdog()
        if s > 1 { installTerminationNote(c) }
        started = c
        return c
    }

    static func errorString(_ code: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 512)
        wconv_mpi_error_string(code, &buf, Int32(buf.count))
        let s = String(cString: buf)
        return s.isEmpty ? "MPI error \(code)" : s
    }

    // MARK: collectives

    /// Sums `buffer` over all ranks, in place.
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>, what: String) throws {
        try inChunks(buffer, "all-reduce of \(what)", wconv_mpi_allreduce_sum_float)
    }

    /// Sums `values` over all ranks (f64), returning the totals.
    public func allreduceSum(_ values: [Double], what: String) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { try allreduceSum($0, what: what) }
        return v
    }

    /// Sums `buffer` over all ranks (f64), in place.
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>, what: String) throws {
        try inChunks(buffer, "all-reduce of \(what)", wconv_mpi_allreduce_sum_double)
    }

    /// `op` over `buffer` in pieces of at most `chunk` elements (MPI counts are 32-bit).
    private func inChunks<T>(_ buffer: UnsafeMutableBufferPointer<T>, _ what: String,
                             _ op: (UnsafeMutablePointer<T>, Int32) -> Int32) throws {
        guard usesMPI, size > 1, let base = buffer.baseAddress else { return }
        var off = 0
        while off < buffer.count {
            let n = min(Communicator.chunk, buffer.count - off)
            try call(what) { op(base + off, Int32(n)) }
            off += n
        }
    }

    /// Copies `root`'s bytes into `buffer` on every other rank.
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int, what: String) throws {
        guard usesMPI, size > 1, let base = buffer.baseAddress else { return }
        var off = 0
        while off < buffer.count {
            let n = min(Communicator.chunk * 4, buffer.count - off)
            try call("broadcast of \(what) from rank \(root)") { wconv_mpi_bcast(base + off, Int32(n), Int32(root)) }
            off += n
        }
    }

    /// Waits until every rank arrives.
    public func barrier(what: String) throws {
        guard usesMPI, size > 1 else { return }
        try call("barrier (\(what))") { wconv_mpi_barrier() }
    }

    /// Ends MPI (a no-op without it). Waits for every rank, without the watchdog: the root may
    /// still be writing the outputs, and a rank that dies is reported by the launcher.
    public func finalize() {
        guard usesMPI, wconv_mpi_finalized() == 0 else { return }
        stopWatchdog()
        _ = wconv_mpi_finalize()
    }

    /// Stops every rank of the job with `code` (after an error on this one).
    public func abort(code: Int32) -> Never {
        if usesMPI, size > 1 { _ = wconv_mpi_abort(code) }
        exit(code)
    }

    /// Elements per MPI call: MPI counts are 32-bit.
    static let chunk = 1 << 26

    private func call(_ what: String, _ body: () -> Int32) throws {
        watch(what)
        let rc = body()
        watch(nil)
        guard rc == 0 else {
            throw WconvError(.runtime, "MPI \(what) failed on \(name): \(Communicator.errorString(rc)). Another rank has probably stopped; the launcher's messages name it")
        }
    }

    // MARK: watchdog

    private let watchLock = NSLock()
    private var inFlight: (what: String, since: Double)?
    private var watching = false

    private func watch(_ what: String?) {
        watchLock.lock()
        inFlight = what.map { ($0, Communicator.now()) }
        watchLock.unlock()
    }

    /// Monotonic seconds (for timing collectives).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    private func startWatchdog() {
        watching = true
        let t = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: min(1, max(0.05, timeout / 20)))
                watchLock.lock()
                let live = watching, f = inFlight, limit = timeout
                watchLock.unlock()
                guard live else { return }
                if let f, Communicator.now() - f.since > limit {
                    let msg = "wconv: error: \(name): the \(f.what) waited more than \(Int(limit))s for the other ranks, so one of them has stopped or hangs; ending this rank so the job does not hang (checkpoints already written stay valid). Raise --collective-timeout if a rank legitimately needs longer.\n"
                    FileHandle.standardError.write(Data(msg.utf8))
                    _exit(1)
                }
            }
        }
        t.name = "wconv-mpi-watchdog"
        t.start()
    }

    private func stopWatchdog() {
        watchLock.lock()
        watching = false
        watchLock.unlock()
    }

    /// When the launcher stops this rank because another one failed, say so (the launcher names
    /// the failed rank) instead of vanishing silently.
    private static func installTerminationNote(_ c: Communicator) {
        terminationNote = strdup("wconv: error: \(c.name) received SIGTERM: the launcher stops every rank when one fails (its message names that rank)\n")
        signal(SIGTERM) { sig in
            if let m = terminationNote { _ = write(2, m, strlen(m)) }
            _exit(128 + sig)
        }
    }
}

nonisolated(unsafe) private var terminationNote: UnsafeMutablePointer<CChar>?
