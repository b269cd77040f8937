// swift-tools-version:5.9
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its directory (the repository checkout or a worktree),
// so compute that identity instead of hard-coding it.
let wconvPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

// libFuzzer targets for wconv's parsers. Separate package so the main build never needs the fuzzer
// runtime. Build and run with tools/fuzz (it passes -sanitize=fuzzer,address).
let package = Package(
    name: "wconv-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "FuzzPickle", dependencies: ["CFuzzDriver", .product(name: "Wconv", package: wconvPackage)]),
        .executableTarget(name: "FuzzZip", dependencies: ["CFuzzDriver", .product(name: "Wconv", package: wconvPackage)]),
        .executableTarget(name: "FuzzSafetensors", dependencies: ["CFuzzDriver", .product(name: "Wconv", package: wconvPackage)]),
        .executableTarget(name: "FuzzONNX", dependencies: ["CFuzzDriver", .product(name: "Wconv", package: wconvPackage)]),
        .executableTarget(name: "FuzzGraph", dependencies: ["CFuzzDriver", .product(name: "Wconv", package: wconvPackage)]),
    ]
)
