import WconvGraph
import WconvTensor
import XCTest

/// facenet-pytorch's MTCNN state dicts (names and shapes of pnet.pt, rnet.pt, onet.pt) recognised
/// as their stage, with the modules' output shapes. Numbers against PyTorch running the package's
/// own modules: RealWorldModelTests (mtcnn_pnet, mtcnn_rnet, mtcnn_onet).
final class MTCNNRecognitionTests: XCTestCase {
    static let pnet: [(String, [Int])] = [
        ("conv1.weight", [10, 3, 3, 3]), ("conv1.bias", [10]), ("prelu1.weight", [10]), ("conv2.weight", [16, 10, 3, 3]),
        ("conv2.bias", [16]), ("prelu2.weight", [16]), ("conv3.weight", [32, 16, 3, 3]), ("conv3.bias", [32]),
        ("prelu3.weight", [32]), ("conv4_1.weight", [2, 32, 1, 1]), ("conv4_1.bias", [2]), ("conv4_2.weight", [4, 32, 1, 1]),
        ("conv4_2.bias", [4]),
    ]
    static let rnet: [(String, [Int])] = [
        ("conv1.weight", [28, 3, 3, 3]), ("conv1.bias", [28]), ("prelu1.weight", [28]), ("conv2.weight", [48, 28, 3, 3]),
        ("conv2.bias", [48]), ("prelu2.weight", [48]), ("conv3.weight", [64, 48, 2, 2]), ("conv3.bias", [64]),
        ("prelu3.weight", [64]), ("dense4.weight", [128, 576]), ("dense4.bias", [128]), ("prelu4.weight", [128]),
        ("dense5_1.weight", [2, 128]), ("dense5_1.bias", [2]), ("dense5_2.weight", [4, 128]), ("dense5_2.bias", [4]),
    ]
    static let onet: [(String, [Int])] = [
        ("conv1.weight", [32, 3, 3, 3]), ("conv1.bias", [32]), ("prelu1.weight", [32]), ("conv2.weight", [64, 32, 3, 3]),
        ("conv2.bias", [64]), ("prelu2.weight", [64]), ("conv3.weight", [64, 64, 3, 3]), ("conv3.bias", [64]),
        ("prelu3.weight", [64]), ("conv4.weight", [128, 64, 2, 2]), ("conv4.bias", [128]), ("prelu4.weight", [128]),
        ("dense5.weight", [256, 1152]), ("dense5.bias", [256]), ("prelu5.weight", [256]), ("dense6_1.weight", [2, 256]),
        ("dense6_1.bias", [2]), ("dense6_2.weight", [4, 256]), ("dense6_2.bias", [4]), ("dense6_3.weight", [10, 256]),
        ("dense6_3.bias", [10]),
    ]

    func bundle(_ keys: [(String, [Int])]) throws -> TensorBundle {
        var b = TensorBundle(format: "pytorch-legacy")
        let one = Storage(zeroedByteCount: 8)
        for (k, s) in keys { b.tensors[k] = try Tensor(dtype: .f32, shape: s, strides: s.map { _ in 0 }, storage: one) }
        return b
    }

    func testStagesAndOutputShapes() throws {
        // Outputs in the modules' return order.
        let cases: [(String, [(String, [Int])], Int, [(String, [Int])])] = [
            ("mtcnn_pnet", Self.pnet, 30, [("box", [2, 4, 10, 10]), ("probability", [2, 2, 10, 10])]),
            ("mtcnn_rnet", Self.rnet, 24, [("box", [2, 4]), ("probability", [2, 2])]),
            ("mtcnn_onet", Self.onet, 48, [("box", [2, 4]), ("landmarks", [2, 10]), ("probability", [2, 2])]),
        ]
        for (variant, keys, side, outs) in cases {
            let r = try ArchitectureRecognizer.recognizeDetailed(try bundle(keys))
            XCTAssertEqual(r.family, "mtcnn")
            XCTAssertEqual(r.graph.variant, variant)
            XCTAssertEqual(r.unused, [:], variant)
            XCTAssertEqual(r.graph.outputs.map(\.name), outs.map(\.0), variant)
            let shapes = try r.graph.inferShapes(inputShapes: ["input": [2, 3, side, side]])
            for (o, s) in outs { XCTAssertEqual(shapes[o], s, "\(variant) \(o)") }
        }
    }

    /// RNet/ONet flatten a fixed spatial size: a dense layer that does not take it is not MTCNN.
    func testDenseWidthMismatchIsRefused() throws {
        var keys = Self.rnet
        keys[9] = ("dense4.weight", [128, 500])
        let (match, tried) = try ArchitectureRecognizer.attempt(try bundle(keys))
        XCTAssertNil(match)
        let why = try XCTUnwrap(tried.first { $0.family == "mtcnn" }?.reason)
        XCTAssertTrue(why.contains("dense4") && why.contains("576"), why)
    }
}
