import Foundation
import XCTest
import WconvTensor
@testable import WconvFormats
import WconvTestSupport

/// Zip reader and writer: round trips, and crafted archives that must be refused.
final class ZipArchiveTests: XCTestCase {
    var temp: TempDir!
    var dir: String { temp.path }
    override func setUpWithError() throws { temp = TempDir("zip") }
    override func tearDown() { temp = nil }

    struct Member { var name: String; var data: [UInt8]; var method: UInt16 = 0; var flags: UInt16 = 0; var crc: UInt32? = nil
        var localName: String? = nil; var usize: UInt32? = nil; var offsetOverride: UInt32? = nil; var bothSizes: UInt32? = nil }

    /// Assembles a classic zip (no zip64) from members, with knobs to corrupt each field.
    func craft(_ members: [Member], _ name: String) throws -> String {
        var out: [UInt8] = []
        var cd: [UInt8] = []
        for m in members {
            let off = out.count
            let crc = m.crc ?? m.data.withUnsafeBytes { ZipCRC32.checksum($0) }
            let lname = Array((m.localName ?? m.name).utf8)
            out.le32(0x04034b50); out.le16(20); out.le16(m.flags); out.le16(m.method); out.le16(0); out.le16(0x21)
            out.le32(crc); out.le32(m.bothSizes ?? UInt32(m.data.count)); out.le32(m.bothSizes ?? m.usize ?? UInt32(m.data.count))
            out.le16(UInt16(lname.count)); out.le16(0); out.append(contentsOf: lname); out.append(contentsOf: m.data)
            let n = Array(m.name.utf8)
            cd.le32(0x02014b50); cd.le16(20); cd.le16(20); cd.le16(m.flags); cd.le16(m.method); cd.le16(0); cd.le16(0x21)
            cd.le32(crc); cd.le32(m.bothSizes ?? UInt32(m.data.count)); cd.le32(m.bothSizes ?? m.usize ?? UInt32(m.data.count))
            cd.le16(UInt16(n.count)); cd.le16(0); cd.le16(0); cd.le16(0); cd.le16(0); cd.le32(0)
            cd.le32(m.offsetOverride ?? UInt32(off)); cd.append(contentsOf: n)
        }
        let cdOff = out.count
        out += cd
        out.le32(0x06054b50); out.le16(0); out.le16(0); out.le16(UInt16(members.count)); out.le16(UInt16(members.count))
        out.le32(UInt32(cd.count)); out.le32(UInt32(cdOff)); out.le16(0)
        let path = dir + "/" + name
        try Data(out).write(to: URL(fileURLWithPath: path))
        return path
    }

