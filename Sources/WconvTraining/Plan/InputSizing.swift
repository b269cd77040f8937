import Foundation
import WconvGraph
import WconvTensor

/// Image sizes found in a dataset: up to `limit` images spread evenly over it, read from the PNG/JPEG
/// header where the sample is a file (no decoding), otherwise from the decoded sample.
public struct ImageSizeSurvey: Sendable, Equatable {
    /// (width, height) of each image looked at, ordered by shorter then longer side.
    public var sizes: [[Int]]
    /// Images in the dataset.
    public var total: Int

    /// `sizes` as (width, height) pairs.
    public init(sizes: [[Int]], total: Int) {
        self.sizes = sizes.sorted { (Swift.min($0[0], $0[1]), Swift.max($0[0], $0[1])) < (Swift.min($1[0], $1[1]), Swift.max($1[0], $1[1])) }
        self.total = total
    }

    public init(_ data: any LabelledDataset, limit: Int = 256) {
        var found: [[Int]] = []
        let step = Swift.max(1, data.count / Swift.max(1, limit))
        for i in stride(from: 0, to: data.count, by: step).prefix(limit) {
            let path = data.describe(i)
            if FileManager.default.fileExists(atPath: path), let d = ImageDecoder.dimensions(path: path) {
                found.append([d.width, d.height])
                continue
            }
            switch try? data.load(i) {
            case .image(let img): found.append([img.width, img.height])
            case .tensor(_, let shape) where shape.count == 3: found.append([shape[2], shape[1]])
            default: continue
            }
        }
        self.init(sizes: found, total: data.count)
    }

    public var isEmpty: Bool { sizes.isEmpty }
    public var min: [Int] { sizes.first ?? [0, 0] }
    public var median: [Int] { sizes.isEmpty ? [0, 0] : sizes[sizes.count / 2] }
    public var max: [Int] { sizes.last ?? [0, 0] }
    /// Shorter side of the median image.
    public var medianShorterSide: Int { Swift.min(median[0], median[1]) }

    /// "32×32 / 32×32 / 48×40 (min / median / max of 250 images)".
    public var text: String {
        func wh(_ s: [Int]) -> String { "\(s[0])×\(s[1])" }
        let of = sizes.count == total ? "\(total) images" : "\(sizes.count) of \(total) images"
        return "\(wh(min)) / \(wh(median)) / \(wh(max)) (min / median / max of \(of))"
    }
}

/// The `--input-size`, `--resize`, `--mean`, `--std` flags as given (nil: not given).
public struct PreprocessingRequest: Sendable {
    public enum Size: Sendable, Equatable {
        /// Fit the data: its native size below the default, rounded to the network's total stride.
        case auto
        case fixed(Int)
    }
    public var inputSize: Size?
    public var resize: Int?
    public var mean: [Double]?
    public var std: [Double]?

    public init(inputSize: Size? = nil, resize: Int? = nil, mean: [Double]? = nil, std: [Double]? = nil) {
        self.inputSize = inputSize
        self.resize = resize
        self.mean = mean
        self.std = std
    }
}

/// Preprocessing that fits the data. A model that records its preprocessing keeps it (flags that
/// contradict it warn); a model that records none (a bare state dict, whose family defaults are only
/// assumed, or a graph without metadata) gets `--input-size auto` unless a size is given.
public enum InputSizing {
    /// What `resolve` decided: the preprocessing to train with, lines for the plan, warnings.
    public struct Decision: Sendable {
        public var preprocessing: Preprocessing
        public var notes: [String]
        public var warnings: [String]
    }

    /// Largest product of strides along any path from the input (convolutions and pools): the
    /// factor by which the deepest feature map is smaller than the input.
    public static func totalStride(_ graph: ModelGraph) -> Int {
        var stride: [String: Int] = [:]
        for i in graph.inputs { stride[i.name] = 1 }
        var deepest = 1
        for n in graph.nodes {
            let inStride = n.inputs.compactMap { stride[$0] }.max() ?? 1
            var s = inStride
            if n.op == .conv2d || n.op == .maxPool2d || n.op == .avgPool2d, case .ints(let st)? = n.attributes["strides"], let m = st.max() {
                s = inStride * Swift.max(1, m)
            }
            for o in n.outputs { stride[o] = s }
            deepest = Swift.max(deepest, s)
        }
        return deepest
    }

    /// True when shape inference accepts a `size`×`size` input (a ViT's position embeddings, for
    /// one, fix the size).
    static func accepts(_ graph: ModelGraph, size: Int) -> Bool {
        guard let input = graph.inputs.first, input.shape.count == 4 else { return false }
        var shape = input.shape.map { $0 ?? 1 }
        if let h = input.shape[2], h != size { return false }
        if let w = input.shape[3], w != size { return false }
        shape[2] = size; shape[3] = size
        return (try? graph.inferShapes(inputShapes: [input.name: shape])) != nil
    }

