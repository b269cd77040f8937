import Foundation
import XCTest
import WconvTestSupport

/// End-to-end: the built binary on committed fixtures, checking stdout and exit codes.
final class CLISafetensorsTests: XCTestCase {
    var temp: TempDir!
    var dir = ""
    override func setUpWithError() throws { temp = TempDir("cli"); dir = temp.path }
    override func tearDown() { temp = nil }

    func testInspectJSON() throws {
        let r = try CLI.run(["inspect", CLI.fixture("safetensors/valid/all_dtypes.safetensors"), "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try CLI.json(r)
        XCTAssertEqual(j["format"] as? String, "safetensors")
        let tensors = try XCTUnwrap(j["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, 14)
        let scalar = try XCTUnwrap(tensors.first { $0["name"] as? String == "f32.scalar" })
        XCTAssertEqual(scalar["shape"] as? [Int], [])
        XCTAssertEqual(scalar["bytes"] as? Int, 4)
        XCTAssertEqual((j["metadata"] as? [String: String])?["format"], "pt")
    }

    func testInspectStatsAndTies() throws {
        let r = try CLI.run(["inspect", CLI.fixture("safetensors/valid/all_dtypes.safetensors"), "--json", "--stats"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let tensors = try XCTUnwrap(try CLI.json(r)["tensors"] as? [[String: Any]])
        let specials = try XCTUnwrap(tensors.first { $0["name"] as? String == "f32.specials" }?["stats"] as? [String: Any])
        XCTAssertEqual(specials["nan"] as? Int, 1)
        XCTAssertEqual(specials["inf"] as? Int, 1)
        XCTAssertEqual(specials["min"] as? Double, -2.5)
        XCTAssertEqual(specials["max"] as? String, "inf")

        let t = try CLI.run(["inspect", CLI.fixture("safetensors/valid/tied.safetensors")])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("emb.weight = head.weight"), t.stdout)
    }

    func testConvertThenDiffIsBitExact() throws {
        let src = CLI.fixture("safetensors/valid/all_dtypes.safetensors")
        let out = dir + "/copy.safetensors"
        let c = try CLI.run(["convert", src, out])
        XCTAssertEqual(c.status, 0, c.stderr)
        let d = try CLI.run(["diff", src, out, "--json"])
        XCTAssertEqual(d.status, 0, d.stdout + d.stderr)
        XCTAssertEqual(try CLI.json(d)["bit_exact"] as? Bool, true)
    }

    /// `convert IN OUT` skips ArgumentParser (ConvertJob.init?(plainArguments:)); the same call with
    /// a flag that changes nothing goes through it. Both must print and write the same, and fail the same.
    func testPlainConvertMatchesTheParsedForm() throws {
        let src = CLI.fixture("pytorch/state_dict.pt")
        let plain = try CLI.run(["convert", src, dir + "/plain.safetensors"])
        let parsed = try CLI.run(["convert", src, dir + "/parsed.safetensors", "--to", "safetensors"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(parsed.status, 0, parsed.stderr)
        XCTAssertEqual(plain.stdout.replacingOccurrences(of: "plain.", with: "parsed."), parsed.stdout)
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/plain.safetensors"),
                       FileManager.default.contents(atPath: dir + "/parsed.safetensors"))
        // Errors: a missing input is refused as invalid input naming the file; an output whose format cannot
        // be told is a usage error with the usage line, from the full parser.
        let missing = try CLI.run(["convert", dir + "/none.pth", dir + "/x.safetensors"])
        XCTAssertEqual(missing.status, 3, missing.stderr)
        XCTAssertTrue(missing.stderr.contains(dir + "/none.pth"), missing.stderr)
        let unknown = try CLI.run(["convert", src, dir + "/x.unknown"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("Usage: wconv convert"), unknown.stderr)
        XCTAssertEqual(try CLI.run(["convert", "--help"]).status, 0)
    }

    func testDiffOfDifferentFilesExits4() throws {
        let a = CLI.fixture("safetensors/valid/all_dtypes.safetensors")
        let out = dir + "/half.safetensors"
        XCTAssertEqual(try CLI.run(["convert", a, out, "--dtype", "f16"]).status, 0)
        let d = try CLI.run(["diff", a, out, "--json"])
        XCTAssertEqual(d.status, 4)
        let j = try CLI.json(d)
        XCTAssertEqual(j["equal"] as? Bool, false)
        let mism = try XCTUnwrap(j["dtype_mismatches"] as? [[String: Any]])
        XCTAssertTrue(mism.contains { $0["name"] as? String == "f32.specials" })
        XCTAssertTrue(d.stderr.contains("differ"), d.stderr)

        let other = try CLI.run(["diff", a, CLI.fixture("safetensors/valid/tied.safetensors")])
        XCTAssertEqual(other.status, 4)
        XCTAssertTrue(other.stdout.contains("missing:    f32.scalar"), other.stdout)
    }

    func testDiffTolerances() throws {
        let a = CLI.fixture("demo/tiny_cnn.safetensors")
        let out = dir + "/bf16.safetensors", back = dir + "/back.safetensors"
        XCTAssertEqual(try CLI.run(["convert", a, out, "--dtype", "bf16"]).status, 0)
        XCTAssertEqual(try CLI.run(["convert", out, back, "--dtype", "f32"]).status, 0)
        XCTAssertEqual(try CLI.run(["diff", a, back]).status, 4, "bf16 rounding is a difference at zero tolerance")
        let loose = try CLI.run(["diff", a, back, "--rtol", "0.01", "--json"])
        XCTAssertEqual(loose.status, 0, loose.stdout)
        let tensors = try XCTUnwrap(try CLI.json(loose)["tensors"] as? [[String: Any]])
        XCTAssertTrue(tensors.contains { ($0["max_rel"] as? Double ?? 0) > 0 }, "rounding was measured")
    }

    func testInvalidFileExits3AndNamesIt() throws {
        let path = CLI.fixture("safetensors/invalid/overlap.safetensors")
        let r = try CLI.run(["inspect", path])
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stderr.contains(path) && r.stderr.contains("overlaps"), r.stderr)
        XCTAssertEqual(try CLI.run(["inspect", CLI.fixture("sniff/lfs_pointer.safetensors")]).status, 3)
        XCTAssertEqual(try CLI.run(["inspect", CLI.fixture("sniff/empty.pth")]).status, 3)
        XCTAssertEqual(try CLI.run(["diff", path, path]).status, 3)
    }

    func testUsageErrorsExit2() throws {
        XCTAssertEqual(try CLI.run(["inspect"]).status, 2)
        XCTAssertEqual(try CLI.run(["inspect", "x", "--no-such-flag"]).status, 2)
        let src = CLI.fixture("demo/tiny_cnn.safetensors")
        XCTAssertEqual(try CLI.run(["convert", src, dir + "/x.safetensors", "--dtype", "f8"]).status, 2)
        XCTAssertEqual(try CLI.run(["convert", src, dir + "/x.unknown"]).status, 2)
        XCTAssertEqual(try CLI.run(["convert", src, dir + "/x.safetensors", "--rename", "s/unterminated"]).status, 2)
        XCTAssertEqual(try CLI.run(["convert", src, dir + "/x.safetensors", "--max-shard-size", "12XB"]).status, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.safetensors"))
    }

    func testRenameReportsCountsAndRefusesCollisions() throws {
        let src = CLI.fixture("demo/tiny_cnn.safetensors")
        let out = dir + "/renamed.safetensors"
        let r = try CLI.run(["convert", src, out, "--rename", "s/^module\\.//", "--rename", "s/^features\\.0\\./stem./", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let renames = try XCTUnwrap(try CLI.json(r)["renames"] as? [[String: Any]])
        XCTAssertEqual(renames.map { $0["changed"] as? Int }, [14, 1])
        let names = try XCTUnwrap(try CLI.json(try CLI.run(["inspect", out, "--json"]))["tensors"] as? [[String: Any]]).map { $0["name"] as! String }
        XCTAssertTrue(names.contains("stem.weight") && names.contains("fc.bias"), "\(names)")

        let clash = try CLI.run(["convert", src, dir + "/clash.safetensors", "--rename", "s/\\.(weight|bias)$//"])
        XCTAssertEqual(clash.status, 2)
        XCTAssertTrue(clash.stderr.contains("module.fc.weight") && clash.stderr.contains("module.fc.bias"), clash.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/clash.safetensors"))
    }

    func testNarrowingKeepsTiedTensorsTied() throws {
        let out = dir + "/tied16.safetensors"
        let c = try CLI.run(["convert", CLI.fixture("safetensors/valid/tied.safetensors"), out, "--dtype", "bf16", "--rename", "s/^emb\\./embed./"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let tensors = try XCTUnwrap(try CLI.json(try CLI.run(["inspect", out, "--json"]))["tensors"] as? [[String: Any]])
        let head = try XCTUnwrap(tensors.first { $0["name"] as? String == "head.weight" })
        XCTAssertEqual(head["alias_of"] as? String, "embed.weight")
        XCTAssertEqual(head["dtype"] as? String, "bf16")
    }

    func testStripPrefixAuto() throws {
        let out = dir + "/stripped.safetensors"
        let r = try CLI.run(["convert", CLI.fixture("demo/tiny_cnn.safetensors"), out, "--strip-prefix", "auto"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("strip prefix \"module.\": 14 names changed"), r.stdout)
        let again = try CLI.run(["convert", out, dir + "/again.safetensors", "--strip-prefix", "auto"])
        XCTAssertTrue(again.stdout.contains("nothing stripped"), again.stdout)
    }

    func testShardedOutputReadsBackEqual() throws {
        let src = CLI.fixture("demo/tiny_cnn.safetensors")
        let out = dir + "/model.safetensors"
        let r = try CLI.run(["convert", src, out, "--max-shard-size", "10KB", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = try XCTUnwrap(try CLI.json(r)["files"] as? [String])
        XCTAssertGreaterThan(files.count, 2)
        XCTAssertEqual(files.last, out + ".index.json")
        XCTAssertEqual(try CLI.run(["diff", src, out + ".index.json"]).status, 0)
    }

    func testGraphFormatsAreNotWrittenFromBareWeights() throws {
        let r = try CLI.run(["convert", CLI.fixture("demo/tiny_cnn.safetensors"), dir + "/m.onnx"])
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stderr.contains("needs the model's graph"), r.stderr)
    }

    func testBenchImportJSON() throws {
        let r = try CLI.run(["bench", "import", CLI.fixture("demo/tiny_cnn.safetensors"), "--repeat", "3", "--touch", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try CLI.json(r)
        XCTAssertEqual(j["tensors"] as? Int, 14)
        let load = try XCTUnwrap(j["load_seconds"] as? [String: Any])
        XCTAssertEqual((load["all"] as? [Double])?.count, 3)
        XCTAssertGreaterThan(j["peak_rss_bytes"] as? Int ?? 0, 0)
    }
}
