#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import WconvGraph
import WconvTensor

/// An integer crop box in source pixels.
public struct CropBox: Equatable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
}

/// Antialiased bilinear resampling, PIL's `ImagingResample` / torchvision's `antialias=True`
/// algorithm: a triangle filter whose support widens with the downscale factor, separable,
/// horizontal pass first. Computed in f32 throughout (it matches torchvision's tensor path to
/// float rounding; PIL rounds to uint8 between the passes, so against PIL it is within one level).
public enum Resample {
    /// Filter taps for one axis: for each output index, first source index and normalised weights.
    struct Taps { var start: [Int]; var count: [Int]; var weights: [Float]; var stride: Int }

    static func taps(inSize: Int, outSize: Int, offset: Int, span: Int) -> Taps {
        let scale = Double(span) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        let ksize = Int(ceil(support)) * 2 + 1
        var start = [Int](repeating: 0, count: outSize), count = [Int](repeating: 0, count: outSize)
        var weights = [Float](repeating: 0, count: outSize * ksize)
        for xx in 0..<outSize {
            let center = Double(offset) + (Double(xx) + 0.5) * scale
            var xmin = Int(center - support + 0.5)   // C truncation, as PIL
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var w = [Double](repeating: 0, count: max(xmax, 0))
            var ww = 0.0
            for x in 0..<max(xmax, 0) {
                let t = abs((Double(x + xmin) - center + 0.5) / filterScale)
                let v = t < 1 ? 1 - t : 0
                w[x] = v
                ww += v
            }
            start[xx] = xmin
            count[xx] = min(max(xmax, 0), ksize)
            for x in 0..<count[xx] { weights[xx * ksize + x] = Float(ww > 0 ? w[x] / ww : 0) }
        }
        return Taps(start: start, count: count, weights: weights, stride: ksize)
    }

