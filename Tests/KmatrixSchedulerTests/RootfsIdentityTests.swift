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
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// The newest run of `matrix` in which every cell passed.
    static func lastRun(_ matrix: String) -> RunResults? {
        FixtureCommands.lastRun(matrix) { $0.cells.allSatisfy(\.passed) }
    }

    static var ready: Bool { FixtureCommands.binary != nil && lastRun("matrix.json") != nil && lastRun("Matrices/root-devices.json") != nil }

    @Test(.enabled(if: ready || isCI, "needs the kmatrix binary and finished runs of both shipped matrices in the cache (Scripts/test makes them)"),
          arguments: [("x86_64-pc/gcc/tiny/initramfs", "matrix.json"), ("arm-vexpress-a9/gcc/tiny/sd", "Matrices/root-devices.json")])
    func rootfsMakesTheRunsImage(cell: String, matrix: String) async throws {
        let run = try #require(Self.lastRun(matrix), "no finished run of \(matrix)")
        let result = try #require(run.cells.first { $0.id == cell })
        let expected = try #require(result.artifacts.first { $0.name.hasPrefix("initramfs") || $0.name.hasPrefix("rootfs") })
        // The fixture's kernel and busybox, but not its rootfs: this command makes the image.
        let fixture = try FixtureCommands(leavingOut: [.rootfs])
        defer { fixture.remove() }
        let made = try await fixture.run(["rootfs", "--cell", cell, "--plain"] + (matrix == "matrix.json" ? [] : ["--matrix", matrix]))
        #expect(made.status == 0, "kmatrix rootfs failed:\n\(made.output)")
        let image = "\(fixture.cache)/build/\(cell)/images/\((expected.path as NSString).lastPathComponent)"
        // Made here, not borrowed: the image must be an entry of this cache.
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: image)
        #expect(target.hasPrefix("\(fixture.cache)/cache/rootfs/"))
        #expect(try SHA256.hex(fileAt: image) == expected.sha256)
    }
}
