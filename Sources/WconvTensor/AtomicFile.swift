import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file atomically (design.md §4): bytes go straight to a temporary file beside the target
/// (pwrite(2)/pwritev(2) at the running offset, nothing buffered in the process), which is then
/// renamed over it. An interrupted or failed write never leaves a half-written file where a good
/// one was; on any error the temporary file is removed. No fsync: like torch.save and safetensors,
/// durability across a power cut is left to the filesystem (ext4 flushes a file renamed over
/// another); forcing it cost a 100 MB convert more than the whole rest of the work.
public final class AtomicFileWriter {
    public let path: String
    private let tempPath: String
    private var fd: Int32
    private var finished = false
    /// Bytes written so far.
    public private(set) var offset: Int = 0
    /// Bytes allocated up front by `reserve` (the file is cut back to `offset` on commit).
    private var reserved = 0

    public init(path: String) throws {
        self.path = path
        let dir: String
        if let slash = path.lastIndex(of: "/") { dir = String(path[..<slash]) } else { dir = "." }
        let base = path.split(separator: "/").last.map(String.init) ?? path
        self.tempPath = (dir.isEmpty ? "" : dir + "/") + ".\(base).wconv-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw WconvError(.runtime, "cannot create a temporary file in \(dir.isEmpty ? "/" : dir): \(String(cString: strerror(errno)))", file: path)
        }
    }

    /// Allocates the file's final size up front: the filesystem allocates once instead of block by
    /// block during the writes (~15 % less kernel time for a 100 MB file on ext4), and a full disk is
    /// reported before anything is written. Where the filesystem cannot, nothing happens.
    public func reserve(_ byteCount: Int) throws {
        #if os(Linux)
        guard byteCount > reserved else { return }
        let rc = posix_fallocate(fd, 0, off_t(byteCount))
        if rc == 0 {
            reserved = byteCount
        } else if rc == ENOSPC {
            throw WconvError(.runtime, "not enough disk space for \(byteCount) bytes", file: path)
        }
        #endif
    }

    /// Appends raw bytes. A large buffer is first faulted in with one madvise (when it is a file
    /// mapping, one pass over its pages costs less than faulting them one by one inside write(2)).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        #if os(Linux)
        if bytes.count >= 1 << 20, let base = bytes.baseAddress {
            let page = Int(getpagesize())
            let start = Int(bitPattern: base) & ~(page - 1)
            let madvPopulateRead: Int32 = 22  // MADV_POPULATE_READ (Linux 5.14); older kernels say EINVAL
            _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(bitPattern: base) + bytes.count - start, madvPopulateRead)
        }
        #endif
        try writeAll(bytes)
    }

    /// pwrite(2) at `offset` until every byte is written.
    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        try pwriteAll(bytes, at: offset)
        offset += bytes.count
    }

    /// pwrite(2) at `position` until every byte is written (does not move `offset`).
    private func pwriteAll(_ bytes: UnsafeRawBufferPointer, at position: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress!.advanced(by: done), bytes.count - done, off_t(position + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WconvError(.runtime, "write failed after \(position + done) bytes: \(String(cString: strerror(errno)))", file: path)
            }
            done += n
        }
    }

    /// Appends `pieces` back to back with as few system calls as possible: calls of at most
    /// `gatherChunk` bytes that end on multiples of it in the file, so the kernel fills every page of
    /// the page cache once and whole (one write(2) per tensor leaves partial pages at every tensor
    /// boundary, which the kernel zeroes and fills twice, and caps its folio size by the unaligned
    /// offsets). Calls stay at 1 MiB because larger page-cache folios made the odd run several times
    /// slower on a VM whose host reclaims freed memory. Memory is written with pwritev(2); a call
    /// holding a large range of a mapped file is staged instead: read from the file with pread(2)
    /// into a 1 MiB buffer (see `WritePiece`), then written.
    /// A write of at least `parallelMinimum` bytes on a machine with 2+ cores is cut in two halves of
    /// whole calls, each copied by its own thread into its own part of the file (the copies into the
    /// page cache are per-page kernel work that overlaps; ResNet-50's 100 MB: 32 → ≈ 18 ms of pread +
    /// pwrite). The halves share nothing until the one join at the end — a reader thread handing each
    /// call to the writer (tried before) waited for a core at every hand-over under load and ran 3–4×
    /// slower in 5 runs of 12. `WCONV_WRITE_THREADS=1` keeps one thread.
    /// The pointers must stay valid for the duration of the call.
    public func write(gathering pieces: [WritePiece]) throws {
        let calls = GatherPlan(pieces: pieces, startingAt: offset).calls
        var end = offset
        let starts = calls.map { c in defer { end += c.count }; return end }
        if let split = AtomicFileWriter.parallelSplit(calls, bytes: end - offset) {
            final class Outcome: @unchecked Sendable { var error: Error? }
            let second = Outcome(), finished = DispatchSemaphore(value: 0)
            let worker = Thread { [self] in
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.gatherChunk, alignment: 4096)
                var reader = RangeReader()
                do { try writeCalls(calls, split..<calls.count, at: starts, pieces, buffer, &reader) } catch { second.error = error }
                reader.close()
                buffer.deallocate()
                finished.signal()
            }
            worker.start()
            var reader = RangeReader()
            var firstError: Error?
            do { try writeCalls(calls, 0..<split, at: starts, pieces, stagingBuffer(), &reader) } catch { firstError = error }
            reader.close()
            finished.wait()
            if let e = firstError ?? second.error { throw e }
        } else {
            var reader = RangeReader()
            defer { reader.close() }
            try writeCalls(calls, 0..<calls.count, at: starts, pieces, stagingBuffer(), &reader)
        }
        offset = end
    }

    /// Writes at least this many bytes of a gathered write on two threads (see `write(gathering:)`).
    static let parallelMinimum = 16 << 20

    /// The index of the first call of the second half, or nil when the write stays on one thread.
    static func parallelSplit(_ calls: [GatherPlan.Call], bytes: Int) -> Int? {
        guard bytes >= parallelMinimum, calls.count >= 2, ProcessInfo.processInfo.activeProcessorCount >= 2,
              ProcessInfo.processInfo.environment["WCONV_WRITE_THREADS"] != "1" else { return nil }
        var sum = 0
        for (i, c) in calls.enumerated() {
            if sum >= bytes / 2 { return i }
            sum += c.count
        }
        return nil
    }

    /// Writes calls `range` of a gathered write, each at its start in the file (`offset` untouched).
    private func writeCalls(_ calls: [GatherPlan.Call], _ range: Range<Int>, at starts: [Int], _ pieces: [WritePiece],
                            _ buffer: UnsafeMutableRawPointer, _ reader: inout RangeReader) throws {
        for k in range {
            let call = calls[k]
            if call.staged {
                try reader.stage(call, pieces, into: buffer)
                try pwriteAll(UnsafeRawBufferPointer(start: buffer, count: call.count), at: starts[k])
            } else {
                try writeVectors(call, pieces, at: starts[k])
            }
        }
    }

    /// pwritev(2) of one call's fragments at `position`, until every byte is written.
    private func writeVectors(_ call: GatherPlan.Call, _ pieces: [WritePiece], at position: Int) throws {
        var vecs = call.fragments.map {
            iovec(iov_base: UnsafeMutableRawPointer(mutating: pieces[$0.piece].bytes.baseAddress! + $0.start), iov_len: $0.count)
        }
        var first = 0, at = position
        while first < vecs.count {
            let n = vecs[first...].withUnsafeBufferPointer { pwritev(fd, $0.baseAddress, Int32($0.count), off_t(at)) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                let reason = n < 0 ? String(cString: strerror(errno)) : "no progress"
                throw WconvError(.runtime, "write failed after \(at) bytes: \(reason)", file: path)
            }
            at += n
            var advanced = n  // a short write resumes inside the vector it stopped in
            while advanced > 0 {
                if advanced >= vecs[first].iov_len {
                    advanced -= vecs[first].iov_len
                    first += 1
                } else {
                    vecs[first].iov_base += advanced
                    vecs[first].iov_len -= advanced
                    advanced = 0
                }
            }
        }
    }

    /// Appends memory buffers back to back (`write(gathering:)` with no mapped files).
    public func write(gathering buffers: [UnsafeRawBufferPointer]) throws {
        try write(gathering: buffers.map { WritePiece($0) })
    }

    /// Largest call of a gathered write (see `write(gathering:)`).
    static let gatherChunk = 1 << 20
    /// IOV_MAX on Linux.
    static let maxVectors = 1024
    /// Ranges of a mapped file at least this long are read with pread(2); shorter ones are copied
    /// through the mapping (one system call each would cost more than the page faults).
    static let readThreshold = 64 << 10

    private var staging: UnsafeMutableRawPointer?
    private func stagingBuffer() -> UnsafeMutableRawPointer {
        if let staging { return staging }
        let b = UnsafeMutableRawPointer.allocate(byteCount: Self.gatherChunk, alignment: 4096)
        staging = b
        return b
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    public func write(_ string: String) throws { try write(Array(string.utf8)) }

    /// Appends `count` zero bytes (alignment padding).
    public func writeZeros(_ count: Int) throws {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    /// Closes and renames over the target.
    public func commit() throws {
        guard !finished else { return }
        finished = true
        defer { fd = -1 }
        guard reserved <= offset || ftruncate(fd, off_t(offset)) == 0, close(fd) == 0 else {
            let msg = String(cString: strerror(errno))
            unlink(tempPath)
            throw WconvError(.runtime, "closing the written file failed: \(msg)", file: path)
        }
        guard rename(tempPath, path) == 0 else {
            let msg = String(cString: strerror(errno))
            unlink(tempPath)
            throw WconvError(.runtime, "cannot rename the finished file into place: \(msg)", file: path)
        }
    }

    /// Abandons the write and removes the temporary file.
    public func abort() {
        guard !finished else { return }
        finished = true
        close(fd)
        unlink(tempPath)
        fd = -1
    }

    deinit {
        abort()
        staging?.deallocate()
    }

    /// Writes the whole file with `body`, committing on success and removing the temporary on error.
    public static func write(to path: String, _ body: (AtomicFileWriter) throws -> Void) throws {
        let w = try AtomicFileWriter(path: path)
        do {
            try body(w)
            try w.commit()
        } catch {
            w.abort()
            throw error
        }
    }
}

/// One piece of a gathered write (`AtomicFileWriter.write(gathering:)`): bytes in memory and, when
/// they lie in a file mapping, that file. Large ranges of a mapped file are then read from the file
/// with pread(2) instead of through the mapping: its pages are never faulted in, so there are no
/// page tables to build and tear down and nothing of the input becomes resident (a 100 MB convert
/// peaked at the input's size in resident memory). Where the file cannot be read so (replaced since
/// it was mapped), the bytes are copied through the mapping.
public struct WritePiece {
    public let bytes: UnsafeRawBufferPointer
    public let file: MappedFile?
    public init(_ bytes: UnsafeRawBufferPointer, in file: MappedFile? = nil) {
        self.bytes = bytes
        self.file = file
    }
}

/// How a gathered write is cut into calls (see `AtomicFileWriter.write(gathering:)`).
struct GatherPlan {
    struct Call {
        var fragments: [(piece: Int, start: Int, count: Int)] = []
        var count = 0
        /// Holds a large range of a mapped file: read into a staging buffer, then written.
        var staged = false
    }
    var calls: [Call] = []

    init(pieces: [WritePiece], startingAt start: Int) {
        var offset = start
        var call = Call()
        for (i, p) in pieces.enumerated() where p.bytes.count > 0 {
            var at = 0
            while at < p.bytes.count {
                let limit = AtomicFileWriter.gatherChunk - offset % AtomicFileWriter.gatherChunk
                let take = min(p.bytes.count - at, limit - call.count)
                call.fragments.append((i, at, take))
                call.count += take
                if take >= AtomicFileWriter.readThreshold && p.file != nil { call.staged = true }
                at += take
                if call.count == limit || call.fragments.count == AtomicFileWriter.maxVectors {
                    offset += call.count
                    calls.append(call)
                    call = Call()
                }
            }
        }
        if call.count > 0 { calls.append(call) }
    }
}

/// Reads ranges of mapped files with pread(2), opening each file once per gathered write.
struct RangeReader {
    private var fds: [ObjectIdentifier: Int32] = [:]  // -1: read through the mapping

    /// Copies one call's fragments into `buffer`: large ranges of mapped files read from the file,
    /// the rest copied from memory.
    mutating func stage(_ call: GatherPlan.Call, _ pieces: [WritePiece], into buffer: UnsafeMutableRawPointer) throws {
        var at = 0
        for f in call.fragments {
            let p = pieces[f.piece]
            let src = p.bytes.baseAddress! + f.start
            var read = false
            if f.count >= AtomicFileWriter.readThreshold, let file = p.file {
                read = try self.read(file, from: src, count: f.count, into: buffer + at)
            }
            if !read { (buffer + at).copyMemory(from: src, byteCount: f.count) }
            at += f.count
        }
    }

    /// Reads `count` bytes of `file` starting where `src` (inside its mapping) points; false when
    /// the file cannot be read that way (the caller copies through the mapping).
    private mutating func read(_ file: MappedFile, from src: UnsafeRawPointer, count: Int, into dst: UnsafeMutableRawPointer) throws -> Bool {
        let position = src - file.bytes
        guard position >= 0, position + count <= file.size else { return false }
        let key = ObjectIdentifier(file)
        let fd: Int32
        if let known = fds[key] { fd = known } else { fd = file.reopen() ?? -1; fds[key] = fd }
        guard fd >= 0 else { return false }
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, count - done, off_t(position + done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if done == 0 && n < 0 { return false }
                throw WconvError(.runtime, "the input changed while it was being read: \(count - done) bytes missing at offset \(position + done)", file: file.path)
            }
            done += n
        }
        return true
    }

    func close() { for fd in fds.values where fd >= 0 { _ = Glibc.close(fd) } }
}
