import Foundation
import WconvGraph
import WconvTensor
@testable import WconvTraining
import XCTest
import WconvTestSupport

final class TransformTests: XCTestCase {
    func testResizeMatchesTorchvision() throws {
        let f = try XCTUnwrap(Fixture.json("resize.json") as? [String: Any])
        let w = f["width"] as! Int, h = f["height"] as! Int
        let src = ints(f["src"]).map { UInt8($0) }
        let img = RGBImage(width: w, height: h, pixels: src)
        let cases = f["cases"] as! [String: [String: Any]]
        XCTAssertEqual(cases.count, 4)
        for (key, c) in cases {
            let dims = key.split(separator: "x").map { Int($0)! }
            let (oh, ow) = (dims[0], dims[1])
            let hwc = Resample.resize(img, box: CropBox(x: 0, y: 0, width: w, height: h), outWidth: ow, outHeight: oh)
            // fixture is CHW
            var chw = [Float](repeating: 0, count: hwc.count)
            for y in 0..<oh { for x in 0..<ow { for k in 0..<3 { chw[k * oh * ow + y * ow + x] = hwc[(y * ow + x) * 3 + k] } } }
            let t = doubles(c["tensor"])
            let maxAbs = zip(chw, t).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThan(maxAbs, 2e-3, "\(key) vs torchvision tensor path")  // 255-range values
            let pil = ints(c["pil"])
            let pilDiff = zip(chw, pil).map { abs(Double($0).rounded() - Double($1)) }.max()!
            XCTAssertLessThanOrEqual(pilDiff, 1, "\(key) vs PIL")
        }
    }

    func testResizedSizeAndCenterCropFollowTorchvision() {
        XCTAssertEqual(ImageTransform.resizedSize(width: 500, height: 375, shorter: 256).0, 341)  // int(256*500/375)
        XCTAssertEqual(ImageTransform.resizedSize(width: 300, height: 600, shorter: 256).1, 512)
        XCTAssertEqual(ImageTransform.resizedSize(width: 256, height: 999, shorter: 256).1, 999)
        XCTAssertEqual(ImageTransform.centerOffset(257, 224), 16)   // round(16.5) = 16 (half to even)
        XCTAssertEqual(ImageTransform.centerOffset(259, 224), 18)   // round(17.5) = 18
    }

    func testRandomResizedCropStaysInsideAndCoversTheRange() {
        var rng = RNG(seed: 3)
        var minArea = 1.0, maxArea = 0.0
        for _ in 0..<2000 {
            let b = ImageTransform.randomResizedCropBox(width: 200, height: 120, scale: (0.08, 1), ratio: (0.75, 4.0 / 3), rng: &rng)
            XCTAssertTrue(b.x >= 0 && b.y >= 0 && b.x + b.width <= 200 && b.y + b.height <= 120)
            let a = Double(b.width * b.height) / 24000
            minArea = min(minArea, a); maxArea = max(maxArea, a)
        }
        XCTAssertLessThan(minArea, 0.1)
        XCTAssertGreaterThan(maxArea, 0.7)
        // A strip far outside the ratio range falls back to the central crop with the extreme ratio.
        var r2 = RNG(seed: 1)
        let b = ImageTransform.randomResizedCropBox(width: 1000, height: 10, scale: (0.99, 1), ratio: (0.75, 4.0 / 3), rng: &r2)
        XCTAssertEqual(b, CropBox(x: (1000 - 13) / 2, y: 0, width: 13, height: 10))
    }

