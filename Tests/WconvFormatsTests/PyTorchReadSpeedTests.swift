import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats

/// Load-time measurement on a real-size file, run only when WCONV_BENCH_PTH names one, e.g.
/// `WCONV_BENCH_PTH=/tmp/resnet50.pth swift test -c release -Xswiftc -enable-testing --filter PyTorchReadSpeedTests`
/// (tools/bench and `wconv bench import` do the user-facing comparison with torch).
final class PyTorchReadSpeedTests: XCTestCase {
    func testReadSpeed() throws {
        guard let path = ProcessInfo.processInfo.environment["WCONV_BENCH_PTH"] else { throw XCTSkip("set WCONV_BENCH_PTH") }
        var best = Double.infinity
        var n = 0
        for _ in 0..<5 {
            let t0 = Date()
            let b = try PyTorchReader.read(path: path)
            best = min(best, Date().timeIntervalSince(t0))
            n = b.tensors.count
            XCTAssertTrue(b.tensors.values.allSatisfy { $0.storage.isMapped || $0.numel == 0 })
        }
        print("PyTorchReader.read \(path): \(n) tensors, best of 5: \(String(format: "%.2f", best * 1000)) ms")
        // Optional expected values in the fixture JSON layout (tools/fixtures/pytorch/gen.py `expect`).
        if let json = ProcessInfo.processInfo.environment["WCONV_BENCH_JSON"] {
            let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [String: Any]
            PTFixtures.check(try PyTorchReader.read(path: path), against: doc)
        }
    }
}
