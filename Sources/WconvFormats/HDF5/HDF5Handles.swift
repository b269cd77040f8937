import CWconvHDF5
import WconvTensor

/// The one checking helper for libhdf5: a negative return becomes a `WconvError` that names the
/// object path and carries HDF5's own error stack text. HDF5's automatic printing to stderr is
/// switched off (per thread, as the thread-safe build keeps it per thread) before every call
/// sequence that can fail, so the user sees one message, from wconv.
enum H5 {
    /// Loads HDF5 on first use (a clear error when it cannot be) and silences its stderr error
    /// printing for the calling thread.
    static func begin(file: String?) throws {
        if let why = wconv_hdf5_load_error() { throw WconvError(.runtime, String(cString: why), file: file) }
        wconv_h5e_silence()
    }

    /// The current error stack as text (cleared afterwards), or "" when empty.
    static func takeErrorText() -> String {
        var buf = [CChar](repeating: 0, count: 2048)
        let n = buf.withUnsafeMutableBufferPointer { wconv_h5e_take_text($0.baseAddress, $0.count) }
        if n == 0 { return "" }
        return String(cString: buf)
    }

    static func error(_ what: String, path: String, file: String?, kind: WconvError.Kind = .invalidInput) -> WconvError {
        let stack = takeErrorText()
        let detail = stack.isEmpty ? "" : " (HDF5: \(stack))"
        let at = path.isEmpty ? "" : " at '\(path)'"
        return WconvError(kind, "\(what)\(at) failed\(detail)", file: file)
    }

    /// Checks an id-returning call.
    @discardableResult
    static func check(_ id: hid_t, _ what: String, path: String, file: String?, kind: WconvError.Kind = .invalidInput) throws -> hid_t {
        if id < 0 { throw error(what, path: path, file: file, kind: kind) }
        return id
    }

    /// Checks a status-returning call (herr_t / htri_t / ssize_t).
    @discardableResult
    static func check<I: BinaryInteger>(_ status: I, _ what: String, path: String, file: String?, kind: WconvError.Kind = .invalidInput) throws -> I {
        if status < 0 { throw error(what, path: path, file: file, kind: kind) }
        return status
    }
}

/// Base of the owner classes: one HDF5 id, closed exactly once in `deinit` by the kind's close call.
/// Objects keep the file they came from alive (`parent`), because HDF5 keeps a file open while any
/// object in it is open and wconv wants the file's lifetime to follow Swift's references.
class H5Handle {
    let id: hid_t
    /// Path of the object inside the file, for messages.
    let path: String
    /// File name for messages.
    let file: String?
    let parent: H5Handle?
    private let closeFn: (hid_t) -> herr_t

    init(id: hid_t, path: String, file: String?, parent: H5Handle?, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.path = path
        self.file = file
        self.parent = parent
        self.closeFn = close
    }

    deinit { _ = closeFn(id) }
}

/// An open HDF5 file, read-only from disk or from an in-memory image, or newly created for writing.
final class H5File: H5Handle {
    /// Opens `path` read-only.
    static func open(path: String) throws -> H5File {
        try H5.begin(file: path)
        let id = try H5.check(H5Fopen(path, wconv_h5f_acc_rdonly(), wconv_h5p_default()),
                              "opening the file as HDF5", path: "", file: path)
        return H5File(id: id, path: "/", file: path, parent: nil, close: H5Fclose)
    }

    /// Opens an HDF5 file image held in memory (a `.keras` zip member) without touching the disk
    /// and without copying it: H5LTopen_file_image with DONT_COPY | DONT_RELEASE reads `image`
    /// in place, so `owner` (the storage holding the bytes) is kept alive as long as the file.
    static func open(image: UnsafeRawBufferPointer, name: String, owner: AnyObject?) throws -> H5File {
        try H5.begin(file: name)
        guard let base = image.baseAddress, image.count > 0 else {
            throw WconvError.invalid("the HDF5 image is empty", file: name)
        }
        let id = try H5.check(wconv_h5_open_image_in_place(base, image.count), "opening the in-memory image as HDF5", path: "", file: name)
        let f = H5File(id: id, path: "/", file: name, parent: nil, close: H5Fclose)
        f.imageOwner = owner
        return f
    }

    /// The memory an in-place file image lives in.
    private(set) var imageOwner: AnyObject?

    /// Creates `path` for writing, failing when it exists (callers write to a fresh temporary name).
    static func create(path: String) throws -> H5File {
        try H5.begin(file: path)
        let id = try H5.check(H5Fcreate(path, wconv_h5f_acc_excl(), wconv_h5p_default(), wconv_h5p_default()),
                              "creating the HDF5 file", path: "", file: path, kind: .runtime)
        return H5File(id: id, path: "/", file: path, parent: nil, close: H5Fclose)
    }

    /// The root group.
    func root() throws -> H5Group {
        let id = try H5.check(H5Gopen2(self.id, "/", wconv_h5p_default()), "opening the root group", path: "/", file: file)
        return H5Group(id: id, path: "/", file: file, parent: self, close: H5Gclose)
    }

