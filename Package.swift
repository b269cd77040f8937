// swift-tools-version:5.9
import PackageDescription

// Targets keep the arrows one-way (design.md §2):
// C libraries → WconvTensor → WconvFormats → WconvGraph → WconvRuntime → WconvTraining → wconv;
// WconvText (tokenizers, text data) stands on WconvTensor and WconvFormats only; WconvTraining
// uses it for text batches.
let package = Package(
    name: "wconv",
    products: [
        .library(name: "Wconv", targets: ["Wconv"]),
        .executable(name: "wconv", targets: ["wconv"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // C libraries from Debian's packages, one wrapper target each.
        .systemLibrary(name: "CWconvZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CWconvProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        // HDF5 is loaded with dlopen on first use (wconv_hdf5.h); its headers come from libhdf5-dev.
        .target(name: "CWconvHDF5", linkerSettings: [.linkedLibrary("dl")]),
        // OpenSSL's libcrypto for SHA-256, also loaded with dlopen on first use (wconv_crypto.h).
        .target(name: "CWconvCrypto", linkerSettings: [.linkedLibrary("dl")]),
        // protoc-c output for schemas/onnx.proto, committed (tools/regenerate-onnx rebuilds it).
        .target(name: "CWconvONNX", dependencies: ["CWconvProtobufC"]),
        // OpenBLAS is opened with dlopen on first use, with the kernels chosen from CPUID (wconv_blas.c).
        .target(name: "CWconvBLAS", linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("m")]),
        // oneDNN (convolution primitives, issue 9): Debian's libdnnl-dev has no pkg-config file; its headers
        // are in /usr/include. Linked always; its OpenMP threads start with the first primitive run.
        .systemLibrary(name: "CWconvDNNL", providers: [.apt(["libdnnl-dev"])]),
        // Open MPI for data-parallel training (issue 12): loaded with dlopen when a data-parallel run starts (wconv_mpi.h); headers from libopenmpi-dev.
        .target(name: "CWconvMPI", linkerSettings: [.linkedLibrary("dl")]),
        // libpng's headers sit in a versioned folder: pkg-config gives the path (no unsafeFlags, so
        // other packages can depend on Wconv).
        .systemLibrary(name: "CWconvPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        // libjpeg reports errors by longjmp, which Swift cannot catch: a small C file owns that.
        .target(name: "CWconvImage", dependencies: ["CWconvPNG"], linkerSettings: [.linkedLibrary("jpeg")]),

        // Pointwise kernels with per-function AVX-512 / AVX2 targets, which Swift cannot express (wconv_vector.h).
        .target(name: "CWconvVector", linkerSettings: [.linkedLibrary("m")]),

        // Start-up of the wconv executable only: libgomp's wait policy (wconv_startup.c).
        .target(name: "CWconvStartup"),

        // Core Library
        .target(name: "WconvTensor", dependencies: [
            "CWconvCrypto",
            .product(name: "Collections", package: "swift-collections"),
        ]),
        .target(name: "WconvFormats", dependencies: [
            "WconvTensor", "CWconvZlib", "CWconvProtobufC", "CWconvONNX", "CWconvHDF5",
            .product(name: "Collections", package: "swift-collections"),
        ]),
        .target(name: "WconvGraph", dependencies: ["WconvTensor", "WconvFormats", .product(name: "Collections", package: "swift-collections")]),
        .target(name: "WconvRuntime", dependencies: ["WconvTensor", "WconvGraph", "CWconvBLAS", "CWconvDNNL", "CWconvVector", .product(name: "Collections", package: "swift-collections")]),
        .target(name: "WconvTraining", dependencies: ["WconvTensor", "WconvFormats", "WconvGraph", "WconvRuntime", "WconvText", "CWconvImage", "CWconvMPI", .product(name: "Collections", package: "swift-collections")]),
        .target(name: "WconvText", dependencies: ["WconvTensor", "WconvFormats"]),
        .target(name: "Wconv", dependencies: ["WconvTensor", "WconvFormats", "WconvGraph", "WconvRuntime", "WconvTraining", "WconvText"]),

        // Command line
        // Release builds link the Swift runtime and Foundation into the executable (issue 9): resolving
        // their ~10,000 symbols across a dozen shared libraries took 4 ms of every run, a tenth of a
        // `wconv convert`; the binary also runs where no Swift toolchain is installed. Debug and
        // sanitizer builds stay dynamic. Only this executable carries the flag: the Wconv library
        // product has none, so other packages can still depend on it.
        .executableTarget(name: "wconv", dependencies: [
            "Wconv", "CWconvStartup",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], linkerSettings: [.unsafeFlags(["-static-stdlib", "-lCoreFoundation", "-l_FoundationICU", "-l_FoundationCShims", "-l_FoundationCollections", "-lswiftSynchronization"], .when(platforms: [.linux], configuration: .release))]),

        // Tests: fixture paths, temporary folders and assertions they all use.
        .target(name: "WconvTestSupport", dependencies: ["WconvTensor"], path: "Tests/WconvTestSupport"),
        .testTarget(name: "WconvTensorTests", dependencies: ["WconvTensor", "WconvTestSupport"]),
        .testTarget(name: "WconvFormatsTests", dependencies: ["WconvFormats", "WconvTestSupport"]),
        .testTarget(name: "WconvGraphTests", dependencies: ["WconvGraph", "WconvFormats", "WconvTestSupport"]),
        .testTarget(name: "WconvRuntimeTests", dependencies: ["WconvRuntime", "WconvGraph", "WconvFormats", "WconvTestSupport"]),
        .testTarget(name: "WconvTrainingTests", dependencies: ["WconvTraining", "WconvRuntime", "WconvGraph", "WconvFormats", "WconvText", "WconvTestSupport"]),
        .testTarget(name: "WconvTextTests", dependencies: ["WconvText", "WconvFormats", "WconvTestSupport"]),
        .testTarget(name: "WconvCLITests", dependencies: ["Wconv", "WconvTestSupport"]),
    ]
)
