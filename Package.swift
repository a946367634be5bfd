// swift-tools-version: 6.2
import PackageDescription

// Layout: a thin executable over a command library; a core that knows descriptors,
// planning and processes; one library per stage of a cell (kernel, userspace, boot,
// device tree, scheduler); one Swift wrapper per C library over a systemLibrary target.
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "kmatrix",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kmatrix", targets: ["kmatrix"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C libraries. libfdt ships no pkg-config file on Debian 12: its modulemap links `fdt`.
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CFDT", providers: [.apt(["libfdt-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // Swift wrappers: each owns its C handles and turns return codes into typed errors.
        .target(name: "KmatrixArchive", dependencies: ["CArchive", "KmatrixZlib"], swiftSettings: strict),
        .target(name: "KmatrixFDT", dependencies: ["CFDT"], swiftSettings: strict),
        .target(name: "KmatrixZlib", dependencies: ["CZlib", "CDeflate"], swiftSettings: strict),
        .target(name: "KmatrixCrypto", dependencies: ["CCrypto"], swiftSettings: strict),

        // Core: descriptors, planning, errors, processes, host probing.
        .target(
            name: "KmatrixCore",
            dependencies: [
                "KmatrixCrypto",
                "KmatrixArchive",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),

        // One library per stage of a cell.
        .target(name: "KmatrixKernel", dependencies: ["KmatrixCore", "KmatrixCrypto"], swiftSettings: strict),
        .target(name: "KmatrixUserspace", dependencies: ["KmatrixCore", "KmatrixArchive", "KmatrixZlib", "KmatrixCrypto"], swiftSettings: strict),
        .target(
            name: "KmatrixBoot",
            dependencies: [
                "KmatrixCore", "KmatrixCrypto",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .target(name: "KmatrixDeviceTree", dependencies: ["KmatrixCore", "KmatrixFDT"], swiftSettings: strict),
        .target(
            name: "KmatrixScheduler",
            dependencies: ["KmatrixCore", "KmatrixCrypto", "KmatrixKernel", "KmatrixUserspace", "KmatrixBoot", "KmatrixDeviceTree"],
            swiftSettings: strict),

        // Commands live in a library so tests can drive them; the executable is one file.
        .target(
            name: "KmatrixCommands",
            dependencies: [
                "KmatrixCore", "KmatrixKernel", "KmatrixUserspace", "KmatrixBoot",
                "KmatrixDeviceTree", "KmatrixScheduler",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "kmatrix", dependencies: ["KmatrixCommands"], swiftSettings: strict),

        // Fixtures shared by the test targets (the repository root, throwaway projects).
        .target(name: "KmatrixTestSupport", dependencies: ["KmatrixCore"], path: "Tests/KmatrixTestSupport", swiftSettings: strict),
        // Every module a test imports is named (a clean build finds a missing one; an incremental one may not).
        .testTarget(name: "KmatrixCoreTests", dependencies: ["KmatrixCore", "KmatrixArchive", "KmatrixCommands", "KmatrixTestSupport"], swiftSettings: strict),
        .testTarget(name: "KmatrixKernelTests", dependencies: ["KmatrixKernel", "KmatrixCore", "KmatrixCrypto", "KmatrixTestSupport"], swiftSettings: strict),
        .testTarget(name: "KmatrixUserspaceTests", dependencies: ["KmatrixUserspace", "KmatrixCore", "KmatrixCrypto", "KmatrixArchive", "KmatrixZlib", "KmatrixTestSupport"], swiftSettings: strict),
        .testTarget(name: "KmatrixBootTests", dependencies: ["KmatrixBoot", "KmatrixCore", "KmatrixCrypto", "KmatrixTestSupport"], swiftSettings: strict),
        .testTarget(name: "KmatrixDeviceTreeTests", dependencies: ["KmatrixDeviceTree", "KmatrixCore", "KmatrixFDT", "KmatrixTestSupport"], swiftSettings: strict),
        .testTarget(name: "KmatrixSchedulerTests", dependencies: ["KmatrixScheduler", "KmatrixCore", "KmatrixCrypto", "KmatrixCommands", "KmatrixTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
    ]
)