    /// The preprocessing to train `graph` with on data of `survey`'s sizes, given the flags.
    public static func resolve(graph: ModelGraph, request: PreprocessingRequest, survey: ImageSizeSurvey?) throws -> Decision {
        let recorded = graph.preprocessing?.assumed == true ? nil : graph.preprocessing
        var p = graph.preprocessing ?? .imagenet
        p.assumed = nil
        var notes: [String] = [], warnings: [String] = []
        let origin = recorded != nil ? "recorded in the model" : (graph.preprocessing != nil ? "the \(graph.architecture ?? "family")'s usual values, assumed: the file records none" : "ImageNet's, assumed: the model records none")
        let defaultSize = p.inputSize.first ?? 224
        switch request.inputSize ?? (recorded == nil ? .auto : nil) {
        case .fixed(let n)?:
            guard n > 0 else { throw WconvError(.usage, "--input-size must be positive (or auto)") }
            p.inputSize = [n, n]
            p.resizeShorter = Int((Double(n) * 256 / 224).rounded())
            notes.append("input \(n)×\(n) (--input-size)")
        case .auto?:
            let stride = totalStride(graph)
            if let s = survey, !s.isEmpty {
                let native = s.medianShorterSide
                let size = Swift.max(stride, Int((Double(native) / Double(stride)).rounded()) * stride)
                if native >= defaultSize {
                    notes.append("input \(p.inputSize.map(String.init).joined(separator: "×")) (auto: the data's median image, \(s.median[0])×\(s.median[1]), is not below the default \(defaultSize); resize \(p.resizeShorter.map(String.init) ?? "none") then center crop)")
                } else if size == defaultSize {
                    notes.append("input \(size)×\(size) (auto: the data's median shorter side \(native) rounds to the default at the network's total stride \(stride))")
                } else if !accepts(graph, size: size) {
                    notes.append("input \(defaultSize)×\(defaultSize) (auto would pick \(size)×\(size) for the data's \(native)-pixel images, but the network does not accept that size)")
                } else {
                    p.inputSize = [size, size]
                    p.resizeShorter = size
                    let rounding = size == native ? "a multiple of the network's total stride \(stride)" : "rounded to the network's total stride \(stride)"
                    notes.append("input \(size)×\(size) (auto: the data's median image is \(s.median[0])×\(s.median[1]), smaller than the default \(defaultSize); \(rounding); shorter side resized to \(size), then center crop)")
                }
            } else {
                notes.append("input \(p.inputSize.map(String.init).joined(separator: "×")) (auto: the data holds no image sizes to fit)")
            }
        case nil:
            notes.append("input \(p.inputSize.map(String.init).joined(separator: "×")), resize \(p.resizeShorter.map(String.init) ?? "none") (\(origin))")
        }
        if let r = request.resize {
            guard r >= 0 else { throw WconvError(.usage, "--resize must be 0 (straight to the input size) or positive") }
            p.resizeShorter = r > 0 ? r : nil
        }
        if let m = request.mean { p.mean = m }
        if let s = request.std {
            guard s.allSatisfy({ $0 > 0 }) else { throw WconvError(.usage, "--std values must be positive") }
            p.std = s
        }
        let normOrigin = request.mean != nil || request.std != nil ? "--mean/--std" : origin
        notes.append("normalisation: mean \(list(p.mean)), std \(list(p.std)) on pixels scaled to [0, \(p.scale == 1 ? "1" : fmt(p.scale, 0))] (\(normOrigin))")
        if let rec = recorded {
            // The pretrained features expect the inputs they were trained on.
            if p.inputSize != rec.inputSize {
                warnings.append("the input size \(p.inputSize.map(String.init).joined(separator: "×")) differs from the \(rec.inputSize.map(String.init).joined(separator: "×")) recorded in the model: its features were learnt at that scale. Drop --input-size to use the recorded size.")
            }
            if let m = request.mean, m != rec.mean {
                warnings.append("--mean \(list(m)) contradicts the mean \(list(rec.mean)) recorded in the model: the pretrained features expect the normalisation they were trained with. Drop --mean unless the model's metadata is wrong.")
            }
            if let s = request.std, s != rec.std {
                warnings.append("--std \(list(s)) contradicts the std \(list(rec.std)) recorded in the model: the pretrained features expect the normalisation they were trained with. Drop --std unless the model's metadata is wrong.")
            }
        }
        return Decision(preprocessing: p, notes: notes, warnings: warnings)
    }

    static func list(_ v: [Double]) -> String { "[" + v.map { "\($0)" }.joined(separator: ", ") + "]" }
}
