import WconvTensor

/// Reads Keras and plain HDF5 files: legacy `.h5` (`model.save` and `save_weights`, tf_keras/Keras 2
/// and Keras 3 spellings), Keras 3 `.keras` zips (read in memory, never unpacked to disk) and
/// `.weights.h5`, and HDF5 files of named datasets that are not Keras (weights-only bundle named by
/// dataset path).
///
/// Bundle names are `layer_name/weight_name` as Keras 3 names variables (`conv1_conv/kernel`,
/// `bn/moving_variance`): the Keras 2 `:0` suffix and the Sequential `model/layer/` scope are
/// dropped, and `.weights.h5`'s `layers/conv2d/vars/0` is mapped to the layer's real name (the
/// `vars` group's `name` attribute or the config) and the variable name its class gives it.
/// Tensors keep Keras layouts (HWIO, (in, out)); layout changes belong to the graph builder.
public enum KerasReader {
    /// All weights as a bundle (see the type's doc for names).
    public static func read(path: String) throws -> TensorBundle {
        try readModel(path: path).bundle
    }

    /// The file's config, per-layer weights in Keras order, Keras version and backend.
    public static func readModel(path: String) throws -> KerasModelFile {
        let file = try MappedFile(path: path)
        let head = UnsafeRawBufferPointer(rebasing: file.buffer[0..<min(file.size, 64)])
        if isZip(head) {
            return try readKerasZip(file)
        }
        guard isHDF5(head) || hasHDF5SignatureLater(file.buffer) else {
            throw WconvError.invalid("not an HDF5 file or .keras zip (no HDF5 signature); expected a Keras .h5, .weights.h5 or .keras file", file: path)
        }
        let h5 = try H5File.open(path: path)
        return try readHDF5(h5, path: path, zipConfig: nil, zipVersion: nil)
    }

    /// True for an HDF5 signature at byte 0 or a `.keras` zip whose first member is a Keras one.
    public static func sniff(_ head: UnsafeRawBufferPointer) -> Bool {
        isHDF5(head) || isZip(head)
    }

    // MARK: sniffing

