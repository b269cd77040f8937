import Foundation
import XCTest
import WconvTensor
import WconvTestSupport

final class AtomicFileWriterTests: XCTestCase {
    /// Gathered writes split into calls at 1 MiB file offsets and at IOV_MAX vectors, and resume
    /// inside a piece: the file must hold exactly the pieces back to back, after what plain writes put
    /// before them, whatever the piece sizes (empty ones included).
    func testGatheredWriteEqualsThePiecesBackToBack() throws {
        var rng = SeededGenerator(seed: 9)
        var pieces: [[UInt8]] = []
        // 1,500 pieces (over IOV_MAX), some empty, some larger than a call, ~3.7 MiB in all.
        for i in 0..<1500 {
            let n = i % 97 == 0 ? 0 : (i % 500 == 3 ? (1 << 20) + 4099 : Int.random(in: 1...2000, using: &rng))
            pieces.append((0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7 &+ ($0 >> 9)) })  // differs per piece and offset
        }
        let lead: [UInt8] = Array("unaligned start".utf8)
        let dir = TempDir()
        let path = dir.file("g.bin")
        try AtomicFileWriter.write(to: path) { w in
            try w.reserve(lead.count + pieces.reduce(0) { $0 + $1.count } + 12345)  // cut back on commit
            try w.write(lead)
            try withPointers(pieces) { try w.write(gathering: $0) }
            try w.write(gathering: [])
            try w.write("end")
        }
        let expected = lead + pieces.flatMap { $0 } + Array("end".utf8)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), expected)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["g.bin"], "no temporary file left")
    }

    func testFailedGatheredWriteLeavesNoFile() throws {
        let dir = TempDir()
        let path = dir.file("x.bin")
        let bytes = [UInt8](repeating: 7, count: 3 << 20)
        XCTAssertThrowsError(try AtomicFileWriter.write(to: path) { w in
            try bytes.withUnsafeBytes { try w.write(gathering: [$0, $0]) }
            throw WconvError(.runtime, "stopped half-way")
        })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "neither the target nor a temporary")
    }

    /// Calls `body` with stable pointers to every array.
    private func withPointers(_ arrays: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws -> Void) rethrows {
        let buffers = arrays.map { a -> UnsafeMutableRawBufferPointer in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: a.count, alignment: 1)
            b.copyBytes(from: a)
            return b
        }
        defer { buffers.forEach { $0.deallocate() } }
        try body(buffers.map { UnsafeRawBufferPointer($0) })
    }
}
