import Foundation
import WconvRuntime
import XCTest

/// The BLAS runs kernels that match the CPU's instruction sets, and they compute correct GEMMs.
final class BLASKernelTests: XCTestCase {
    // CPUID bit positions (Intel SDM vol. 2A, CPUID) used to build test CPUs.
    static let sse42: UInt32 = 1 << 20, fma: UInt32 = 1 << 12, osxsave: UInt32 = 1 << 27, avx: UInt32 = 1 << 28
    static let avx2: UInt32 = 1 << 5, avx512f: UInt32 = 1 << 16, avx512dq: UInt32 = 1 << 17, avx512cd: UInt32 = 1 << 28
    static let avx512bw: UInt32 = 1 << 30, avx512vl: UInt32 = 1 << 31
    static let avx512vnni: UInt32 = 1 << 11, avx512bf16: UInt32 = 1 << 5
    static let amxBF16: UInt32 = 1 << 22, avx512fp16: UInt32 = 1 << 23, amxTile: UInt32 = 1 << 24, amxInt8: UInt32 = 1 << 25
    static let xcr0AVX: UInt64 = 0x7, xcr0AVX512: UInt64 = 0xe7, xcr0AMX: UInt64 = 0x600e7

    static let avxECX = sse42 | fma | osxsave | avx
    static let skylakeXEBX = avx2 | avx512f | avx512dq | avx512cd | avx512bw | avx512vl

    /// A Xeon newer than Debian's OpenBLAS 0.3.21 (family 6 model 207: AVX-512 with BF16/FP16 and AMX)
    /// is recognised from its feature bits.
    func testNewXeonGetsTheBF16AVX512Core() {
        let cpu = CPUFeatures(vendor: "GenuineIntel", leaf1ECX: Self.avxECX, leaf7EBX: Self.skylakeXEBX, leaf7ECX: Self.avx512vnni,
                              leaf7EDX: Self.amxBF16 | Self.avx512fp16 | Self.amxTile | Self.amxInt8, leaf7Sub1EAX: Self.avx512bf16, xcr0: Self.xcr0AMX)
        XCTAssertEqual(cpu.level, .avx512bf16)
        XCTAssertEqual(cpu.openBLASCore, "Cooperlake")
        XCTAssertTrue(Set(cpu.flags).isSuperset(of: ["avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"]), "\(cpu.flags)")
    }

    /// AVX-512 bits without the OS saving ZMM state (XCR0) must not select AVX-512 kernels: they would fault.
    func testAVX512WithoutOSStateFallsBackToAVX2() {
        let cpu = CPUFeatures(vendor: "GenuineIntel", leaf1ECX: Self.avxECX, leaf7EBX: Self.skylakeXEBX,
                              leaf7EDX: Self.amxTile, leaf7Sub1EAX: Self.avx512bf16, xcr0: Self.xcr0AVX)
        XCTAssertEqual(cpu.level, .avx2)
        XCTAssertEqual(cpu.openBLASCore, "Haswell")
        XCTAssertFalse(cpu.flags.contains("avx512f"))
        XCTAssertFalse(cpu.flags.contains("amx_tile"))
        // No OSXSAVE at all: not even AVX.
        let noXSave = CPUFeatures(vendor: "GenuineIntel", leaf1ECX: Self.sse42 | Self.fma | Self.avx, leaf7EBX: Self.avx2, xcr0: 0)
        XCTAssertEqual(noXSave.level, .baseline)
        XCTAssertNil(noXSave.openBLASCore)
        XCTAssertEqual(noXSave.flags, ["sse4_2"])
    }

    func testCoreChoiceByISA() {
        let skx = CPUFeatures(vendor: "GenuineIntel", leaf1ECX: Self.avxECX, leaf7EBX: Self.skylakeXEBX, xcr0: Self.xcr0AVX512)
        XCTAssertEqual(skx.openBLASCore, "SkylakeX")
        let zen3 = CPUFeatures(vendor: "AuthenticAMD", leaf1ECX: Self.avxECX, leaf7EBX: Self.avx2, xcr0: Self.xcr0AVX)
        XCTAssertEqual(zen3.openBLASCore, "Zen")
        let haswell = CPUFeatures(vendor: "GenuineIntel", leaf1ECX: Self.avxECX, leaf7EBX: Self.avx2, xcr0: Self.xcr0AVX)
        XCTAssertEqual(haswell.openBLASCore, "Haswell")
        // Xeon Phi style AVX-512 (F and CD only, no BW/VL/DQ) does not run SkylakeX kernels.
        let phi = CPUFeatures(vendor: "GenuineIntel", leaf1ECX: Self.avxECX, leaf7EBX: Self.avx2 | Self.avx512f | Self.avx512cd, xcr0: Self.xcr0AVX512)
        XCTAssertEqual(phi.openBLASCore, "Haswell")
        let sandy = CPUFeatures(vendor: "GenuineIntel", leaf1ECX: Self.sse42 | Self.osxsave | Self.avx, leaf7EBX: 0, xcr0: Self.xcr0AVX)
        XCTAssertEqual(sandy.openBLASCore, "Sandybridge")
        XCTAssertEqual(sandy.level, .avx)
    }

    func testCoreTiers() {
        XCTAssertEqual(CPUFeatures.Level(openBLASCore: "Prescott"), .baseline)
        XCTAssertEqual(CPUFeatures.Level(openBLASCore: "NEHALEM"), .baseline)
        XCTAssertEqual(CPUFeatures.Level(openBLASCore: "Sandybridge"), .avx)
        XCTAssertEqual(CPUFeatures.Level(openBLASCore: "Haswell"), .avx2)
        XCTAssertEqual(CPUFeatures.Level(openBLASCore: "Zen"), .avx2)
        XCTAssertEqual(CPUFeatures.Level(openBLASCore: "SkylakeX"), .avx512)
        XCTAssertEqual(CPUFeatures.Level(openBLASCore: "Cooperlake"), .avx512bf16)
        XCTAssertNil(CPUFeatures.Level(openBLASCore: "SomeFutureLake"), "unknown names are never treated as old")
    }

    /// Fails when the BLAS runs its generic SSE kernels on a CPU with AVX2 or better (a 2–3× loss on
    /// every conv and linear layer), or, with a runtime-dispatching OpenBLAS, any core below the ISA.
    func testKernelsInUseMatchTheCPU() throws {
        let k = try BLASKernels.load()
        if case .user(let v) = k.choice {
            throw XCTSkip("OPENBLAS_CORETYPE=\(v) is set in the environment; wconv never overrides it (core \(k.core))")
        }
        XCTAssertFalse(k.isGenericOnCapableCPU, "generic kernels on \(k.cpu.summary): \(k.summary)")
        if k.dynamicArch, let have = k.coreLevel {
            XCTAssertGreaterThanOrEqual(have, k.cpu.level, "core \(k.core) is older than the CPU's \(k.cpu.level): \(k.summary)")
        }
    }

    func testSelfCheckAgainstNaiveReference() throws {
        let k = try BLASKernels.load()
        XCTAssertTrue(k.selfCheckPassed, k.summary)
        let (ok, error) = try BLASKernels.selfCheck()
        XCTAssertTrue(ok)
        XCTAssertLessThan(error, 1e-5)
    }
}
