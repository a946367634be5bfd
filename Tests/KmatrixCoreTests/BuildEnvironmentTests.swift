import Foundation
import KmatrixCore
import KmatrixTestSupport
import Testing

/// A build's environment is the allow-list plus what the command sets: a KCFLAGS (or
/// MAKEFLAGS, KBUILD_*) in kmatrix's own environment never reaches make. (The test does
/// not setenv: other tests spawn processes concurrently, and environ is not thread-safe.)
@Suite("Build environment")
struct BuildEnvironmentTests {
    @Test func theAllowListKeepsOnlyWhatABuildMayRead() {
        let host = ["PATH": "/usr/bin", "HOME": "/root", "KCFLAGS": "-O0", "MAKEFLAGS": "-j99", "KBUILD_BUILD_USER": "me",
                    "LLVM_IAS": "0", "CCACHE_DIR": "/cc", "CROSS_COMPILE": "x-", "TMPDIR": "/t"]
        #expect(BuildEnvironment.filtered(host) == ["PATH": "/usr/bin", "HOME": "/root", "CCACHE_DIR": "/cc", "TMPDIR": "/t"])
    }

    @Test(.needs(tools: ["env"]))
    func aCleanCommandSeesOnlyTheAllowListAndItsOwnVariables() async throws {
        let clean = try await ProcessRunner.capture(Command(["env"], environment: ["KBUILD_BUILD_USER": "kmatrix"], cleanEnvironment: true),
                                                    timeout: .seconds(60))
        #expect(clean.termination.succeeded)
        let names = Set(clean.standardOutput.split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        #expect(names.contains("PATH") && names.contains("KBUILD_BUILD_USER"))
        let allowed = BuildEnvironment.filtered(ProcessInfo.processInfo.environment).keys
        #expect(names.isSubset(of: Set(allowed).union(["KBUILD_BUILD_USER"])), "\(names)")
        // Without the flag a command inherits kmatrix's environment (git, QEMU need nothing more).
        let outside = ProcessInfo.processInfo.environment.keys.first { !allowed.contains($0) && !$0.contains("=") }
        if let outside {
            let inherited = try await ProcessRunner.capture(Command(["env"]), timeout: .seconds(60))
            #expect(inherited.termination.succeeded)
            #expect(inherited.standardOutput.contains("\(outside)="))
            #expect(!names.contains(outside))
        }
    }
}