    func refuses(_ path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try { let z = try ZipArchive(file: try MappedFile(path: path)); for e in z.entries { _ = try z.data(of: e) } }(), file: file, line: line) { e in
            let w = e as! WconvError
            XCTAssertEqual(w.exitCode, 3, file: file, line: line)
            XCTAssertTrue(w.message.contains(fragment), "'\(w.message)' lacks '\(fragment)'", file: file, line: line)
        }
    }

    func testWriterRoundTripAlignedAndReadableByCraftedReader() throws {
        let path = dir + "/w.zip"
        let payloads: [(String, [UInt8])] = [("a/data.pkl", Array("hello".utf8)), ("a/data/0", (0..<1000).map { UInt8($0 % 251) }),
                                             ("a/empty", []), ("a/data/1", [1, 2, 3])]
        try AtomicFileWriter.write(to: path) { w in
            let z = ZipWriter(output: w)
            for (n, d) in payloads { try z.addStored(name: n, data: d) }
            try z.finish()
        }
        let z = try ZipArchive(file: try MappedFile(path: path))
        XCTAssertEqual(z.entries.map(\.name), payloads.map(\.0))
        for (n, d) in payloads {
            let e = z.entry(named: n)!
            XCTAssertEqual(e.dataOffset % 64, 0)
            let s = try z.data(of: e)
            XCTAssertTrue(s.isMapped, "STORED records are zero-copy views")
            XCTAssertEqual(Array(s.buffer), d)
            XCTAssertNotEqual(e.crc32, d.isEmpty ? 1 : 0)
        }
    }

    func testStoredAndCRC() throws {
        let ok = try craft([Member(name: "x/a", data: [1, 2, 3])], "ok.zip")
        let zok = try ZipArchive(file: try MappedFile(path: ok))
        let sok = try zok.data(of: zok.entries[0])
        XCTAssertEqual(Array(sok.buffer), [1, 2, 3])
        refuses(try craft([Member(name: "x/a", data: [1, 2, 3], crc: 0xDEADBEEF)], "crc.zip"), "CRC-32")
        // CRC 0 means "not computed" (torch set_crc32_options(False)).
        let nocrc = try craft([Member(name: "x/a", data: [1, 2, 3], crc: 0)], "nocrc.zip")
        XCTAssertNoThrow(try { let z = try ZipArchive(file: try MappedFile(path: nocrc)); _ = try z.data(of: z.entries[0]) }())
    }

    /// The byte-level name check against the rule it implements, written out with Swift strings:
    /// empty, absolute, a `..` component, a backslash or a NUL is unsafe; dots inside a name are not.
    func testMemberNameRuleMatchesItsDefinition() {
        func expected(_ n: String) -> Bool {
            n.isEmpty || n.hasPrefix("/") || n.unicodeScalars.contains("\\") || n.unicodeScalars.contains("\0")
                || n.split(separator: "/", omittingEmptySubsequences: false).contains("..")
        }
        let names = ["archive/data.pkl", "..", "../a", "a/..", "a/../b", "a/..b", "a/b..", "a/...", ".../a", "./a", "a/./b",
                     ".", "a//b", "a/", "", "/", "/a", "a\\b", "a\0b", "é/ü..", "a/.. /b", "a/.../b", "a/../"]
        for n in names {
            let refused = (try? ZipArchive.validate(name: n, index: 0)) == nil
            XCTAssertEqual(refused, expected(n), "name \(n.debugDescription)")
        }
    }

    func testHostileArchivesAreRefused() throws {
        refuses(try craft([Member(name: "x/a", data: [1]), Member(name: "x/a", data: [2])], "dup.zip"), "two members named")
        refuses(try craft([Member(name: "x/../etc/passwd", data: [1])], "dots.zip"), "unsafe name")
        refuses(try craft([Member(name: "x\\a", data: [1])], "bslash.zip"), "unsafe name")
        refuses(try craft([Member(name: "/abs", data: [1])], "abs.zip"), "unsafe name")
        refuses(try craft([Member(name: "x/a", data: [1], flags: 1)], "enc.zip"), "encrypted")
        refuses(try craft([Member(name: "x/a", data: [1], method: 12)], "bz.zip"), "method 12")
        refuses(try craft([Member(name: "x/a", data: [1], localName: "x/b")], "mismatch.zip"), "names a different file")
        refuses(try craft([Member(name: "x/a", data: [1, 2, 3, 4]), Member(name: "x/b", data: [5], offsetOverride: 2)], "overlap.zip"), "local header")
        refuses(try craft([Member(name: "x/a", data: Array(repeating: 7, count: 100)), Member(name: "x/b", data: [5], offsetOverride: 0)], "overlap2.zip"), "names a different file")
        refuses(try craft([Member(name: "x/a", data: [1, 2, 3, 4], bothSizes: 40), Member(name: "x/b", data: Array(repeating: 5, count: 60))], "overlap3.zip"), "overlaps")
        refuses(try craft([Member(name: "x/a", data: [1, 2], usize: 5)], "stored-size.zip"), "STORED")
        // Deflate bomb: 3 compressed bytes claiming 1 GB.
        refuses(try craft([Member(name: "x/a", data: [3, 0, 0], method: 8, usize: 1_000_000_000)], "bomb.zip"), "zip bomb")
        // Corrupt deflate stream.
        refuses(try craft([Member(name: "x/a", data: [0xFF, 0xFF, 0xFF, 0xFF], method: 8, usize: 4)], "baddeflate.zip"), "DEFLATE")
    }

    func testTruncatedArchives() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: try craft([Member(name: "x/a", data: Array(repeating: 1, count: 50))], "g.zip")))
        for cut in [0, 10, 21, 40, good.count - 30, good.count - 1] {
            let p = dir + "/t\(cut).zip"
            try good.prefix(cut).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try ZipArchive(file: try MappedFile(path: p))) { XCTAssertEqual(($0 as! WconvError).exitCode, 3) }
        }
    }

    func testDeflateMembersInflate() throws {
        let z = try ZipArchive(file: try MappedFile(path: PTFixtures.path("deflated.pt")))
        let e = z.entry(named: "deflated/data.pkl")!
        XCTAssertEqual(e.method, 8)
        let s = try z.data(of: e)
        XCTAssertEqual(s.byteCount, e.uncompressedSize)
        XCTAssertFalse(s.isMapped)
    }

    /// Sniffing and reading walk the zip the same way: bytes after the end record that its comment
    /// length does not cover (a stray signature) are refused by both, and a valid archive lists the
    /// same members from memory as from the mapping.
    func testSniffingAndReadingShareOneWalk() throws {
        let good = try craft([Member(name: "m/data.pkl", data: [0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]), Member(name: "m/data/0", data: [1, 2, 3, 4])], "m.pth")
        let mapped = try MappedFile(path: good)
        XCTAssertEqual(try ZipArchive(buffer: mapped.buffer, path: good).entries, try ZipArchive(file: mapped).entries)
        XCTAssertEqual(try ModelFile.sniff(path: good), .pytorchZip)

        let stray = dir + "/stray.pth"
        try (try Data(contentsOf: URL(fileURLWithPath: good)) + Data("junk".utf8)).write(to: URL(fileURLWithPath: stray))
        XCTAssertThrowsError(try ModelFile.sniff(path: stray)) { XCTAssertTrue(($0 as! WconvError).message.contains("central directory"), "\($0)") }
        refuses(stray, "central directory")
    }
}