    /// Writes buffered data to the disk.
    func flush() throws {
        try H5.check(H5Fflush(id, H5F_SCOPE_GLOBAL), "flushing", path: "", file: file, kind: .runtime)
    }
}

/// A property list (file access, link creation, …).
final class H5PropertyList: H5Handle {
    init(class cls: hid_t, file: String?) throws {
        let id = try H5.check(H5Pcreate(cls), "creating a property list", path: "", file: file, kind: .runtime)
        super.init(id: id, path: "", file: file, parent: nil, close: H5Pclose)
    }
}

/// A dataspace: the shape of a dataset or attribute.
final class H5Dataspace: H5Handle {
    enum Kind { case scalar, simple, null }

    /// A new simple dataspace of `dims` (an empty `dims` is scalar).
    static func make(dims: [Int], file: String?) throws -> H5Dataspace {
        if dims.isEmpty {
            let id = try H5.check(H5Screate(H5S_SCALAR), "creating a scalar dataspace", path: "", file: file, kind: .runtime)
            return H5Dataspace(id: id, path: "", file: file, parent: nil, close: H5Sclose)
        }
        let d = dims.map { hsize_t($0) }
        let id = try H5.check(H5Screate_simple(Int32(d.count), d, nil), "creating a dataspace \(dims)", path: "", file: file, kind: .runtime)
        return H5Dataspace(id: id, path: "", file: file, parent: nil, close: H5Sclose)
    }

    var kind: Kind {
        switch H5Sget_simple_extent_type(id) {
        case H5S_SCALAR: return .scalar
        case H5S_NULL: return .null
        default: return .simple
        }
    }

    /// The dims (empty for scalar), checked to fit in Int.
    func dims() throws -> [Int] {
        let rank = try H5.check(H5Sget_simple_extent_ndims(id), "reading the rank", path: path, file: file)
        guard rank <= 32 else { throw WconvError.invalid("'\(path)' has rank \(rank); at most 32 is supported", file: file) }
        if rank == 0 { return [] }
        var d = [hsize_t](repeating: 0, count: Int(rank))
        try H5.check(H5Sget_simple_extent_dims(id, &d, nil), "reading the dims", path: path, file: file)
        return try d.map {
            guard $0 <= hsize_t(Int.max) else { throw WconvError.invalid("'\(path)' has a dimension of \($0)", file: file) }
            return Int($0)
        }
    }

    /// Number of elements (1 for scalar, 0 for null).
    func count() throws -> Int {
        let n = try H5.check(H5Sget_simple_extent_npoints(id), "counting elements", path: path, file: file)
        return Int(n)
    }
}

/// A datatype, either read from a dataset/attribute or built for memory.
final class H5Datatype: H5Handle {
    /// A copy of a predefined type (so it can be modified and closed like any other).
    static func copy(_ base: hid_t, file: String?) throws -> H5Datatype {
        let id = try H5.check(H5Tcopy(base), "copying a datatype", path: "", file: file, kind: .runtime)
        return H5Datatype(id: id, path: "", file: file, parent: nil, close: H5Tclose)
    }

    /// A variable-length UTF-8 C string type.
    static func vlenUTF8(file: String?) throws -> H5Datatype {
        let t = try copy(wconv_h5t_c_s1(), file: file)
        try H5.check(H5Tset_size(t.id, wconv_h5t_variable()), "making a vlen string type", path: "", file: file, kind: .runtime)
        try H5.check(H5Tset_cset(t.id, H5T_CSET_UTF8), "setting UTF-8", path: "", file: file, kind: .runtime)
        return t
    }

    var typeClass: H5T_class_t { H5Tget_class(id) }
    var size: Int { Int(H5Tget_size(id)) }
    var isVariableString: Bool { H5Tis_variable_str(id) > 0 }
    var isSigned: Bool { H5Tget_sign(id) == H5T_SGN_2 }
    var isBigEndian: Bool { H5Tget_order(id) == H5T_ORDER_BE }

    /// Mantissa bits of a float type (10 for IEEE half, 7 for bfloat16).
    func mantissaBits() -> Int {
        var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
        guard H5Tget_fields(id, &spos, &epos, &esize, &mpos, &msize) >= 0 else { return -1 }
        return msize
    }
}

/// Datasets and attributes: both hold values with an element type and a dataspace, each fetched by
/// the kind's own call.
protocol H5Valued: H5Handle {
    /// "dataset" or "attribute", for messages.
    static var noun: String { get }
    static var getType: (hid_t) -> hid_t { get }
    static var getSpace: (hid_t) -> hid_t { get }
}

extension H5Valued {
    func type() throws -> H5Datatype {
        let t = try H5.check(Self.getType(id), "reading the \(Self.noun) type", path: path, file: file)
        return H5Datatype(id: t, path: path, file: file, parent: nil, close: H5Tclose)
    }

    func space() throws -> H5Dataspace {
        let s = try H5.check(Self.getSpace(id), "reading the \(Self.noun) space", path: path, file: file)
        return H5Dataspace(id: s, path: path, file: file, parent: nil, close: H5Sclose)
    }
}