    static let hdf5Magic: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]

    static func isHDF5(_ head: UnsafeRawBufferPointer) -> Bool {
        head.count >= 8 && head.prefix(8).elementsEqual(hdf5Magic)
    }

    /// HDF5 allows a user block: the signature may sit at 512, 1024, 2048, … instead of 0.
    static func hasHDF5SignatureLater(_ b: UnsafeRawBufferPointer) -> Bool {
        var off = 512
        while off + 8 <= b.count && off <= 1 << 20 {
            if UnsafeRawBufferPointer(rebasing: b[off..<(off + 8)]).elementsEqual(hdf5Magic) { return true }
            off *= 2
        }
        return false
    }

    /// A zip whose first local header names a member Keras writes (`metadata.json` first in 3.x).
    static func isZip(_ head: UnsafeRawBufferPointer) -> Bool {
        guard head.count >= 30, head[0] == 0x50, head[1] == 0x4b, head[2] == 3, head[3] == 4 else { return false }
        let n = Int(head[26]) | Int(head[27]) << 8
        guard head.count >= 30 + n else { return false }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: head[30..<(30 + n)]), as: UTF8.self)
        return ["metadata.json", "config.json", "model.weights.h5"].contains(name)
    }

    // MARK: .keras zip

    static func readKerasZip(_ file: MappedFile) throws -> KerasModelFile {
        let path = file.path
        let zip = try ZipArchive(file: file)
        guard let cfgEntry = zip.entry(named: "config.json") else {
            throw WconvError.invalid("the .keras zip has no config.json (members: \(zip.entries.map(\.name).joined(separator: ", ")))", file: path)
        }
        let config = try JSONValue.parse(zip.data(of: cfgEntry).buffer, what: "config.json", file: path)
        var version: String?
        if let m = zip.entry(named: "metadata.json") {
            version = (try? JSONValue.parse(zip.data(of: m).buffer, what: "metadata.json", file: path))?["keras_version"]?.string
        }
        guard let wEntry = zip.entry(named: "model.weights.h5") else {
            // A model with no weights at all still has an architecture.
            var m = try layersFromConfigOnly(config, path: path)
            m.kerasVersion = version
            return m
        }
        let storage = try zip.data(of: wEntry)
        let h5 = try H5File.open(image: storage.buffer, name: path + "!model.weights.h5", owner: storage)
        var m = try readHDF5(h5, path: path, zipConfig: config, zipVersion: version)
        m.layout = .kerasZip
        return m
    }

    static func layersFromConfigOnly(_ config: JSONValue, path: String) throws -> KerasModelFile {
        var m = KerasModelFile(path: path, layout: .kerasZip, config: config, kerasVersion: nil, backend: nil, layers: [])
        for entry in m.configLayers {
            let name = entry["config"]?["name"]?.string ?? entry["name"]?.string ?? "?"
            m.layers.append(.init(name: name, className: entry["class_name"]?.string, config: entry, weights: []))
        }
        return m
    }

    // MARK: HDF5 layouts

    static func readHDF5(_ h5: H5File, path: String, zipConfig: JSONValue?, zipVersion: String?) throws -> KerasModelFile {
        let root = try h5.root()
        if root.exists("model_weights"), root.hasAttribute("model_config") || (try? root.group("model_weights").hasAttribute("layer_names")) == true {
            let config: JSONValue? = try root.stringAttribute("model_config").map {
                try JSONValue.parse($0, what: "the model_config attribute", file: path)
            }
            return try readLegacy(try root.group("model_weights"), root: root, layout: .legacyModel, config: config, path: path)
        }
        if root.hasAttribute("layer_names") || root.hasAttribute("layer_names0") {
            return try readLegacy(root, root: root, layout: .legacyWeights, config: nil, path: path)
        }
        if root.exists("layers") || (root.exists("vars") && zipConfig != nil) {
            return try readV3Weights(root, config: zipConfig, version: zipVersion, path: path)
        }
        if zipConfig != nil {
            throw WconvError.invalid("model.weights.h5 inside the .keras zip has neither `layers/` nor `vars/`; it is not a Keras 3 weights file", file: path)
        }
        return try readPlain(root, path: path)
    }

    /// Legacy layout: `layer_names` (maybe split into `layer_names0/1/…`) gives the order; each
    /// layer group's `weight_names` gives its datasets in order.
    static func readLegacy(_ g: H5Group, root: H5Group, layout: KerasModelFile.Layout, config: JSONValue?, path: String) throws -> KerasModelFile {
        guard let layerNames = try g.splitStringsAttribute("layer_names") else {
            throw WconvError.invalid("'\(g.path)' has no layer_names attribute; not a Keras weights group", file: path)
        }
        let version = try g.stringAttribute("keras_version") ?? root.stringAttribute("keras_version")
        let backend = try g.stringAttribute("backend") ?? root.stringAttribute("backend")
        var m = KerasModelFile(path: path, layout: layout, config: config, kerasVersion: version, backend: backend, layers: [])
        let entries = configEntriesByName(m.configLayers)
        var names = layerNames
        if g.exists("top_level_model_weights") { names.append("top_level_model_weights") }
        for layerName in names {
            guard g.exists(layerName) else {
                throw WconvError.invalid("layer group '\(H5.join(g.path, layerName))' listed in layer_names is missing", file: path)
            }
            let lg = try g.group(layerName)
            let weightNames = try lg.splitStringsAttribute("weight_names") ?? []
            let entry = entries[layerName]
            let names = weightShortNames(weightNames, layer: layerName, isModel: modelClasses.contains(entry?["class_name"]?.string ?? ""))
            var weights: [KerasModelFile.Weight] = []
            for (wn, short) in zip(weightNames, names) {
                guard lg.exists(wn) else {
                    throw WconvError.invalid("dataset '\(H5.join(lg.path, wn))' listed in weight_names of layer '\(layerName)' is missing; the file is incomplete", file: path)
                }
                let ds = try lg.dataset(wn)
                weights.append(.init(name: short, sourcePath: ds.path, tensor: try ds.readTensor()))
            }
            if layerName == "top_level_model_weights" && weights.isEmpty { continue }
            m.layers.append(.init(name: layerName, className: entry?["class_name"]?.string, config: entry, weights: weights))
        }
        return m
    }

    /// The names weights get in the bundle: the variable name alone (`small/conv_a/kernel:0` →
    /// `kernel`) for ordinary layers; for a nested model (or when short names would collide) the
    /// inner path without `:0` or a leading `<layer>/` scope (`c1/kernel`), as Keras 3 names them.
    static func weightShortNames(_ full: [String], layer: String, isModel: Bool) -> [String] {
        let short = full.map(shortWeightName)
        if !isModel && Set(short).count == short.count { return short }
        return full.map { wn in
            var s = stripIndexSuffix(wn)
            if s.hasPrefix(layer + "/") { s = String(s.dropFirst(layer.count + 1)) }
            return s
        }
    }

    /// `small/conv_a/kernel:0` → `kernel`.
    static func shortWeightName(_ full: String) -> String {
        let last = full.split(separator: "/").last.map(String.init) ?? full
        return stripIndexSuffix(last)
    }

    /// Drops a TensorFlow output index (`:0`).
    static func stripIndexSuffix(_ s: String) -> String {
        if let colon = s.lastIndex(of: ":"), s[s.index(after: colon)...].allSatisfy(\.isNumber), colon != s.startIndex {
            return String(s[..<colon])
        }
        return s
    }

    static func configEntriesByName(_ layers: [JSONValue]) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for e in layers {
            if let n = e["config"]?["name"]?.string ?? e["name"]?.string { out[n] = e }
        }
        return out
    }

    /// Plain HDF5: every numeric dataset, named by its path, in name order, depth first.
    static func readPlain(_ root: H5Group, path: String) throws -> KerasModelFile {
        var weights: [KerasModelFile.Weight] = []
        var warnings: [String] = []
        var visited = 0
        func walk(_ g: H5Group, prefix: String, depth: Int) throws {
            guard depth < 64 else { throw WconvError.invalid("groups nest deeper than 64 at '\(g.path)'", file: path) }
            for name in try g.childNames() {
                visited += 1
                guard visited < 1_000_000 else { throw WconvError.invalid("more than a million HDF5 objects", file: path) }
                let full = prefix.isEmpty ? name : prefix + "/" + name
                switch try g.kind(of: name) {
                case .group: try walk(try g.group(name), prefix: full, depth: depth + 1)
                case .dataset:
                    let ds = try g.dataset(name)
                    if try ds.tensorDType() == nil {
                        warnings.append("skipped dataset '\(full)': not a numeric tensor")
                        continue
                    }
                    weights.append(.init(name: full, sourcePath: ds.path, tensor: try ds.readTensor()))
                case .other:
                    warnings.append("skipped '\(full)': not a group or dataset (external links are not followed)")
                }
            }
        }
        try walk(root, prefix: "", depth: 0)
        return KerasModelFile(path: path, layout: .plainHDF5, config: nil, kerasVersion: nil, backend: nil,
                              layers: [.init(name: "", className: nil, config: nil, weights: weights)], warnings: warnings)
    }
}
