import Foundation
import KmatrixCore
import KmatrixKernel
import KmatrixTestSupport
import Testing

/// ccache shared by every cell: settings that let different `O=` folders hit the same
/// entries, and the hits and misses of each build read from its stats log.
@Suite("ccache across cells")
struct CcacheTests {
    func plan(ccache: String?, tree: String = "/home/me/.cache/kmatrix/src/linux-aaaa",
              build: String = "/home/me/.cache/kmatrix/build/x86_64-pc/gcc/tiny/initramfs/kernel") throws -> KernelPlan {
        let project = try Project.load(root: repositoryRoot)
        let cell = try #require(project.cells.first { $0.target.name == "x86_64-pc" })
        return KernelPlan(cell: cell, sourceTree: tree, buildDirectory: build, jobs: 2, ccache: ccache)
    }

    @Test func pathsAreHashedRelativeToTheFolderHoldingTreeAndBuild() throws {
        let plan = try plan(ccache: "/usr/bin/ccache")
        let make = plan.make(["bzImage"])
        #expect(make.argv.contains("CC=/usr/bin/ccache x86_64-linux-gnu-gcc"))
        #expect(make.environment["CCACHE_BASEDIR"] == "/home/me/.cache/kmatrix")
        #expect(make.environment["CCACHE_NOHASHDIR"] == "1")
        #expect(make.environment["CCACHE_STATSLOG"] == "\(plan.buildDirectory)/ccache-stats.log")
        // A tree elsewhere: the deepest common folder; nothing in common but /: no base.
        #expect(try self.plan(ccache: "/usr/bin/ccache", tree: "/home/me/linux").make([]).environment["CCACHE_BASEDIR"] == "/home/me")
        #expect(try self.plan(ccache: "/usr/bin/ccache", tree: "/srv/linux").make([]).environment["CCACHE_BASEDIR"] == nil)
    }

    @Test func withoutCcacheNothingOfItIsSet() throws {
        let make = try plan(ccache: nil).make(["bzImage"])
        #expect(!make.argv.contains { $0.hasPrefix("CC=") || $0.hasPrefix("HOSTCC=") })
        #expect(!make.environment.keys.contains { $0.hasPrefix("CCACHE_") })
    }

    /// The log as ccache 4.7 writes it: one `# source` line per call, then its counters.
    @Test func statsLogCountsHitsMissesAndUncacheableCalls() {
        let log = """
            # init/main.c
            cache_miss
            direct_cache_miss
            local_storage_miss
            preprocessed_cache_miss
            # init/version.c
            direct_cache_hit
            local_storage_hit
            # kernel/fork.c
            preprocessed_cache_hit
            direct_cache_miss
            # vmlinux.o
            called_for_link

            """
        let stats = CcacheStats(parsing: log)
        #expect(stats == CcacheStats(calls: 4, hits: 2, misses: 1))
        #expect(stats.uncacheable == 1)
        #expect(stats.summary == "ccache 2 hits, 1 misses, 1 uncacheable of 4 calls")
        #expect(CcacheStats.read("/nonexistent/ccache-stats.log") == nil)
    }
}
