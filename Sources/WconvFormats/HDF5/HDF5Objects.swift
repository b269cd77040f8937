import CWconvHDF5
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WconvTensor

extension H5 {
    /// Access property lists that refuse external links (process-wide, created once, never closed).
    static let linkAccess: hid_t = wconv_h5p_no_external_links(0)
    static let groupAccess: hid_t = wconv_h5p_no_external_links(1)
    static let datasetAccess: hid_t = wconv_h5p_no_external_links(2)

    static func join(_ base: String, _ name: String) -> String {
        if base.isEmpty || base == "/" { return "/" + name }
        return base + "/" + name
    }
}

/// An HDF5 group: children, attributes, and creation of sub-objects.
final class H5Group: H5Handle {
    enum ChildKind { case group, dataset, other }

    /// True when a hard or soft link `name` exists here (a path with `/` is checked link by link).
    func exists(_ name: String) -> Bool {
        var prefix = ""
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            prefix = prefix.isEmpty ? String(part) : prefix + "/" + part
            if H5Lexists(id, prefix, H5.linkAccess) <= 0 { _ = H5.takeErrorText(); return false }
        }
        return !prefix.isEmpty
    }

    func group(_ name: String) throws -> H5Group {
        let p = H5.join(path, name)
        let gid = try H5.check(H5Gopen2(id, name, H5.groupAccess), "opening group", path: p, file: file)
        return H5Group(id: gid, path: p, file: file, parent: self, close: H5Gclose)
    }

    func dataset(_ name: String) throws -> H5Dataset {
        let p = H5.join(path, name)
        guard exists(name) else {
            throw WconvError.invalid("dataset '\(p)' is missing", file: file)
        }
        let did = try H5.check(H5Dopen2(id, name, H5.datasetAccess), "opening dataset", path: p, file: file)
        return H5Dataset(id: did, path: p, file: file, parent: self, close: H5Dclose)
    }

    /// Child link names in name order (HDF5's default index), hard links only.
    func childNames() throws -> [String] {
        var info = H5G_info_t()
        try H5.check(H5Gget_info(id, &info), "listing group", path: path, file: file)
        guard info.nlinks < 10_000_000 else { throw WconvError.invalid("group '\(path)' claims \(info.nlinks) links", file: file) }
        var names: [String] = []
        names.reserveCapacity(Int(info.nlinks))
        for i in 0..<info.nlinks {
            let len = try H5.check(H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, H5.linkAccess),
                                   "reading a link name", path: path, file: file)
            guard len < 1 << 20 else { throw WconvError.invalid("a link name in '\(path)' is \(len) bytes long", file: file) }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            try H5.check(H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, H5.linkAccess),
                         "reading a link name", path: path, file: file)
            names.append(String(cString: buf))
        }
        return names
    }

    /// What a child is, without following external links.
    func kind(of name: String) throws -> ChildKind {
        var linfo = H5L_info_t()
        try H5.check(H5Lget_info(id, name, &linfo, H5.linkAccess), "reading link info", path: H5.join(path, name), file: file)
        guard linfo.type == H5L_TYPE_HARD || linfo.type == H5L_TYPE_SOFT else { return .other }
        let oid = H5Oopen(id, name, H5.linkAccess)
        guard oid >= 0 else { _ = H5.takeErrorText(); return .other }
        defer { H5Oclose(oid) }
        switch H5Iget_type(oid) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// True when an attribute `name` exists on this object.
    func hasAttribute(_ name: String) -> Bool {
        let r = H5Aexists(id, name)
        if r < 0 { _ = H5.takeErrorText() }
        return r > 0
    }

    func attribute(_ name: String) throws -> H5Attribute {
        let aid = try H5.check(H5Aopen(id, name, wconv_h5p_default()), "opening attribute '\(name)'", path: path, file: file)
        return H5Attribute(id: aid, path: path + "@" + name, file: file, parent: self, close: H5Aclose)
    }

    /// The strings of attribute `name`; nil when absent; [] when present but not strings (Keras
    /// writes an empty list as a 0-element float64 array).
    func stringsAttribute(_ name: String) throws -> [String]? {
        guard hasAttribute(name) else { return nil }
        return try attribute(name).strings() ?? []
    }

    /// Reads a string-list attribute Keras may have split into `name0`, `name1`, … when it was over
    /// 64 KB (tf_keras `save_attributes_to_hdf5_group`). nil when neither form exists.
    func splitStringsAttribute(_ name: String) throws -> [String]? {
        if let whole = try stringsAttribute(name) { return whole }
        var out: [String] = []
        var i = 0
        while let chunk = try stringsAttribute("\(name)\(i)") {
            out.append(contentsOf: chunk)
            i += 1
        }
        return i == 0 ? nil : out
    }

    /// A single string attribute (scalar or a 1-element array), nil when absent or not a string.
    func stringAttribute(_ name: String) throws -> String? {
        guard let s = try stringsAttribute(name), s.count == 1 else { return nil }
        return s[0]
    }

    // MARK: writing

    /// Creates a child group (intermediate groups of a `/` path included).
    func createGroup(_ name: String) throws -> H5Group {
        let p = H5.join(path, name)
        let lcpl = try H5PropertyList(class: wconv_h5p_link_create(), file: file)
        try H5.check(H5Pset_create_intermediate_group(lcpl.id, 1), "configuring group creation", path: p, file: file, kind: .runtime)
        let gid = try H5.check(H5Gcreate2(id, name, lcpl.id, wconv_h5p_default(), wconv_h5p_default()),
                               "creating group", path: p, file: file, kind: .runtime)
        return H5Group(id: gid, path: p, file: file, parent: self, close: H5Gclose)
    }

    /// Writes a tensor as a little-endian dataset (intermediate groups created): i64 and i32 keep
    /// their integer type (Keras stores Normalization's `count` as int64), everything else is f32.
    func writeDataset(_ name: String, _ tensor: Tensor) throws {
        let p = H5.join(path, name)
        let t: Tensor
        let fileType: hid_t, memType: hid_t
        switch tensor.dtype {
        case .i64: t = tensor.contiguous(); fileType = wconv_h5t_std_i64le(); memType = wconv_h5t_native_int64()
        case .i32: t = tensor.contiguous(); fileType = wconv_h5t_std_i32le(); memType = wconv_h5t_native_int32()
        case .f32: t = tensor.contiguous(); fileType = wconv_h5t_ieee_f32le(); memType = wconv_h5t_native_float()
        default: t = tensor.converted(to: .f32).tensor; fileType = wconv_h5t_ieee_f32le(); memType = wconv_h5t_native_float()
        }
        let space = try H5Dataspace.make(dims: t.shape, file: file)
        let lcpl = try H5PropertyList(class: wconv_h5p_link_create(), file: file)
        try H5.check(H5Pset_create_intermediate_group(lcpl.id, 1), "configuring dataset creation", path: p, file: file, kind: .runtime)
        let did = try H5.check(H5Dcreate2(id, name, fileType, space.id, lcpl.id, wconv_h5p_default(), wconv_h5p_default()),
                               "creating dataset", path: p, file: file, kind: .runtime)
        defer { H5Dclose(did) }
        if t.numel > 0 {
            try t.withContiguousBytes { raw in
                try H5.check(H5Dwrite(did, memType, wconv_h5s_all(), wconv_h5s_all(), wconv_h5p_default(), raw.baseAddress),
                             "writing dataset", path: p, file: file, kind: .runtime)
            }
        }
    }

    /// Writes a string attribute as h5py ≥ 3 does: vlen UTF-8, scalar for one string, 1-D for a list.
    func writeStringAttribute(_ name: String, _ values: [String], scalar: Bool = false) throws {
        let t = try H5Datatype.vlenUTF8(file: file)
        let space = try H5Dataspace.make(dims: scalar ? [] : [values.count], file: file)
        let aid = try H5.check(H5Acreate2(id, name, t.id, space.id, wconv_h5p_default(), wconv_h5p_default()),
                               "creating attribute '\(name)'", path: path, file: file, kind: .runtime)
        defer { H5Aclose(aid) }
        // strdup'd C strings live until the write returns.
        var ptrs: [UnsafeMutablePointer<CChar>?] = values.map { strdup($0) }
        defer { for p in ptrs { free(p) } }
        try H5.check(H5Awrite(aid, t.id, &ptrs), "writing attribute '\(name)'", path: path, file: file, kind: .runtime)
    }

    /// Writes an empty list the way h5py does for `np.asarray([])`: a 0-element float64 array.
    func writeEmptyListAttribute(_ name: String) throws {
        let space = try H5Dataspace.make(dims: [0], file: file)
        let aid = try H5.check(H5Acreate2(id, name, wconv_h5t_ieee_f64le(), space.id, wconv_h5p_default(), wconv_h5p_default()),
                               "creating attribute '\(name)'", path: path, file: file, kind: .runtime)
        H5Aclose(aid)
    }
}

