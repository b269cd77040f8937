import Foundation
import WconvTensor
import XCTest
@testable import WconvFormats

final class NPYTests: XCTestCase {
    func testRoundTripAndFortranOrder() throws {
        let t = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let bytes = try NPY.encode(t)
        XCTAssertEqual((bytes.count - t.byteCount) % 64, 0, "data starts on a 64-byte boundary")
        let back = try bytes.withUnsafeBytes { try NPY.parse($0, owner: NSObject()) }
        XCTAssertEqual(back.shape, [2, 3])
        XCTAssertEqual(back.floats(), [1, 2, 3, 4, 5, 6])
        // Fortran order: same logical array stored column-major.
        var header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var f: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        for v: Float in [1, 4, 2, 5, 3, 6] { withUnsafeBytes(of: v) { f += $0 } }
        let ft = try f.withUnsafeBytes { try NPY.parse($0, owner: NSObject()) }
        XCTAssertEqual(ft.floats(), [1, 2, 3, 4, 5, 6])
    }

    func testRefusesTruncatedAndBadFiles() throws {
        let t = Tensor(shape: [4], floats: [1, 2, 3, 4])
        let bytes = try NPY.encode(t)
        XCTAssertThrowsError(try Array(bytes.dropLast(4)).withUnsafeBytes { try NPY.parse($0, owner: NSObject()) }) { e in
            XCTAssertTrue("\(e)".contains("needs 16 bytes"), "\(e)")
        }
        XCTAssertThrowsError(try Array(bytes.prefix(20)).withUnsafeBytes { try NPY.parse($0, owner: NSObject()) })
        XCTAssertThrowsError(try [UInt8](repeating: 0, count: 20).withUnsafeBytes { try NPY.parse($0, owner: NSObject()) })
        var big = bytes
        let s = String(decoding: big, as: UTF8.self)
        if s.contains("<f4") { let r = big.firstIndex(of: UInt8(ascii: "<"))!; big[r] = UInt8(ascii: ">") }
        XCTAssertThrowsError(try big.withUnsafeBytes { try NPY.parse($0, owner: NSObject()) }) { e in XCTAssertTrue("\(e)".contains("big-endian"), "\(e)") }
        // A shape whose size overflows is refused, not allocated.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 4), }\n"
        header += ""
        let f: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
        XCTAssertThrowsError(try f.withUnsafeBytes { try NPY.parse($0, owner: NSObject()) })
    }

    func testReadsNumpyWrittenFixture() throws {
        let url = SafetensorsFixtures.root.appendingPathComponent("runtime/probe.npy")
        let t = try NPY.read(path: url.path)
        XCTAssertEqual(t.shape, [2, 3, 4])
        XCTAssertEqual(t.dtype, .f32)
        XCTAssertEqual(t.floats(), (0..<24).map { Float($0) * 0.5 - 3 })
        let ti = try NPY.read(path: SafetensorsFixtures.root.appendingPathComponent("runtime/ids.npy").path)
        XCTAssertEqual(ti.dtype, .i64)
        XCTAssertEqual(ti.floats(), [3, 1, 4, 1, 5, 9])
    }
}
