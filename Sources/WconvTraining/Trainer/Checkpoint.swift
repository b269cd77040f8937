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
        // Through the one writer: members in declaration order, so the same state writes the same
        // bytes; a UInt64 seed keeps every digit.
        try CheckpointFile.write(t, metadata: ["wconv.checkpoint": try JSONValue(encoding: st).text(.compact)], to: dir + "/last.safetensors")
    }

    /// Restores model, history, counters and the optimizer state (`resumedOptimizerState`);
    /// returns the number of completed epochs. Everything is checked before anything is taken, so a
    /// checkpoint of another run, model or class list, or a corrupt one, is refused by name.
    func loadCheckpoint(_ path: String) throws -> Int {
        let (t, meta) = try CheckpointFile.read(path: path)
        guard let js = meta["wconv.checkpoint"], let st = try? CheckpointState(json: js) else {
            throw WconvError(.invalidInput, "not a wconv training checkpoint (no readable wconv.checkpoint metadata); pass the last.safetensors that --checkpoint-dir wrote", file: path)
        }
        guard st.epoch >= 0, st.globalStep >= 0, st.history.count == st.epoch, st.bestEpoch.map({ $0 >= BestModel.baselineEpoch && $0 < st.epoch }) ?? true else {
            throw WconvError(.invalidInput, "the checkpoint's run state is inconsistent (epoch \(st.epoch), step \(st.globalStep), \(st.history.count) epochs of history, best epoch \(st.bestEpoch.map(String.init) ?? "none")): the file is corrupt", file: path)
        }
        guard st.epoch <= config.epochs else {
            throw WconvError(.usage, "the checkpoint is at epoch \(st.epoch), past --epochs \(config.epochs): pass --epochs \(st.epoch + 1) or more to train on from it (--epochs \(st.epoch) only writes its model)", file: path)
        }
        if try JSONValue(encoding: st.config) != JSONValue(encoding: config) {
            var mine = config, theirs = st.config
            mine.epochs = 0; theirs.epochs = 0
            guard try JSONValue(encoding: mine) == JSONValue(encoding: theirs) else {
                throw WconvError(.usage, "the checkpoint was written with different training flags; resume with the same flags (only --epochs may grow)", file: path)
            }
        }
        guard st.classes == classes else { throw WconvError(.invalidInput, "the checkpoint's classes \(st.classes) differ from the data's \(classes)", file: path) }
        let model = try CheckpointFile.parameters(t, prefix: "model.", of: graph.parameters, path: path)
        var bestParameters = model
        if t.keys.contains(where: { $0.hasPrefix("best.") }) {
            bestParameters = try CheckpointFile.parameters(t, prefix: "best.", of: graph.parameters, path: path)
        }
        var optim = OrderedDictionary<String, Tensor>()
        for (k, v) in t where k.hasPrefix("optim.") { optim[String(k.dropFirst(6))] = v }
        do {
            try Optimizer(kind: config.optimizerKind, groups: []).importState(optim, sizes: graph.parameters.reduce(into: [:]) { $0[$1.key] = $1.value.numel })
        } catch let e as WconvError { throw e.inFile(path) }
        graph.parameters = model
        if let be = st.bestEpoch, let ba = st.bestAccuracy {
            best = BestModel(score: ba, loss: st.bestLoss, epoch: be, parameters: bestParameters)
        }
        resumedOptimizerState = optim
        history = st.history
        globalStep = st.globalStep
        baseline = st.baseline
        session = nil
        sessionKey = nil
        return st.epoch
    }
}

extension Trainer.CheckpointState {
    /// Reads the `wconv.checkpoint` metadata (also the sorted-key layout older versions wrote):
    /// duplicate keys refused, a diverged epoch's NaN loss accepted.
    init(json: String) throws {
        var options = JSONParseOptions.strict
        options.allowNonFiniteLiterals = true
        self = try JSONValueDecoder().decode(Self.self, from: JSONValue.parse(json, what: "wconv.checkpoint", file: nil, options: options))
    }
}

extension CheckpointFile {
    /// The tensors named `prefix` + a parameter name, as a full replacement for `model`'s
    /// parameters: each of the model's must be there, with its shape and finite values (the dtype
    /// may differ: sessions hand integer buffers back as f32); a name the model lacks means the
    /// checkpoint is of another model.
    static func parameters(_ tensors: OrderedDictionary<String, Tensor>, prefix: String, of model: OrderedDictionary<String, Tensor>,
                           path: String) throws -> OrderedDictionary<String, Tensor> {
        var out = model
        var seen = 0
        for (k, v) in tensors where k.hasPrefix(prefix) {
            let name = String(k.dropFirst(prefix.count))
            guard let old = model[name], old.shape == v.shape else {
                let have = model[name].map { "\($0.dtype) \($0.shape)" } ?? "no such tensor"
                throw WconvError(.invalidInput, "checkpoint tensor '\(k)' (\(v.dtype) \(v.shape)) does not match the model (\(have)): the checkpoint is of another model", file: path)
            }
            if v.dtype.isFloatingPoint, !v.floats().allSatisfy(\.isFinite) {
                throw WconvError(.invalidInput, "checkpoint tensor '\(k)' holds NaN or infinite values: the file is corrupt", file: path)
            }
            out[name] = v
            seen += 1
        }
        guard seen == model.count else {
            let missing = model.keys.filter { tensors[prefix + $0] == nil }
            throw WconvError(.invalidInput, "the checkpoint lacks \(missing.count) of the model's tensors (\(missing.prefix(3).map { prefix + $0 }.joined(separator: ", "))…): it is of another model", file: path)
        }
        return out
    }
}
