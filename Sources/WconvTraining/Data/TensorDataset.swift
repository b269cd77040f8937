import WconvFormats
import WconvTensor

/// A dataset held in tensors: `images` N×C×H×W (uint8 → the image transforms, like ImageFolder;
/// float → taken as already-preprocessed network input) and `labels` N integers. Read from
/// `.npz` (safetensors once the shared reader is merged), with `classes` from a `classes` array
/// or numbered `0…K−1`.
public struct TensorDataset: LabelledDataset {
    public let images: Tensor
    public let labels: [Int]
    public let classes: [String]
    public let name: String

    public init(images: Tensor, labels: [Int], classes: [String]? = nil, name: String) throws {
        guard images.rank == 4 else { throw WconvError.invalid("\(name): 'images' must be N×C×H×W, got shape \(images.shape)") }
        guard images.shape[0] == labels.count else {
            throw WconvError.invalid("\(name): \(images.shape[0]) images but \(labels.count) labels")
        }
        guard images.dtype == .u8 ? images.shape[1] == 3 || images.shape[1] == 1 : true else {
            throw WconvError.invalid("\(name): uint8 images need 1 or 3 channels, got \(images.shape[1])")
        }
        let k = (labels.max() ?? -1) + 1
        if let bad = labels.first(where: { $0 < 0 }) { throw WconvError.invalid("\(name): negative label \(bad)") }
        // Labels index classes: more classes than samples (plus slack) means corrupt labels.
        guard k <= labels.count + 1000 else {
            throw WconvError.invalid("\(name): label \(k - 1) for only \(labels.count) samples; labels must be class indices 0…K−1")
        }
        let cls = classes ?? (0..<k).map(String.init)
        guard cls.count >= k else { throw WconvError.invalid("\(name): label \(k - 1) but only \(cls.count) class names") }
        guard cls.count >= 2 else { throw WconvError.invalid("\(name): only one class; a classifier needs at least two") }
        self.images = images.contiguous()
        self.labels = labels
        self.classes = cls
        self.name = name
    }

    /// Loads `images` / `labels` from an `.npz` file.
    public static func load(path: String) throws -> TensorDataset {
        let arrays = try NumpyArchive.read(path: path)
        guard let images = arrays["images"], let labels = arrays["labels"] else {
            throw WconvError(.invalidInput, "needs arrays 'images' (N×C×H×W) and 'labels' (N); found \(arrays.keys.sorted().joined(separator: ", "))", file: path)
        }
        guard [.i64, .i32, .i16, .u8, .i8].contains(labels.dtype), labels.rank == 1 else {
            throw WconvError(.invalidInput, "'labels' must be a 1-d integer array, got \(labels)", file: path)
        }
        let values = labels.doubles()
        guard values.allSatisfy({ $0 >= -1e15 && $0 <= 1e15 }) else { throw WconvError(.invalidInput, "'labels' holds values out of range", file: path) }
        return try TensorDataset(images: images, labels: values.map { Int($0) }, name: path)
    }

    public var count: Int { labels.count }
    public func describe(_ i: Int) -> String { "\(name)[\(i)]" }
    public func load(_ i: Int) throws -> RawSample {
        let c = images.shape[1], h = images.shape[2], w = images.shape[3]
        let per = c * h * w
        if images.dtype == .u8 {
            var px = [UInt8](repeating: 0, count: h * w * 3)
            images.storage.buffer.withMemoryRebound(to: UInt8.self) { src in
                let base = images.offset + i * per
                for y in 0..<h { for x in 0..<w { for k in 0..<3 {
                    px[(y * w + x) * 3 + k] = src[base + (c == 1 ? 0 : k) * h * w + y * w + x]
                } } }
            }
            return .image(RGBImage(width: w, height: h, pixels: px))
        }
        let view = try Tensor(dtype: images.dtype, shape: [per], offset: images.offset + i * per, storage: images.storage)
        return .tensor(view.floats(), shape: [c, h, w])
    }
}
