import Foundation
import OrderedCollections
import WconvFormats
import WconvTensor

/// The result of importing one file.
public struct ImportResult: Sendable {
    public var graph: ModelGraph
    public var report: ImportReport
}

/// The front door from any supported file to a `ModelGraph`: canonical files restore their graph,
/// ONNX/Keras files go to their graph builders, bare state dicts to the architecture recogniser;
/// anything else imports as weights only, with the reason.
public enum GraphImporter {
    /// A graph builder for a file format that carries structure (ONNX nodes, Keras configs).
    public typealias FormatBuilder = @Sendable (_ path: String, _ bundle: TensorBundle) throws -> ModelGraph

    private static let lock = NSLock()
    nonisolated(unsafe) private static var builders: [String: FormatBuilder] = [:]

    /// Registers the builder for a bundle format (`onnx`, `keras-h5`, `keras`). The ONNX and Keras
    /// builders plug in here.
    public static func register(format: String, builder: @escaping FormatBuilder) {
        lock.lock(); defer { lock.unlock() }
        builders[format] = builder
    }

    static func builder(for format: String) -> FormatBuilder? {
        lock.lock(); defer { lock.unlock() }
        return builders[format] ?? builtInBuilders[format]
    }

    /// The graph builders of the formats wconv reads with structure.
    static let builtInBuilders: [String: FormatBuilder] = [
        "onnx": { path, _ in try ONNXGraphBuilder.build(ONNXReader.readModel(path: path), path: path) },
        "keras-h5": { path, _ in try KerasGraphBuilder.build(KerasReader.readModel(path: path)) },
        "keras": { path, _ in try KerasGraphBuilder.build(KerasReader.readModel(path: path)) },
        "keras-v3": { path, _ in try KerasGraphBuilder.build(KerasReader.readModel(path: path)) },
    ]

    /// Formats that carry a graph of their own; a bare-tensor recogniser is the wrong tool for them.
    static let structuredFormats: Set<String> = ["onnx", "keras-h5", "keras", "keras-v3"]

    /// Reads `path` (any supported format, sniffed by `ModelFile`) and builds its graph.
    /// `arch` forces a recogniser family; `configJSON` overrides a `config.json` found beside the file.
    /// `hashSource` records the file's SHA-256 in the graph's provenance (and the import report), which
    /// files written from the graph carry; a caller that only runs the model passes false: hashing
    /// reads the whole file once more (with the former Swift SHA-256, 0.47 s of a one-image `wconv run`
    /// of a ResNet-50 .pth).
    public static func importGraph(path: String, key: String? = nil, arch: String? = nil,
                                   configJSON: JSONValue? = nil, toolVersion: String? = nil,
                                   hashSource: Bool = true) throws -> ImportResult {
        // Formats with structure are parsed once: the bundle and the graph come from the same model.
        let bundle: TensorBundle
        var build: FormatBuilder?
        switch try ModelFile.sniff(path: path) {
        case .onnx where key == nil:
            let model = try ONNXReader.readModel(path: path)
            bundle = ONNXReader.bundle(model)
            build = { path, _ in try ONNXGraphBuilder.build(model, path: path) }
        case .kerasH5 where key == nil, .kerasZip where key == nil:
            let model = try KerasReader.readModel(path: path)
            bundle = model.bundle
            build = { _, _ in try KerasGraphBuilder.build(model) }
        default:
            bundle = try ModelFile.load(path: path, key: key)
        }
        let sha = hashSource ? try? SHA256.hex(ofFile: path) : nil
        return try importGraph(bundle: bundle, sourcePath: path, sha256: sha, arch: arch,
                               configJSON: configJSON ?? ArchitectureRecognizer.configBeside(path: path),
                               toolVersion: toolVersion, builder: build)
    }