/// An attribute on a group or dataset.
final class H5Attribute: H5Handle, H5Valued {
    static let noun = "attribute"
    static let getType: (hid_t) -> hid_t = H5Aget_type
    static let getSpace: (hid_t) -> hid_t = H5Aget_space

    /// The attribute's strings (vlen or fixed-length), nil when it is not a string attribute.
    func strings() throws -> [String]? {
        let ft = try type()
        guard ft.typeClass == H5T_STRING else { return nil }
        let sp = try space()
        let n = try sp.count()
        guard n > 0 else { return [] }
        guard n <= 1 << 24 else { throw WconvError.invalid("attribute '\(path)' claims \(n) strings", file: file) }
        if ft.isVariableString {
            // HDF5 does not convert between character sets: read in the file's own (ASCII or UTF-8).
            let mt = try H5Datatype.vlenUTF8(file: file)
            try H5.check(H5Tset_cset(mt.id, H5Tget_cset(ft.id)), "setting the character set", path: path, file: file)
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            try H5.check(H5Aread(id, mt.id, &ptrs), "reading string attribute", path: path, file: file)
            let out = ptrs.map { $0.map { String(cString: $0) } ?? "" }
            _ = H5Dvlen_reclaim(mt.id, sp.id, wconv_h5p_default(), &ptrs)
            return out
        }
        // Fixed-length: n × size bytes, NUL-padded and not NUL-terminated when full (h5py 2).
        let size = ft.size
        guard size > 0, size <= 1 << 20 else { throw WconvError.invalid("attribute '\(path)' has string size \(size)", file: file) }
        let (total, o) = n.multipliedReportingOverflow(by: size)
        guard !o, total <= 1 << 28 else { throw WconvError.invalid("attribute '\(path)' is too large (\(n) × \(size) bytes)", file: file) }
        let mt = try H5Datatype.copy(wconv_h5t_c_s1(), file: file)
        try H5.check(H5Tset_size(mt.id, size), "sizing a string type", path: path, file: file)
        try H5.check(H5Tset_strpad(mt.id, H5T_STR_NULLPAD), "setting string padding", path: path, file: file)
        try H5.check(H5Tset_cset(mt.id, H5Tget_cset(ft.id)), "setting the character set", path: path, file: file)
        var buf = [UInt8](repeating: 0, count: total)
        try H5.check(H5Aread(id, mt.id, &buf), "reading string attribute", path: path, file: file)
        var out: [String] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            let slice = buf[(i * size)..<((i + 1) * size)]
            let end = slice.firstIndex(of: 0) ?? slice.endIndex
            out.append(String(decoding: slice[slice.startIndex..<end], as: UTF8.self))
        }
        return out
    }
}
