#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WconvTensor

/// Writes the legacy Keras HDF5 weights layout (`save_weights('x.h5')`), which both Keras 3
/// (`model.load_weights('x.h5')`) and tf_keras load by layer order:
/// root attributes `layer_names` (every layer, model order), `backend`, `keras_version`; one group
/// per layer with a `weight_names` attribute (an empty float64 array when it has none, as h5py
/// writes `[]`) and its datasets at `<layer>/<layer>/<weight>` (Keras 3 Functional spelling).
/// Strings are vlen UTF-8 like h5py ≥ 3 writes them; values little-endian f32 (i64/i32 kept).
/// The file is written under a temporary name beside the target, flushed, fsync'd and renamed.
public enum KerasWeightsWriter {
    /// One layer to write: name and weights (Keras names and Keras layouts) in Keras order.
    public struct Layer: Sendable {
        public var name: String
        public var weights: [(name: String, tensor: Tensor)]
        public init(name: String, weights: [(name: String, tensor: Tensor)]) {
            self.name = name
            self.weights = weights
        }
    }

    public static func write(layers: [Layer], to path: String, kerasVersion: String = "3.15.1", backend: String = "tensorflow") throws {
        // Keras 3 picks the loader by suffix: `*.weights.h5` means the Keras 3 layout, and a legacy
        // file with that name fails to load (measured), so refuse the name instead of writing it.
        if path.lowercased().hasSuffix(".weights.h5") {
            throw WconvError(.usage, "Keras 3 reads any '*.weights.h5' as its own layout and would reject this legacy-layout file; name it '*.h5' (e.g. \(String(path.dropLast(".weights.h5".count))).h5)", file: path)
        }
        var seen = Set<String>()
        for l in layers {
            guard !l.name.isEmpty, !l.name.hasPrefix("/"), seen.insert(l.name).inserted else {
                throw WconvError(.invalidInput, "layer name '\(l.name)' is empty, absolute or repeated; Keras needs unique layer names", file: path)
            }
        }
        let dir: String
        if let slash = path.lastIndex(of: "/") { dir = String(path[..<slash]) } else { dir = "." }
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let temp = (dir.isEmpty ? "" : dir + "/") + ".\(base).wconv-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try writeFile(layers: layers, temp: temp, reportAs: path, kerasVersion: kerasVersion, backend: backend)
            // HDF5 closed the file; make the bytes durable before the rename publishes them.
            let fd = open(temp, O_RDONLY)
            guard fd >= 0, fsync(fd) == 0 else {
                if fd >= 0 { close(fd) }
                throw WconvError(.runtime, "flush failed: \(String(cString: strerror(errno)))", file: path)
            }
            close(fd)
            guard rename(temp, path) == 0 else {
                throw WconvError(.runtime, "cannot rename the finished file into place: \(String(cString: strerror(errno)))", file: path)
            }
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// Every HDF5 handle lives inside this function, so the file is closed when it returns.
    private static func writeFile(layers: [Layer], temp: String, reportAs path: String, kerasVersion: String, backend: String) throws {
        let file = try H5File.create(path: temp)
        let root = try file.root()
        try root.writeStringAttribute("layer_names", layers.map(\.name))
        try root.writeStringAttribute("backend", [backend], scalar: true)
        try root.writeStringAttribute("keras_version", [kerasVersion], scalar: true)
        for layer in layers {
            let g = try root.createGroup(layer.name)
            let names = layer.weights.map { "\(layer.name)/\($0.name)" }
            if names.isEmpty {
                try g.writeEmptyListAttribute("weight_names")
            } else {
                try g.writeStringAttribute("weight_names", names)
            }
            for (wname, t) in zip(names, layer.weights.map(\.tensor)) {
                try g.writeDataset(wname, t)
            }
        }
        try file.flush()
    }
}
