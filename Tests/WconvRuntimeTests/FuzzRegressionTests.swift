import WconvGraph
import WconvTensor
import XCTest
@testable import WconvRuntime

/// Crashes the FuzzGraph generator found (their recipes are also in fixtures/fuzz/FuzzGraph),
/// each reduced to the one node that trapped.
final class FuzzRegressionTests: XCTestCase {
    /// Transpose of a scalar (a full reduction with keepdims=0 feeds one) read outShape[-1].
    func testTransposeOfScalar() throws {
        let g = singleNodeGraph(.transpose, attrs: ["perm": .ints([])], inputShapes: [[]])
        XCTAssertEqual(try runGraph(g, ["x": Tensor(shape: [], floats: [3])]).floats(), [3])
    }

    /// Pad of a scalar (pads = []) read shape[-1].
    func testPadOfScalar() throws {
        let g = singleNodeGraph(.pad, attrs: ["pads": .ints([])], inputShapes: [[]])
        XCTAssertEqual(try runGraph(g, ["x": Tensor(shape: [], floats: [2])]).floats(), [2])
    }

    /// LayerNorm over zero rows had no saved-statistics buffer and force-unwrapped it.
    func testLayerNormOfEmptyInput() throws {
        let g = singleNodeGraph(.layerNorm, attrs: ["axis": .int(1)], inputShapes: [[0, 4]],
                                params: [("w", Tensor(shape: [4], floats: [1, 1, 1, 1])), ("b", Tensor(shape: [4], floats: [0, 0, 0, 0]))])
        XCTAssertEqual(try runGraph(g, ["x": Tensor(shape: [0, 4], floats: [])]).shape, [0, 4])
    }
}