    /// Resizes the `box` region of an RGB8 image to outW×outH, returning interleaved RGB floats
    /// in 0…255 (HWC).
    public static func resize(_ img: RGBImage, box: CropBox, outWidth ow: Int, outHeight oh: Int) -> [Float] {
        let hx = taps(inSize: img.width, outSize: ow, offset: box.x, span: box.width)
        let vy = taps(inSize: img.height, outSize: oh, offset: box.y, span: box.height)
        // Rows the vertical pass needs.
        let y0 = vy.start.min() ?? 0
        let y1 = zip(vy.start, vy.count).map { $0 + $1 }.max() ?? 0
        let rows = max(y1 - y0, 0)
        var tmp = [Float](repeating: 0, count: rows * ow * 3)
        img.pixels.withUnsafeBufferPointer { src in
            tmp.withUnsafeMutableBufferPointer { dst in
                hx.weights.withUnsafeBufferPointer { w in
                    for r in 0..<rows {
                        let srow = (y0 + r) * img.width * 3
                        let drow = r * ow * 3
                        for xx in 0..<ow {
                            var a: Float = 0, b: Float = 0, c: Float = 0
                            let s = hx.start[xx], base = xx * hx.stride
                            for k in 0..<hx.count[xx] {
                                let wk = w[base + k], p = srow + (s + k) * 3
                                a += wk * Float(src[p]); b += wk * Float(src[p + 1]); c += wk * Float(src[p + 2])
                            }
                            dst[drow + xx * 3] = a; dst[drow + xx * 3 + 1] = b; dst[drow + xx * 3 + 2] = c
                        }
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: oh * ow * 3)
        tmp.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                vy.weights.withUnsafeBufferPointer { w in
                    let rowLen = ow * 3
                    for yy in 0..<oh {
                        let s = vy.start[yy] - y0, base = yy * vy.stride
                        let d = yy * rowLen
                        for k in 0..<vy.count[yy] {
                            let wk = w[base + k], sr = (s + k) * rowLen
                            for i in 0..<rowLen { dst[d + i] += wk * src[sr + i] }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// The image transforms of torchvision's classification presets, driven by the model's
/// `Preprocessing` metadata so normalisation is right by default.
public struct ImageTransform: Sendable {
    public enum Mode: String, Codable, Sendable {
        /// `crop` + RandomHorizontalFlip(0.5) + normalise.
        case train
        /// Resize(shorter side) + CenterCrop(inputSize) + normalise — deterministic.
        case eval
    }
    /// The random crop of `.train`.
    public enum Crop: String, Codable, CaseIterable, Sendable {
        /// torchvision's RandomResizedCrop(inputSize, scale, ratio): the ImageNet recipe.
        case randomResized = "random-resized"
        /// The eval geometry, then RandomCrop(inputSize, padding: inputSize/8, reflect): the recipe of
        /// small images (CIFAR), where a resized crop of 8 % of the area often loses the object.
        case pad
    }
    public var mode: Mode
    public var preprocessing: Preprocessing
    public var crop: Crop = .randomResized
    public var scale: (Double, Double) = (0.08, 1.0)
    public var ratio: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0)
    public var flip = true

    public init(mode: Mode, preprocessing: Preprocessing) {
        self.mode = mode
        self.preprocessing = preprocessing
    }

    public var outputHeight: Int { preprocessing.inputSize.first ?? 224 }
    public var outputWidth: Int { preprocessing.inputSize.count > 1 ? preprocessing.inputSize[1] : outputHeight }
    /// Floats per sample (3×H×W).
    public var sampleSize: Int { 3 * outputHeight * outputWidth }
    /// True when the output does not depend on the RNG (cacheable).
    public var isDeterministic: Bool { mode == .eval }

    /// torchvision's `_compute_resized_output_size` for an int size: shorter side to `size`,
    /// longer side `int(size·long/short)`; unchanged when the shorter side already matches.
    public static func resizedSize(width w: Int, height h: Int, shorter size: Int) -> (Int, Int) {
        let (short, long) = w <= h ? (w, h) : (h, w)
        if short == size { return (w, h) }
        let newLong = Int(Double(size) * Double(long) / Double(short))
        return w <= h ? (size, newLong) : (newLong, size)
    }

    /// torchvision's `RandomResizedCrop.get_params`: 10 tries at a random area fraction in
    /// `scale` and log-uniform aspect ratio in `ratio`, then the central crop fallback.
    public static func randomResizedCropBox(width: Int, height: Int, scale: (Double, Double), ratio: (Double, Double), rng: inout RNG) -> CropBox {
        let area = Double(width * height)
        let logR = (log(ratio.0), log(ratio.1))
        for _ in 0..<10 {
            let target = area * rng.uniform(scale.0, scale.1)
            let aspect = exp(rng.uniform(logR.0, logR.1))
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && w <= width && h > 0 && h <= height {
                let i = rng.below(height - h + 1), j = rng.below(width - w + 1)
                return CropBox(x: j, y: i, width: w, height: h)
            }
        }
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < min(ratio.0, ratio.1) {
            h = Int((Double(w) / min(ratio.0, ratio.1)).rounded(.toNearestOrEven))
        } else if inRatio > max(ratio.0, ratio.1) {
            w = Int((Double(h) * max(ratio.0, ratio.1)).rounded(.toNearestOrEven))
        }
        return CropBox(x: (width - w) / 2, y: (height - h) / 2, width: w, height: h)
    }

    /// torchvision's center crop offset: int(round((size − crop)/2)) with Python's half-to-even.
    static func centerOffset(_ size: Int, _ crop: Int) -> Int {
        Int((Double(size - crop) / 2).rounded(.toNearestOrEven))
    }

    /// Applies the transform, writing 3×H×W normalised floats (CHW, the model's channel order) to `out`.
    public func apply(_ img: RGBImage, rng: inout RNG, into out: UnsafeMutableBufferPointer<Float>) throws {
        let oh = outputHeight, ow = outputWidth
        guard out.count >= 3 * oh * ow else { throw WconvError(.runtime, "transform: output buffer too small") }
        guard img.width > 0, img.height > 0 else { throw WconvError.invalid("empty image (0 pixels)") }
        var hwc: [Float]
        var flipIt = false
        switch (mode, crop) {
        case (.train, .pad):
            hwc = try geometry(img)
            hwc = ImageTransform.padCrop(hwc, width: ow, height: oh, padding: max(1, min(ow, oh) / 8), rng: &rng)
            if flip { flipIt = rng.uniform() < 0.5 }
        case (.train, .randomResized):
            let box = ImageTransform.randomResizedCropBox(width: img.width, height: img.height, scale: scale, ratio: ratio, rng: &rng)
            hwc = Resample.resize(img, box: box, outWidth: ow, outHeight: oh)
            if flip { flipIt = rng.uniform() < 0.5 }
        case (.eval, _):
            hwc = try geometry(img)
        }
        normalise(hwc, width: ow, height: oh, flip: flipIt, into: out)
    }

    /// Reflect-pads an HWC image by `padding` on every side and crops `width`×`height` at a random
    /// offset (torchvision's RandomCrop with `padding_mode="reflect"`, which repeats no edge pixel).
    static func padCrop(_ hwc: [Float], width w: Int, height h: Int, padding p: Int, rng: inout RNG) -> [Float] {
        let dy = rng.below(2 * p + 1) - p, dx = rng.below(2 * p + 1) - p
        func reflect(_ i: Int, _ n: Int) -> Int {
            guard n > 1 else { return 0 }
            var i = i
            while i < 0 || i >= n { i = i < 0 ? -i : 2 * (n - 1) - i }
            return i
        }
        var out = [Float](repeating: 0, count: hwc.count)
        for y in 0..<h {
            let sy = reflect(y + dy, h)
            for x in 0..<w {
                let s = (sy * w + reflect(x + dx, w)) * 3, d = (y * w + x) * 3
                out[d] = hwc[s]; out[d + 1] = hwc[s + 1]; out[d + 2] = hwc[s + 2]
            }
        }
        return out
    }

    /// Resize(shorter side) + CenterCrop(inputSize), HWC floats in 0…255.
    func geometry(_ img: RGBImage) throws -> [Float] {
        let oh = outputHeight, ow = outputWidth
        var rw = ow, rh = oh
        if let s = preprocessing.resizeShorter { (rw, rh) = ImageTransform.resizedSize(width: img.width, height: img.height, shorter: s) }
        guard rw >= ow, rh >= oh else {
            throw WconvError.invalid("image \(img.width)x\(img.height) resized to \(rw)x\(rh) is smaller than the \(ow)x\(oh) crop")
        }
        let top = ImageTransform.centerOffset(rh, oh), left = ImageTransform.centerOffset(rw, ow)
        let full: [Float]
        if rw == img.width && rh == img.height {
            full = img.pixels.map { Float($0) }
        } else {
            full = Resample.resize(img, box: CropBox(x: 0, y: 0, width: img.width, height: img.height), outWidth: rw, outHeight: rh)
        }
        var hwc = [Float](repeating: 0, count: oh * ow * 3)
        for y in 0..<oh {
            let s = ((top + y) * rw + left) * 3, d = y * ow * 3
            for i in 0..<(ow * 3) { hwc[d + i] = full[s + i] }
        }
        return hwc
    }

    /// HWC 0…255 → CHW `(x/255·scale − mean)/std`, optionally mirrored, in the model's channel order.
    func normalise(_ hwc: [Float], width ow: Int, height oh: Int, flip: Bool, into out: UnsafeMutableBufferPointer<Float>) {
        let p = preprocessing
        let bgr = p.channelOrder.lowercased() == "bgr"
        let plane = oh * ow
        for c in 0..<3 {
            let src = bgr ? 2 - c : c
            let mean = Float(c < p.mean.count ? p.mean[c] : 0), std = Float(c < p.std.count ? p.std[c] : 1)
            let mul = Float(p.scale / 255) / std, add = -mean / std
            hwc.withUnsafeBufferPointer { h in
                for y in 0..<oh {
                    for x in 0..<ow {
                        let sx = flip ? ow - 1 - x : x
                        out[c * plane + y * ow + x] = h[(y * ow + sx) * 3 + src] * mul + add
                    }
                }
            }
        }
    }
}

extension ImageTransform {
    /// Decodes image files and applies this transform to each, in order, into one N×3×H×W batch
    /// (`wconv run` on images). The generator, seeded with `seed`, is shared by the images in turn.
    public func batch(paths: [String], seed: UInt64 = 0) throws -> Tensor {
        let per = sampleSize
        var values = [Float](repeating: 0, count: per * paths.count)
        var rng = RNG(seed: seed)
        for (i, p) in paths.enumerated() {
            let img = try ImageDecoder.decode(path: p)
            try values.withUnsafeMutableBufferPointer { buf in
                try apply(img, rng: &rng, into: UnsafeMutableBufferPointer(rebasing: buf[(i * per)..<((i + 1) * per)]))
            }
        }
        return Tensor(shape: [paths.count, 3, outputHeight, outputWidth], floats: values)
    }
}
