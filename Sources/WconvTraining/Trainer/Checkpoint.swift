import Foundation
import OrderedCollections
import WconvFormats
import WconvTensor

/// Training checkpoints are plain safetensors files (model, optimizer state and the JSON training
/// state in `__metadata__`), written atomically by the shared safetensors writer so a killed run
/// never leaves a half-written checkpoint.
public enum CheckpointFile {
    public static func write(_ tensors: OrderedDictionary<String, Tensor>, metadata: [String: String], to path: String) throws {
        var bundle = TensorBundle(format: "safetensors", tensors: tensors)
        bundle.metadata = metadata
        try SafetensorsWriter.write(bundle, to: path)
    }

    public static func read(path: String) throws -> (tensors: OrderedDictionary<String, Tensor>, metadata: [String: String]) {
        let bundle = try SafetensorsReader.read(path: path)
        return (bundle.tensors, bundle.metadata)
    }
}

/// Epoch checkpoints of a run, and resuming from one.
extension Trainer {
    struct CheckpointState: Codable {
        var epoch: Int
        var globalStep: Int
        var config: TrainingConfig
        var history: [EpochRecord]
        var baseline: Double?
        var classes: [String]
        var bestEpoch: Int?
        var bestAccuracy: Double?
        var bestLoss: Double?
    }

    /// `dir/last.safetensors` (atomic): model (`model.*`), optimizer (`optim.*`), run state.
    func writeCheckpoint(dir: String, epoch: Int) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        syncGraph()
        var t = OrderedDictionary<String, Tensor>()
        for (k, v) in graph.parameters { t["model." + k] = v }
        if let b = best { for (k, v) in b.parameters { t["best." + k] = v } }
        for (k, v) in optimizer?.exportState() ?? [:] { t["optim." + k] = v }
        let st = CheckpointState(epoch: epoch, globalStep: globalStep, config: config, history: history, baseline: baseline,
                                 classes: classes, bestEpoch: best?.epoch, bestAccuracy: best?.score, bestLoss: best?.loss)
        // Sorted keys: the same state writes the same bytes (Codable here, not JSONValue, so a UInt64
        // seed keeps every digit).
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let json = String(decoding: try enc.encode(st), as: UTF8.self)
        try CheckpointFile.write(t, metadata: ["wconv.checkpoint": json], to: dir + "/last.safetensors")
    }

    /// Restores model, history and counters; returns the number of completed epochs.
    func loadCheckpoint(_ path: String) throws -> Int {
        let (t, meta) = try CheckpointFile.read(path: path)
        guard let js = meta["wconv.checkpoint"], let st = try? JSONDecoder().decode(CheckpointState.self, from: Data(js.utf8)) else {
            throw WconvError(.invalidInput, "not a wconv training checkpoint (no wconv.checkpoint metadata)", file: path)
        }
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let a = try enc.encode(st.config), b = try enc.encode(config)
        if a != b {
            var mine = config, theirs = st.config
            mine.epochs = 0; theirs.epochs = 0
            guard try enc.encode(mine) == enc.encode(theirs) else {
                throw WconvError(.usage, "the checkpoint was written with different training flags; resume with the same flags (only --epochs may grow)", file: path)
            }
        }
        guard st.classes == classes else { throw WconvError(.invalidInput, "the checkpoint's classes \(st.classes) differ from the data's \(classes)", file: path) }
        for (k, v) in t where k.hasPrefix("model.") {
            let name = String(k.dropFirst(6))
            guard let old = graph.parameters[name], old.shape == v.shape else {
                throw WconvError(.invalidInput, "checkpoint tensor '\(name)' \(v.shape) does not match the model", file: path)
            }
            graph.parameters[name] = v
        }
        if let be = st.bestEpoch, let ba = st.bestAccuracy {
            var params = graph.parameters
            for (k, v) in t where k.hasPrefix("best.") { params[String(k.dropFirst(5))] = v }
            best = BestModel(score: ba, loss: st.bestLoss, epoch: be, parameters: params)
        }
        history = st.history
        globalStep = st.globalStep
        baseline = st.baseline
        session = nil
        sessionKey = nil
        return st.epoch
    }
}
