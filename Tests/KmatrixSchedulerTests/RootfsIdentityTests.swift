import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix rootfs` and `kmatrix run` run the same rootfs step: for the same cell they make
/// byte-identical images. The fixture cache's last run made the run's image; here
/// `kmatrix rootfs` makes it again in a cache of its own, taking the kernel and busybox
/// (but no rootfs) from the fixture through `--cache-from`.
@Suite("kmatrix rootfs equals run", .serialized)
struct RootfsIdentityTests {
    static let shared = Workspace(root: Workspace.defaultRoot())
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"
    static let binary: String? = {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kmatrix").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    static func lastRun(_ matrix: String) -> RunResults? {
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: shared.runs)) ?? []
        return runs.filter { $0 != "latest" }.sorted().reversed().lazy
            .compactMap { try? RunResults.load(from: "\(shared.runs)/\($0)") }
            .first { $0.run.matrix == matrix && !$0.run.interrupted && $0.cells.allSatisfy(\.passed) }
    }

    static var ready: Bool { binary != nil && lastRun("matrix.json") != nil && lastRun("Matrices/root-devices.json") != nil }

    /// An upstream cache that holds every entry of the fixture but the rootfs ones (links, read-only use).
    func upstreamWithoutRootfs() throws -> String {
        let fm = FileManager.default
        let root = NSTemporaryDirectory() + "kmatrix-upstream-\(UUID().uuidString)"
        try fm.createDirectory(atPath: "\(root)/cache", withIntermediateDirectories: true)
        for kind in try fm.contentsOfDirectory(atPath: Self.shared.cache) where kind != StepKind.rootfs.rawValue {
            try fm.createSymbolicLink(atPath: "\(root)/cache/\(kind)", withDestinationPath: "\(Self.shared.cache)/\(kind)")
        }
        try fm.createSymbolicLink(atPath: "\(root)/src", withDestinationPath: "\(Self.shared.root)/src")
        return root
    }

    func rootfs(_ cell: String, matrix: String?) throws -> (status: Int32, cache: String, output: String) {
        let upstream = try upstreamWithoutRootfs()
        defer { try? FileManager.default.removeItem(atPath: upstream) }
        let cache = NSTemporaryDirectory() + "kmatrix-rootfs-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(cache)/sources", withDestinationPath: "\(Self.shared.root)/sources")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary!)
        process.arguments = ["rootfs", "--project", repositoryRoot, "--cache", cache, "--cache-from", upstream, "--cell", cell, "--plain", "--json"]
            + (matrix.map { ["--matrix", $0] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, cache, output)
    }

    @Test(.enabled(if: ready || isCI, "needs the kmatrix binary and finished runs of both shipped matrices in the cache (Scripts/test makes them)"),
          arguments: [("x86_64-pc/gcc/tiny/initramfs", "matrix.json"), ("arm-vexpress-a9/gcc/tiny/sd", "Matrices/root-devices.json")])
    func rootfsMakesTheRunsImage(cell: String, matrix: String) throws {
        let run = try #require(Self.lastRun(matrix), "no finished run of \(matrix)")
        let result = try #require(run.cells.first { $0.id == cell })
        let expected = try #require(result.artifacts.first { $0.name.hasPrefix("initramfs") || $0.name.hasPrefix("rootfs") })
        let made = try rootfs(cell, matrix: matrix == "matrix.json" ? nil : matrix)
        defer { try? FileManager.default.removeItem(atPath: made.cache) }
        #expect(made.status == 0, "kmatrix rootfs failed:\n\(made.output)")
        let image = "\(made.cache)/build/\(cell)/images/\((expected.path as NSString).lastPathComponent)"
        // Made here, not borrowed: the image must be an entry of this cache.
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: image)
        #expect(target.hasPrefix("\(made.cache)/cache/rootfs/"))
        #expect(try SHA256.hex(fileAt: image) == expected.sha256)
    }
}
