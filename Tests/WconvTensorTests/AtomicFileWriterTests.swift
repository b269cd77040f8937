import Foundation
import XCTest
@testable import WconvTensor
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
            try w.write(gathering: [WritePiece]())
            try w.write("end")
        }
        let expected = lead + pieces.flatMap { $0 } + Array("end".utf8)
        XCTAssertTrue(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == expected, "file content")
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

    /// Ranges of a mapped file are read from the file with pread(2) (large ones) or copied through
    /// the mapping (small ones), in the same calls as memory pieces, with whole-memory calls between
    /// them. When the path was replaced by another file after mapping, every range comes through the
    /// mapping: still the mapped bytes.
    func testMappedFileRangesAreReadFromTheFileOrThroughTheMapping() throws {
        let dir = TempDir()
        let source = (0..<(3 << 20) + 333).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ ($0 >> 11)) }
        let sourcePath = dir.write("source.bin", source)
        let mapped = try MappedFile(path: sourcePath)
        let many = [(5, 70_001), (100, 17), (1 << 20, (1 << 20) + 4097), (77, 65_536), (3 << 20, 333), (0, 2_000_000)]
        let few = [(5, 70_001), (100, 17)]
        let small: [UInt8] = Array("in memory".utf8)
        let large = (0..<(3 << 19)).map { UInt8(truncatingIfNeeded: $0 &* 7) }  // whole calls of memory

        func run(_ name: String, _ ranges: [(Int, Int)]) throws -> Bool {
            let path = dir.file(name)
            try small.withUnsafeBytes { s in
                try large.withUnsafeBytes { l in
                    let pieces = ranges.enumerated().flatMap { i, r -> [WritePiece] in
                        [WritePiece(UnsafeRawBufferPointer(rebasing: mapped.buffer[r.0..<(r.0 + r.1)]), in: mapped), WritePiece(i == 2 ? l : s)]
                    }
                    try AtomicFileWriter.write(to: path) { w in
                        try w.write("x")  // the calls start off a 1 MiB boundary
                        try w.write(gathering: pieces)
                    }
                }
            }
            let expected = ranges.enumerated().flatMap { i, r in [UInt8](source[r.0..<(r.0 + r.1)]) + (i == 2 ? large : small) }
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)).dropFirst()) == expected
        }
        XCTAssertNotNil(mapped.reopen().map { close($0) }, "the file can be read again")
        XCTAssertTrue(try run("many.bin", many), "read from the file")
        XCTAssertTrue(try run("few.bin", few), "read from the file")

        _ = dir.write("other.bin", [UInt8](repeating: 0xEE, count: source.count))
        XCTAssertEqual(rename(dir.file("other.bin"), sourcePath), 0)
        XCTAssertNil(mapped.reopen(), "another file now has the path")
        XCTAssertTrue(try run("mapped.bin", many), "the mapped bytes, not the new file's")
        XCTAssertTrue(try run("mapped-few.bin", few), "the mapped bytes, not the new file's")
    }

    /// A gathered write of ≥ 16 MiB is cut in two halves written by two threads into their own parts
    /// of the file: the file still holds every piece back to back (mapped-file ranges read with
    /// pread, memory pieces, a piece crossing the split), after an unaligned lead; with
    /// WCONV_WRITE_THREADS=1 the write stays on one thread and gives the same file.
    func testLargeGatheredWriteOnTwoThreadsEqualsThePiecesBackToBack() throws {
        let dir = TempDir()
        let source = (0..<(22 << 20) + 4321).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ ($0 >> 13)) }
        let mapped = try MappedFile(path: dir.write("source.bin", source))
        let memory = (0..<(5 << 20) + 77).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ 3) }
        let ranges = [(7, 9 << 20), (100, 33), ((9 << 20) + 11, 13 << 20)]
        func write(_ name: String) throws -> [UInt8] {
            let path = dir.file(name)
            try memory.withUnsafeBytes { m in
                let pieces = ranges.flatMap { r in
                    [WritePiece(UnsafeRawBufferPointer(rebasing: mapped.buffer[r.0..<(r.0 + r.1)]), in: mapped), WritePiece(m)]
                }
                let calls = GatherPlan(pieces: pieces, startingAt: 3).calls
                let split = AtomicFileWriter.parallelSplit(calls, bytes: calls.reduce(0) { $0 + $1.count })
                if ProcessInfo.processInfo.activeProcessorCount >= 2 && getenv("WCONV_WRITE_THREADS") == nil {
                    let half = try XCTUnwrap(split)
                    XCTAssertTrue(half > 0 && half < calls.count)
                } else {
                    XCTAssertNil(split)
                }
                try AtomicFileWriter.write(to: path) { w in
                    try w.write("abc")
                    try w.write(gathering: pieces)
                    try w.write("z")
                }
            }
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        let expected = Array("abc".utf8) + ranges.flatMap { [UInt8](source[$0.0..<($0.0 + $0.1)]) + memory } + Array("z".utf8)
        XCTAssertTrue(try write("two.bin") == expected, "two threads")
        setenv("WCONV_WRITE_THREADS", "1", 1)
        defer { unsetenv("WCONV_WRITE_THREADS") }
        XCTAssertTrue(try write("one.bin") == expected, "one thread")
    }

    /// The plan of a gathered write: calls end on 1 MiB file offsets, are staged when they hold a
    /// large range of a mapped file, and cover every byte once.
    func testGatherPlanCutsAtMiBOffsetsAndMarksStagedCalls() throws {
        let dir = TempDir()
        let mapped = try MappedFile(path: dir.write("m.bin", [UInt8](repeating: 1, count: 3 << 20)))
        let memory = [UInt8](repeating: 2, count: 1 << 21)
        try memory.withUnsafeBytes { m in
            let pieces = [WritePiece(UnsafeRawBufferPointer(rebasing: m[0..<100])),
                          WritePiece(UnsafeRawBufferPointer(rebasing: mapped.buffer[0..<(3 << 20)]), in: mapped),
                          WritePiece(UnsafeRawBufferPointer(rebasing: m[0..<(1 << 21)])),
                          WritePiece(UnsafeRawBufferPointer(rebasing: mapped.buffer[7..<1000]), in: mapped)]
            let calls = GatherPlan(pieces: pieces, startingAt: 10).calls
            XCTAssertEqual(calls.map(\.count), [(1 << 20) - 10, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 110 + 993])
            XCTAssertEqual(calls.map(\.staged), [true, true, true, false, false, false], "the 4th holds only 110 bytes of the file")
            XCTAssertEqual(calls.reduce(0) { $0 + $1.count }, 100 + (3 << 20) + (1 << 21) + 993)
        }
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
