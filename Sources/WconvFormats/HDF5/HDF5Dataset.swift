import CWconvHDF5
import WconvTensor

/// A dataset: shape, element type, and its values read into a `Tensor`.
final class H5Dataset: H5Handle, H5Valued {
    static let noun = "dataset"
    static let getType: (hid_t) -> hid_t = H5Dget_type
    static let getSpace: (hid_t) -> hid_t = H5Dget_space

    func shape() throws -> [Int] { try space().dims() }

    /// The string value of a dataset attribute (Keras tags bfloat16 datasets with `dtype`).
    func stringAttribute(_ name: String) -> String? {
        guard H5Aexists(id, name) > 0 else { _ = H5.takeErrorText(); return nil }
        guard let aid = try? H5.check(H5Aopen(id, name, wconv_h5p_default()), "opening attribute", path: path, file: file) else { return nil }
        let a = H5Attribute(id: aid, path: path + "@" + name, file: file, parent: self, close: H5Aclose)
        guard let s = try? a.strings(), s.count == 1 else { return nil }
        return s[0]
    }

    /// How a file type is read: the wconv dtype and the memory type HDF5 converts into.
    /// Floats and integers use native types (HDF5 swaps big-endian data on the way); 2-byte floats
    /// are read bit-exactly through a copy of the file type set to little-endian, because reading
    /// f16 "as uint16" would convert values rather than copy bits.
    private func plan(_ ft: H5Datatype) throws -> (dtype: DType, memType: H5Datatype)? {
        let size = ft.size
        switch ft.typeClass {
        case H5T_FLOAT:
            switch size {
            case 8: return (.f64, try .copy(wconv_h5t_native_double(), file: file))
            case 4: return (.f32, try .copy(wconv_h5t_native_float(), file: file))
            case 2:
                let m = ft.mantissaBits()
                guard m == 10 || m == 7 else { return nil }
                let mt = try H5Datatype.copy(ft.id, file: file)
                try H5.check(H5Tset_order(mt.id, H5T_ORDER_LE), "setting byte order", path: path, file: file)
                return (m == 10 ? .f16 : .bf16, mt)
            default: return nil
            }
        case H5T_INTEGER:
            let signed = ft.isSigned
            switch (size, signed) {
            case (1, true): return (.i8, try .copy(wconv_h5t_native_int8(), file: file))
            case (1, false): return (.u8, try .copy(wconv_h5t_native_uint8(), file: file))
            case (2, true): return (.i16, try .copy(wconv_h5t_native_int16(), file: file))
            // No unsigned 16/32/64-bit dtype: widen to the next signed type (exact except u64 > 2^63).
            case (2, false): return (.i32, try .copy(wconv_h5t_native_int32(), file: file))
            case (4, true): return (.i32, try .copy(wconv_h5t_native_int32(), file: file))
            case (4, false), (8, _): return (.i64, try .copy(wconv_h5t_native_int64(), file: file))
            default: return nil
            }
        case H5T_ENUM where size == 1:
            // h5py stores numpy bool as an int8 enum {FALSE, TRUE}.
            return (.bool, try .copy(wconv_h5t_native_int8(), file: file))
        case H5T_OPAQUE where size == 2 && stringAttribute("dtype") == "bfloat16":
            return (.bf16, try H5Datatype.copy(ft.id, file: file))
        default:
            return nil
        }
    }

    /// The wconv dtype this dataset reads as, or nil when it is not numeric (strings, compounds).
    func tensorDType() throws -> DType? { try plan(try type())?.dtype }

    /// Reads the whole dataset into an owned tensor. Throws for non-numeric datasets.
    func readTensor() throws -> Tensor {
        let ft = try type()
        guard let (dtype, mt) = try plan(ft) else {
            throw WconvError.invalid("dataset '\(path)' has HDF5 type class \(ft.typeClass.rawValue) of \(ft.size) bytes, which is not a numeric tensor", file: file)
        }
        var dtypeOut = dtype
        if dtype == .f32 || dtype == .f16, stringAttribute("dtype") == "bfloat16" { dtypeOut = .bf16 }
        let sp = try space()
        guard sp.kind != .null else { throw WconvError.invalid("dataset '\(path)' has a null dataspace", file: file) }
        let shape = try sp.dims()
        let numel = try Tensor.checkedNumel(shape)
        let (bytes, o) = numel.multipliedReportingOverflow(by: dtypeOut.byteSize)
        guard !o else { throw WconvError.invalid("dataset '\(path)' shape \(shape) overflows", file: file) }
        // Never allocate more than the file could justify: the stored bytes (times a generous
        // compression ratio for filtered data) bound the size; unallocated datasets are small.
        let stored = Int(clamping: H5Dget_storage_size(id))
        let (bound, o2) = stored.multipliedReportingOverflow(by: 1100)
        guard bytes <= (o2 ? Int.max : max(bound, 1 << 20)) else {
            throw WconvError.invalid("dataset '\(path)' claims shape \(shape) (\(bytes) bytes) but stores only \(stored) bytes; the file is corrupt", file: file)
        }
        let storage = Storage(zeroedByteCount: bytes)
        if numel > 0 {
            try H5.check(H5Dread(id, mt.id, wconv_h5s_all(), wconv_h5s_all(), wconv_h5p_default(), storage.mutableBytes),
                         "reading dataset \(shape)", path: path, file: file)
        }
        return try Tensor(dtype: dtypeOut, shape: shape, storage: storage)
    }
}