    func testEvalTransformNormalisesWithModelMetadata() throws {
        let img = RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 128, count: 48))
        let p = Preprocessing(inputSize: [2, 2], resizeShorter: 2, mean: [0.5, 0.25, 0], std: [0.5, 0.25, 1])
        let t = ImageTransform(mode: .eval, preprocessing: p)
        var out = [Float](repeating: 0, count: 12)
        var rng = RNG(seed: 0)
        try out.withUnsafeMutableBufferPointer { try t.apply(img, rng: &rng, into: $0) }
        let v = Float(128) / 255
        XCTAssertEqual(out[0], (v - 0.5) / 0.5, accuracy: 1e-6)
        XCTAssertEqual(out[4], (v - 0.25) / 0.25, accuracy: 1e-6)
        XCTAssertEqual(out[11], v, accuracy: 1e-6)
    }

    func testImageBatchIsTheEvalTransformOfEachFile() throws {
        let paths = [Fixture.path("images/rgb.png"), Fixture.path("images/gray.jpg")]
        var p = Preprocessing.imagenet
        p.inputSize = [16, 16]
        p.resizeShorter = 16
        let t = ImageTransform(mode: .eval, preprocessing: p)
        let batch = try t.batch(paths: paths)
        XCTAssertEqual(batch.shape, [2, 3, 16, 16])
        for (i, path) in paths.enumerated() {
            var one = [Float](repeating: 0, count: t.sampleSize)
            var rng = RNG(seed: 0)
            try one.withUnsafeMutableBufferPointer { try t.apply(ImageDecoder.decode(path: path), rng: &rng, into: $0) }
            XCTAssertEqual(Array(batch.floats()[(i * t.sampleSize)..<((i + 1) * t.sampleSize)]), one, path)
        }
        XCTAssertThrowsError(try t.batch(paths: [Fixture.path("images/missing.png")]))
    }
}

