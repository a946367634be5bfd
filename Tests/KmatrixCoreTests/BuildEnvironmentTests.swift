import Foundation
import KmatrixCore
import KmatrixTestSupport
import Testing

/// A build's environment is the allow-list plus what the command sets: a KCFLAGS (or
/// MAKEFLAGS, KBUILD_*) in kmatrix's own environment never reaches make.
@Suite("Build environment")
struct BuildEnvironmentTests {
    @Test(.needs(tools: ["env"]))
    func aCleanCommandSeesOnlyTheAllowListAndItsOwnVariables() async throws {
        setenv("KCFLAGS", "-DKMATRIX_LEAKED", 1)
        setenv("CCACHE_DIR_TEST_PROBE", "kept", 1)
        defer { unsetenv("KCFLAGS"); unsetenv("CCACHE_DIR_TEST_PROBE") }
        let clean = try await ProcessRunner.capture(Command(["env"], environment: ["KBUILD_BUILD_USER": "kmatrix"], cleanEnvironment: true),
                                                    timeout: .seconds(10))
        let names = Set(clean.standardOutput.split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        #expect(!names.contains("KCFLAGS"))
        #expect(names.contains("PATH") && names.contains("KBUILD_BUILD_USER") && names.contains("CCACHE_DIR_TEST_PROBE"))
        #expect(names.isSubset(of: BuildEnvironment.allowed.union(["KBUILD_BUILD_USER", "CCACHE_DIR_TEST_PROBE"])), "\(names)")
        // Without the flag a command inherits kmatrix's environment, as tools like git need.
        let inherited = try await ProcessRunner.capture(Command(["env"]), timeout: .seconds(10))
        #expect(inherited.standardOutput.contains("KCFLAGS=-DKMATRIX_LEAKED"))
    }
}
