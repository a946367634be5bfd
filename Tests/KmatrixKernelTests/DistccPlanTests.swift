import Foundation
import KmatrixCore
import KmatrixKernel
import KmatrixTestSupport
import Testing

/// `--distcc HOSTS` in the kernel's make: the target compiler goes through distcc (directly,
/// or as ccache's prefix), the hosts reach it through the clean environment, host tools
/// stay local.
@Suite("distcc in the kernel plan")
struct DistccPlanTests {
    static let distcc = Distcc(executable: "/usr/bin/distcc", hosts: "10.0.0.2/4 10.0.0.3/4")

    func plan(ccache: String?, distcc: Distcc?) throws -> KernelPlan {
        let project = try Project.load(root: repositoryRoot)
        let cell = try #require(project.cells.first { $0.target.name == "x86_64-pc" })
        return KernelPlan(cell: cell, sourceTree: "/c/src/linux-aaaa", buildDirectory: "/c/build/x86_64-pc/kernel",
                          jobs: 2, ccache: ccache, distcc: distcc)
    }

    @Test func withoutCcacheTheCompilerRunsUnderDistcc() throws {
        let make = try plan(ccache: nil, distcc: Self.distcc).make(["bzImage"])
        #expect(make.argv.contains("CC=/usr/bin/distcc x86_64-linux-gnu-gcc"))
        #expect(!make.argv.contains { $0.hasPrefix("HOSTCC=") })
        #expect(make.environment["DISTCC_HOSTS"] == "10.0.0.2/4 10.0.0.3/4")
        #expect(make.environment["CCACHE_PREFIX"] == nil)
        #expect(make.cleanEnvironment == true)
    }

    @Test func withCcacheItsMissesGoToDistccAndHostToolsStayHere() throws {
        let make = try plan(ccache: "/usr/bin/ccache", distcc: Self.distcc).make(["bzImage"])
        #expect(make.argv.contains("CC=/usr/bin/ccache x86_64-linux-gnu-gcc"))
        #expect(make.environment["CCACHE_PREFIX"] == "/usr/bin/distcc")
        #expect(make.environment["DISTCC_HOSTS"] == "10.0.0.2/4 10.0.0.3/4")
        // CCACHE_PREFIX applies to every ccache call: HOSTCC must not go through ccache.
        #expect(!make.argv.contains { $0.hasPrefix("HOSTCC=") })
    }

    @Test func withoutHostsNothingOfDistccIsSet() throws {
        let make = try plan(ccache: nil, distcc: nil).make(["bzImage"])
        #expect(!make.argv.contains { $0.contains("distcc") })
        #expect(!make.environment.keys.contains { $0.hasPrefix("DISTCC_") })
    }

    /// The user's DISTCC_* settings reach the build like CCACHE_* ones.
    @Test func distccSettingsPassTheCleanEnvironment() {
        let filtered = BuildEnvironment.filtered(["DISTCC_HOSTS": "a b", "DISTCC_VERBOSE": "1", "KCFLAGS": "-O3"])
        #expect(filtered == ["DISTCC_HOSTS": "a b", "DISTCC_VERBOSE": "1"])
    }
}