final class DatasetTests: XCTestCase {
    func makeFolder(_ layout: [String: Int], in dir: TempDir, corrupt: Set<String> = []) throws {
        let png = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("images/rgb.png")))
        let jpg = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("images/rgb.jpg")))
        for (cls, n) in layout {
            try FileManager.default.createDirectory(atPath: dir.path + "/" + cls, withIntermediateDirectories: true)
            for i in 0..<n {
                let name = "\(cls)/img\(i).\(i % 2 == 0 ? "png" : "JPG")"
                let data = corrupt.contains(name) ? Data("garbage".utf8) : (i % 2 == 0 ? png : jpg)
                try data.write(to: URL(fileURLWithPath: dir.path + "/" + name))
            }
        }
    }

    func testImageFolderLayoutAndErrors() throws {
        let d = TempDir()
        try makeFolder(["cat": 3, "Dog": 2, "bird": 4], in: d)
        try FileManager.default.createDirectory(atPath: d.path + "/.ipynb_checkpoints", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: d.path + "/cat/notes.txt"))
        let ds = try ImageFolderDataset(root: d.path)
        XCTAssertEqual(ds.classes, ["Dog", "bird", "cat"])   // code-point order, as Python's sorted
        XCTAssertEqual(ds.count, 9)
        XCTAssertEqual(ds.classCounts, [2, 4, 3])
        XCTAssertEqual(ds.ignored.count, 1)
        try DatasetCheck.verifyAll(ds)

        let one = TempDir()
        try makeFolder(["only": 2], in: one)
        XCTAssertThrowsError(try ImageFolderDataset(root: one.path)) { XCTAssertTrue("\($0)".contains("only one class")) }
        let empty = TempDir()
        try makeFolder(["a": 2, "b": 0], in: empty)
        XCTAssertThrowsError(try ImageFolderDataset(root: empty.path)) { XCTAssertTrue("\($0)".contains("no .png")) }
        XCTAssertThrowsError(try ImageFolderDataset(root: d.path + "/missing"))

        let bad = TempDir()
        try makeFolder(["a": 3, "b": 3], in: bad, corrupt: ["a/img1.JPG", "b/img2.png"])
        let bds = try ImageFolderDataset(root: bad.path)
        XCTAssertThrowsError(try DatasetCheck.verifyAll(bds)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("2 of 6") && s.contains("a/img1.JPG") && s.contains("b/img2.png"), s)
        }
    }

    func testNpzTensorDatasets() throws {
        let f = try XCTUnwrap(Fixture.json("tensors.json") as? [String: Any])
        let u8 = try TensorDataset.load(path: Fixture.path("tensors_u8.npz"))
        XCTAssertEqual(u8.count, 6)
        XCTAssertEqual(u8.classes, ["0", "1", "2"])
        guard case .image(let img) = try u8.load(0) else { return XCTFail("expected an image") }
        XCTAssertEqual(img.width, 10)
        XCTAssertEqual(Array(img.pixels[0..<3]).map(Int.init), ints(f["u8_first_pixel_rgb"]))
        let f32 = try TensorDataset.load(path: Fixture.path("tensors_f32.npz"))   // deflated members
        XCTAssertEqual(f32.labels, [1, 0, 1, 0, 1])
        guard case .tensor(let v, let shape) = try f32.load(3) else { return XCTFail("expected a tensor") }
        XCTAssertEqual(shape, [3, 4, 4])
        XCTAssertEqual(v, floats(f["f32_sample3"]))
        // Truncated archives are refused, never crash.
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("tensors_f32.npz")))
        let d = TempDir()
        for cut in [10, 100, data.count / 2, data.count - 30] {
            let p = d.path + "/t\(cut).npz"
            try data.prefix(cut).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try TensorDataset.load(path: p))
        }
        // Random byte flips in both archives: decode or throw, never crash.
        var rng = RNG(seed: 12)
        for name in ["tensors_f32.npz", "tensors_u8.npz"] {
            let orig = try Data(contentsOf: URL(fileURLWithPath: Fixture.path(name)))
            for k in 0..<150 {
                var b = orig
                for _ in 0..<(1 + k % 4) { let i = rng.below(b.count); b[i] = UInt8(truncatingIfNeeded: rng.next32()) }
                let p = d.path + "/fz\(k).npz"
                try b.write(to: URL(fileURLWithPath: p))
                if let ds = try? TensorDataset.load(path: p) { for i in 0..<ds.count { _ = try? ds.load(i) } }
            }
        }
    }

    func testStratifiedSplitIsSeededAndStratified() throws {
        let labels = [Int](repeating: 0, count: 50) + [Int](repeating: 1, count: 10) + [2, 2]
        let a = try DatasetSplit.stratified(labels: labels, classCount: 3, fraction: 0.2, seed: 7)
        let b = try DatasetSplit.stratified(labels: labels, classCount: 3, fraction: 0.2, seed: 7)
        let c = try DatasetSplit.stratified(labels: labels, classCount: 3, fraction: 0.2, seed: 8)
        XCTAssertEqual(a.val, b.val)
        XCTAssertNotEqual(a.val, c.val)
        XCTAssertEqual(a.val.filter { labels[$0] == 0 }.count, 10)
        XCTAssertEqual(a.val.filter { labels[$0] == 1 }.count, 2)
        XCTAssertEqual(a.val.filter { labels[$0] == 2 }.count, 1)
        XCTAssertEqual(Set(a.train).union(a.val).count, labels.count)
        XCTAssertThrowsError(try DatasetSplit.stratified(labels: labels, classCount: 3, fraction: 1.5, seed: 1))
    }

    func testLoaderIsDeterministicWhateverTheWorkers() throws {
        let d = TempDir()
        try makeFolder(["a": 5, "b": 4], in: d)
        let ds = try ImageFolderDataset(root: d.path)
        let p = Preprocessing(inputSize: [6, 6], resizeShorter: 7)
        func run(workers: Int, prefetch: Int) throws -> [[Float]] {
            let loader = DataLoader(dataset: ds, transform: ImageTransform(mode: .train, preprocessing: p), batchSize: 4,
                                    shuffle: true, seed: 42, prefetch: prefetch, workers: workers)
            let s = loader.batches(epoch: 1)
            var out: [[Float]] = []
            while let b = try s.next() { out.append(b.images + b.labels.map(Float.init)) }
            XCTAssertEqual(out.count, 3)
            return out
        }
        let a = try run(workers: 1, prefetch: 1), b = try run(workers: 2, prefetch: 4)
        XCTAssertEqual(a, b)
        let other = DataLoader(dataset: ds, transform: ImageTransform(mode: .train, preprocessing: p), batchSize: 4, shuffle: true, seed: 42)
        XCTAssertNotEqual(other.order(epoch: 1), other.order(epoch: 2))
    }

    func testLoaderReportsTheBadFile() throws {
        let d = TempDir()
        try makeFolder(["a": 2, "b": 2], in: d, corrupt: ["b/img1.JPG"])
        let ds = try ImageFolderDataset(root: d.path)
        let loader = DataLoader(dataset: ds, transform: ImageTransform(mode: .eval, preprocessing: Preprocessing(inputSize: [4, 4], resizeShorter: 5)), batchSize: 2, shuffle: false, seed: 0)
        let s = loader.batches(epoch: 0)
        XCTAssertNotNil(try s.next())
        XCTAssertThrowsError(try s.next()) { XCTAssertTrue("\($0)".contains("b/img1.JPG")) }
    }
}
