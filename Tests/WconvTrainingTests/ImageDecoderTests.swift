import Foundation
@testable import WconvTraining
import WconvTensor
import XCTest
import WconvTestSupport

final class ImageDecoderTests: XCTestCase {
    func testDecodesEveryKindLikePIL() throws {
        let cases = try XCTUnwrap(Fixture.json("images.json") as? [String: [String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 9)
        for (name, c) in cases {
            let img = try ImageDecoder.decode(path: Fixture.path("images/\(name)"))
            XCTAssertEqual(img.width, c["width"] as! Int, name)
            XCTAssertEqual(img.height, c["height"] as! Int, name)
            let exp = ints(c["rgb"])
            let maxDiff = zip(img.pixels, exp).map { abs(Int($0) - $1) }.max() ?? 0
            // PNG is lossless: exact. JPEG: same libjpeg IDCT as PIL; allow one level for CMYK rounding.
            XCTAssertLessThanOrEqual(maxDiff, name.hasSuffix(".png") ? 0 : 1, name)
        }
    }

    func testPNGRoundTrip() throws {
        var px = [UInt8](repeating: 0, count: 5 * 4 * 3)
        for i in px.indices { px[i] = UInt8(truncatingIfNeeded: i * 37) }
        let img = RGBImage(width: 5, height: 4, pixels: px)
        let back = try ImageDecoder.decode(Data(PNGEncoder.encode(img)))
        XCTAssertEqual(back.pixels, px)
    }

    func testCorruptAndTruncatedFilesThrowNamingTheFile() throws {
        let dir = TempDir()
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("images/rgb.jpg")))
        let goodPNG = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("images/rgb.png")))
        var inputs: [(String, Data)] = [
            ("empty.png", Data()), ("text.jpg", Data("hello world, not an image".utf8)),
            ("trunc.jpg", good.prefix(good.count / 2)), ("trunc.png", goodPNG.prefix(goodPNG.count / 2)),
            ("header.png", goodPNG.prefix(40)),
        ]
        // Flip bytes all over the files: must never crash, either decode or throw.
        var rng = RNG(seed: 1)
        for k in 0..<60 {
            var d = k % 2 == 0 ? good : goodPNG
            for _ in 0..<4 { let i = rng.below(d.count); d[i] = UInt8(truncatingIfNeeded: rng.next32()) }
            inputs.append(("fuzz\(k)\(k % 2 == 0 ? ".jpg" : ".png")", d))
        }
        // A PNG header claiming 60000×60000 in a tiny file: refused before allocation.
        var bomb = goodPNG
        bomb.replaceSubrange(16..<24, with: [0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60])
        inputs.append(("bomb.png", bomb))
        var threw = 0
        for (name, data) in inputs {
            let path = dir.path + "/" + name
            try data.write(to: URL(fileURLWithPath: path))
            do { _ = try ImageDecoder.decode(path: path) } catch let e as WconvError {
                threw += 1
                XCTAssertTrue(e.description.contains(name), e.description)
            }
        }
        XCTAssertGreaterThanOrEqual(threw, 6)
    }
}
