import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixKernel
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// A cached config that make refuses as stale (its `syncconfig` rewrites it: here, the
/// compiler it names is not the one installed) is evicted and configured once more; the
/// cell is not left broken until `kmatrix clean`.
@Suite("A stale cached config")
struct StaleConfigTests {
    static let cellID = "x86_64-pc/gcc/tiny/initramfs"

    @Test(.needs(tools: ["make", "gcc"], .kmatrixBinary, .unpackedKernel, .builtKernel(cellID)))
    func isEvictedAndConfiguredAgain() async throws {
        let project = try #require(TestCache.project)
        let cell = try #require(project.cells.first { $0.id == Self.cellID })
        let source = try SourceResolver.resolve(project.matrix.sources.kernel, what: "kernel", workspace: TestCache.shared.workspace,
                                                file: project.matrix.file)
        let inputs = try await KernelConfigInputs.resolve(cell: cell, project: project, source: source)
        let key = inputs.fingerprint
        let real = "\(TestCache.shared.workspace.cache)/kernel.config/\(key)"
        let configuration = try JSONDecoder().decode(KernelConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: "\(real)/configuration.json")))
        let text = try String(contentsOfFile: "\(real)/config", encoding: .utf8)
        try #require(text.contains("CONFIG_CC_VERSION_TEXT="))
        // The same config, as if made with another gcc: Kconfig will write its own back.
        let stale = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("CONFIG_CC_VERSION_TEXT=") ? "CONFIG_CC_VERSION_TEXT=\"gcc (Debian 11.3.0-12) 11.3.0\"" : String($0) }
            .joined(separator: "\n")

        let fixture = try FixtureCommands(); defer { fixture.remove() }
        var planted = configuration
        planted.configSHA256 = SHA256.hex(stale)
        let entry = try await ArtifactCache(root: "\(fixture.cache)/cache").publish(kind: "kernel.config", key: key, inputs: inputs) { staging in
            (try? stale.write(toFile: "\(staging)/config", atomically: true, encoding: .utf8)) != nil
                && (try? JSONEncoder().encode(planted).write(to: URL(fileURLWithPath: "\(staging)/configuration.json"))) != nil
        }
        try #require(entry != nil)

        let (status, output) = try await fixture.run(["build", "--cell", Self.cellID, "--plain"])
        #expect(status == 0, "\(output)")
        let results = try RunResults.load(from: "\(fixture.cache)/runs/latest")
        let build = try #require(results.steps.first { $0.kind == .kernelBuild && $0.scope == Self.cellID })
        #expect(build.status == .passed && build.summary.contains("config was stale, configured again"), "\(build.summary)")
        // The entry now holds the config Kconfig makes with this compiler, and the build
        // from it is the fixture's own (served, not compiled again).
        let fresh = try String(contentsOfFile: "\(fixture.cache)/cache/kernel.config/\(key)/config", encoding: .utf8)
        #expect(SHA256.hex(fresh) == configuration.configSHA256)
        #expect(build.cacheHit)
    }
}