    /// Builds the graph for an already-read bundle (the dispatch itself).
    /// `builder` overrides the registered builder for the bundle's format (used when the caller
    /// already parsed the file's structure).
    public static func importGraph(bundle: TensorBundle, sourcePath: String, sha256: String? = nil, arch: String? = nil,
                                   configJSON: JSONValue? = nil, toolVersion: String? = nil,
                                   builder explicitBuilder: FormatBuilder? = nil) throws -> ImportResult {
        var graph: ModelGraph
        var evidence: [String] = []
        var renames: [TensorRename] = []
        var unused: [String: String] = [:]
        var tried: [ImportReport.FamilyAttempt] = []
        var weightsOnlyReason: String?
        var format = bundle.format

        if CanonicalModel.isCanonical(bundle) {
            graph = try CanonicalModel.graph(from: bundle)
            format = "wconv canonical (\(bundle.format))"
            evidence = graph.provenance.notes["recognition"].map { [$0] } ?? []
            evidence.insert("restored from the file's wconv.graph metadata", at: 0)
            let used = Set(graph.nodes.flatMap(\.inputs))
            for k in graph.parameters.keys where !used.contains(k) && !graph.isWeightsOnly { unused[k] = "not read by any op of the stored graph" }
            if graph.isWeightsOnly { weightsOnlyReason = graph.provenance.notes["weightsOnlyReason"] ?? "the canonical file stores weights only" }
        } else if structuredFormats.contains(bundle.format) {
            if let b = explicitBuilder ?? builder(for: bundle.format) {
                graph = try b(sourcePath, bundle)
                evidence = ["graph built from the \(bundle.format) file's own structure"]
            } else {
                graph = weightsOnly(bundle)
                weightsOnlyReason = "building graphs from \(bundle.format) files is not in this build; the weights imported as they are"
            }
        } else {
            do {
                let r = try ArchitectureRecognizer.recognizeDetailed(bundle, forced: arch, configJSON: configJSON)
                graph = r.graph
                // The family's usual preprocessing: a guess, since a state dict records none.
                if graph.preprocessing != nil { graph.preprocessing?.assumed = true }
                evidence = r.evidence
                renames = r.renames
                unused = r.unused
                tried = r.tried.map { .init(family: $0.family, reason: $0.reason) }
            } catch let e as WconvError where arch == nil && e.kind == .invalidInput {
                // Not recognised: keep the weights, say why for every family.
                graph = weightsOnly(bundle)
                weightsOnlyReason = e.message
                let (_, attempts) = try ArchitectureRecognizer.attempt(bundle, configJSON: configJSON)
                tried = attempts.map { .init(family: $0.family, reason: $0.reason) }
            }
        }
        // "Unless the file says otherwise": preprocessing and labels carried in the file's metadata
        // (e.g. a safetensors written by another tool with wconv.preprocess) win over family defaults.
        if !CanonicalModel.isCanonical(bundle) {
            if let s = bundle.metadata[CanonicalModel.preprocessKey],
               let p = try? JSONValueDecoder().decode(Preprocessing.self, from: JSONValue.parse(s, what: "", file: nil, options: .strict)) {
                graph.preprocessing = p
                evidence.append("preprocessing from the file's \(CanonicalModel.preprocessKey) metadata")
            }
            if let s = bundle.metadata[CanonicalModel.labelsKey],
               let l = try? JSONValueDecoder().decode([String].self, from: JSONValue.parse(s, what: "", file: nil, options: .strict)) {
                graph.labels = l
            }
        }
        graph.provenance.sourceFile = graph.provenance.sourceFile ?? sourcePath
        graph.provenance.sourceSHA256 = graph.provenance.sourceSHA256 ?? sha256
        graph.provenance.sourceFormat = graph.provenance.sourceFormat ?? bundle.format
        graph.provenance.toolVersion = toolVersion ?? graph.provenance.toolVersion
        if let r = weightsOnlyReason { graph.provenance.notes["weightsOnlyReason"] = r }

        // Account for every source tensor.
        var usedBy: [String: [String]] = [:]
        for n in graph.nodes { for i in n.inputs where graph.parameters[i] != nil || graph.aliases[i] != nil { usedBy[i, default: []].append(n.name) } }
        let renameByFrom = Dictionary(renames.map { ($0.from, $0) }, uniquingKeysWith: { a, _ in a })
        var entries: [ImportReport.TensorEntry] = []
        for (src, t) in bundle.tensors {
            let r = renameByFrom[src]
            let name = r?.to ?? src
            let users = usedBy[name] ?? []
            var status = users.isEmpty ? "unused" : (r == nil ? "used" : "renamed")
            var reason: String? = users.isEmpty ? (unused[name] ?? (graph.isWeightsOnly ? "weights-only import" : "not read by any op")) : nil
            if let target = bundle.aliases[src] { status = "alias"; reason = target }
            entries.append(.init(source: src, name: name, dtype: t.dtype.rawValue, shape: t.shape, status: status,
                                 usedBy: users, rule: r?.rule, reason: reason, buffer: graph.buffers.contains(name)))
        }
        var ops: [String: Int] = [:]
        for n in graph.nodes { ops[n.op.rawValue, default: 0] += 1 }
        var report = ImportReport(
            source: sourcePath, sourceSHA256: sha256, format: format, output: nil,
            architecture: graph.architecture, variant: graph.variant, evidence: evidence,
            weightsOnlyReason: weightsOnlyReason, familiesTried: tried, nodeCount: graph.nodes.count, opCounts: ops,
            inputs: graph.inputs, outputs: graph.outputs, tensors: entries,
            groups: graph.isWeightsOnly ? [] : ((try? LayerGrouping(graph: graph))?.groups ?? []), head: ImportReport.findHead(graph),
            preprocessing: graph.preprocessing, warnings: bundle.warnings)
        report.extras = Dictionary(bundle.extras.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        report.stubbedGlobals = bundle.stubbedGlobals
        return ImportResult(graph: graph, report: report)
    }

    /// A graph with the bundle's tensors and no nodes.
    public static func weightsOnly(_ bundle: TensorBundle) -> ModelGraph {
        var g = ModelGraph(parameters: bundle.tensors, aliases: bundle.aliases)
        g.buffers = Set(bundle.tensors.keys.filter(GraphBuilder.isBufferName))
        return g
    }
}
