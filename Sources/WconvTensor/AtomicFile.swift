#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file atomically (design.md §4): bytes go straight to a temporary file beside the target
/// (write(2), nothing buffered in the process), which is then renamed over it. An interrupted or
/// failed write never leaves a half-written file where a good one was; on any error the temporary
/// file is removed. No fsync: like torch.save and safetensors, durability across a power cut is left
/// to the filesystem (ext4 flushes a file renamed over another); forcing it cost a 100 MB convert
/// more than the whole rest of the work.
public final class AtomicFileWriter {
    public let path: String
    private let tempPath: String
    private var fd: Int32
    private var finished = false
    /// Bytes written so far.
    public private(set) var offset: Int = 0

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

    /// Appends raw bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress!.advanced(by: done), bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw WconvError(.runtime, "write failed after \(offset + done) bytes: \(String(cString: strerror(errno)))", file: path)
            }
            done += n
        }
        offset += done
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
        guard close(fd) == 0 else {
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

    deinit { abort() }

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
