import Foundation
import Wconv
import WconvTestSupport
import XCTest

/// `wconv --version` reports the kernels; commands that do no arithmetic never load the BLAS (no
/// thread pool spinning in `convert`); an older core chosen by OpenBLAS is replaced from CPUID.
final class CLIKernelTests: XCTestCase {
    var temp = TempDir("cli")
    var dir: String { temp.path }

    static var userCoreType: String? { ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 } }

    /// glibc's loader lists every shared object it maps (LD_DEBUG=files), dlopen'ed ones included.
    func loadsOpenBLAS(_ args: [String]) throws -> Bool {
        let r = try CLI.run(args, environment: ["LD_DEBUG": "files"])
        XCTAssertEqual(r.status, 0, "\(args): \(r.stderr.suffix(2000))")
        return r.stderr.contains("libopenblas")
    }

    func testCommandsWithoutArithmeticStartNoBLAS() throws {
        let pth = CLI.fixture("models/densenet.pth")
        XCTAssertTrue(try loadsOpenBLAS(["--version"]), "the LD_DEBUG probe should see OpenBLAS load for --version")
        XCTAssertFalse(try loadsOpenBLAS(["convert", pth, dir + "/d.safetensors"]))
        XCTAssertFalse(try loadsOpenBLAS(["inspect", pth]))
        XCTAssertFalse(try loadsOpenBLAS(["diff", pth, dir + "/d.safetensors"]))
        XCTAssertFalse(try loadsOpenBLAS(["import", pth, "-o", dir + "/d.wconv.safetensors"]))
        XCTAssertFalse(try loadsOpenBLAS(["bench", "import", pth, "--repeat", "1"]))
    }

    func testVersionPrintsCPUAndKernels() throws {
        let r = try CLI.run(["--version"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "wconv \(wconvVersion)")
        let cpu = try XCTUnwrap(lines.first { $0.hasPrefix("CPU:") }, r.stdout)
        XCTAssertTrue(cpu.contains(CPUFeatures.current.level.description), cpu)
        let blas = try XCTUnwrap(lines.first { $0.hasPrefix("BLAS:") }, r.stdout)
        XCTAssertTrue(blas.contains("OpenBLAS") && blas.contains("core ") && blas.contains("threads") && blas.contains("self-check passed"), blas)
    }

    /// wconv's own C kernels run the CPU's widest path (CPUID), and WCONV_VECTOR_ISA holds them lower.
    func testVectorKernelsLineFollowsCPUAndCap() throws {
        if let v = ProcessInfo.processInfo.environment["WCONV_VECTOR_ISA"] { throw XCTSkip("WCONV_VECTOR_ISA=\(v) is set here") }
        let r = try CLI.run(["--version"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("VEC:") }, r.stdout)
        let level = CPUFeatures.current.level
        let want = level >= .avx512 ? "avx512" : level >= .avx2 ? "avx2" : "portable"
        XCTAssertTrue(line.hasPrefix("VEC:  \(want) ("), String(line))
        let capped = try CLI.run(["--version"], environment: ["WCONV_VECTOR_ISA": "portable"])
        XCTAssertTrue(capped.stdout.contains("VEC:  portable (") && capped.stdout.contains("stays its post-op"), capped.stdout)
    }

    /// The oneDNN line, its switch, and the short OpenMP spin an arithmetic command re-executes with.
    func testDNNLEngineLineSwitchAndWaitPolicy() throws {
        let on = try CLI.run(["--version"])
        XCTAssertEqual(on.status, 0, on.stderr)
        let line = try XCTUnwrap(on.stdout.split(separator: "\n").first { $0.hasPrefix("DNN:") }, on.stdout)
        XCTAssertTrue(line.contains("oneDNN") && line.contains("convolutions"), String(line))
        let off = try CLI.run(["--version"], environment: ["WCONV_DNNL": "0"])
        XCTAssertTrue(off.stdout.contains("off (WCONV_DNNL=0): convolutions on im2col + BLAS"), off.stdout)
        guard !line.contains(" off ") else { throw XCTSkip("oneDNN has no CPU engine here") }
        let env = ProcessInfo.processInfo.environment
        if let v = env["OMP_WAIT_POLICY"] ?? env["GOMP_SPINCOUNT"] { throw XCTSkip("an OpenMP wait policy or spin count (\(v)) is set here; wconv keeps it") }
        let bench = try CLI.run(["bench", "conv", "--models", "fewlabel", "--reps", "1"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        XCTAssertTrue(bench.stdout.contains("GOMP_SPINCOUNT=10000"), bench.stdout)
        XCTAssertTrue(bench.stdout.contains("fewlabel"), bench.stdout)
        let kept = try CLI.run(["bench", "conv", "--models", "fewlabel", "--reps", "1"], environment: ["OMP_WAIT_POLICY": "active"])
        XCTAssertTrue(kept.stdout.contains("OMP_WAIT_POLICY=active"), kept.stdout)
    }

    /// As on a CPU newer than the library: OpenBLAS picks Prescott by itself, wconv replaces it.
    func testOlderCoreChosenByOpenBLASIsReplaced() throws {
        if let v = Self.userCoreType { throw XCTSkip("OPENBLAS_CORETYPE=\(v) is set here; wconv keeps it") }
        guard let want = CPUFeatures.current.openBLASCore else { throw XCTSkip("no AVX on this CPU: nothing newer than Prescott to select") }
        let r = try CLI.run(["--version"], environment: ["WCONV_BLAS_SIMULATE_LIBRARY_CORE": "Prescott"])
        XCTAssertEqual(r.status, 0, r.stderr)
        guard r.stdout.contains("DYNAMIC_ARCH") else { throw XCTSkip("this OpenBLAS has one fixed core; OPENBLAS_CORETYPE cannot change it") }
        XCTAssertTrue(r.stdout.contains("core \(want) (selected by wconv from CPUID; OpenBLAS alone chose Prescott)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("self-check passed"), r.stdout)
    }

    func testUsersCoreTypeIsKeptAndReported() throws {
        if let v = Self.userCoreType { throw XCTSkip("OPENBLAS_CORETYPE=\(v) is already set here") }
        let r = try CLI.run(["--version"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("core Prescott (OPENBLAS_CORETYPE=Prescott set by the user)"), r.stdout)
        if CPUFeatures.current.level >= .avx2 { XCTAssertTrue(r.stdout.contains("warning: generic SSE kernels"), r.stdout) }
    }
}
