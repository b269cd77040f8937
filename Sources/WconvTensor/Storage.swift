#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Raw bytes behind one or more tensors: a view into a memory-mapped file or an owned buffer.
/// Tensors that share a storage (tied weights, views) hold the same `Storage` object.
public final class Storage: @unchecked Sendable {
    /// First byte of the storage.
    public let bytes: UnsafeRawPointer
    public let byteCount: Int
    /// Keeps the mapping (or the owned allocation) alive as long as any view exists.
    private let owner: AnyObject?
    private let ownedBuffer: UnsafeMutableRawPointer?

    /// A view of `count` bytes starting at `offset` into a mapped file; no copy.
    public init(mapped file: MappedFile, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset + count <= file.size, "storage view outside the mapping")
        self.bytes = file.bytes.advanced(by: offset)
        self.byteCount = count
        self.owner = file
        self.ownedBuffer = nil
    }

    /// A view into memory kept alive by `owner` (for example a `Data`-backed box or a parent storage).
    public init(bytes: UnsafeRawPointer, count: Int, owner: AnyObject) {
        self.bytes = bytes
        self.byteCount = count
        self.owner = owner
        self.ownedBuffer = nil
    }

    /// An owned, zero-filled, 64-byte aligned buffer.
    public init(zeroedByteCount count: Int) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        self.bytes = UnsafeRawPointer(p)
        self.byteCount = count
        self.owner = nil
        self.ownedBuffer = p
    }

    /// An owned copy of `source`.
    public convenience init(copying source: UnsafeRawBufferPointer) {
        self.init(zeroedByteCount: source.count)
        if let base = source.baseAddress, source.count > 0 {
            mutableBytes!.copyMemory(from: base, byteCount: source.count)
        }
    }

    /// An owned copy of an array's bytes.
    public convenience init<T>(array: [T]) {
        self.init(zeroedByteCount: array.count * MemoryLayout<T>.stride)
        array.withUnsafeBytes { src in
            if let base = src.baseAddress, src.count > 0 { mutableBytes!.copyMemory(from: base, byteCount: src.count) }
        }
    }

    /// Writable pointer for owned storage; `nil` for read-only file mappings.
    public var mutableBytes: UnsafeMutableRawPointer? { ownedBuffer }

    /// True when the bytes live in a memory-mapped file (zero-copy).
    public var isMapped: Bool { owner is MappedFile }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: byteCount) }

    /// The file mapping these bytes live in, through parent storages; nil for owned memory.
    public var mappedFile: MappedFile? { (owner as? MappedFile) ?? (owner as? Storage)?.mappedFile }

    deinit { ownedBuffer?.deallocate() }
}

/// A read-only memory mapping of a whole file, unmapped when the last view is gone.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawPointer
    public let size: Int
    private let mapping: UnsafeMutableRawPointer?
    /// Device, inode, size and modification time when mapped (see `reopen`).
    private let identity: [Int]

    /// Maps `path` read-only. An empty file maps to a zero-length buffer.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw WconvError(.invalidInput, "cannot open: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw WconvError(.invalidInput, "cannot stat: \(String(cString: strerror(errno)))", file: path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw WconvError(.invalidInput, "is a directory, expected a model file", file: path)
        }
        size = Int(st.st_size)
        identity = MappedFile.identity(st)
        if size == 0 {
            mapping = nil
            bytes = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw WconvError(.invalidInput, "cannot map \(size) bytes: \(String(cString: strerror(errno)))", file: path)
        }
        mapping = p
        bytes = UnsafeRawPointer(p)
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: size) }

    /// Gives the pages read so far back to the kernel (they count in the process's resident size
    /// until then); a later read faults them in again from the page cache. Safe because the mapping
    /// is read-only and private: no page holds anything the file does not.
    public func dropResidentPages() {
        if let mapping { _ = madvise(mapping, size, Int32(MADV_DONTNEED)) }
    }

    /// The mapped file opened again for pread(2) (writers copy large ranges that way instead of
    /// through the mapping: no page faults, nothing to unmap, nothing resident), or nil when the path
    /// no longer names the file that was mapped, unchanged. The caller closes the descriptor.
    /// The descriptor is not kept with the mapping: a model can map thousands of files.
    public func reopen() -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, MappedFile.identity(st) == identity else {
            close(fd)
            return nil
        }
        return fd
    }

    private static func identity(_ st: stat) -> [Int] {
        [Int(st.st_dev), Int(st.st_ino), Int(st.st_size), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
    }

    deinit {
        if let mapping { munmap(mapping, size) } else { UnsafeMutableRawPointer(mutating: bytes).deallocate() }
    }
}
