import Foundation
import KmatrixCore
import Testing

/// Where the cache is when no `--cache` is given: the place Scripts/bootstrap fetches sources
/// into (`${KMATRIX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmatrix}`), in the same order.
@Suite("The default cache folder")
struct CacheRootTests {
    @Test func homeIsReadFromTheEnvironmentNotThePasswordFile() {
        #expect(Workspace.defaultRoot(environment: ["HOME": "/srv/ci-home"]) == "/srv/ci-home/.cache/kmatrix")
    }

    @Test func xdgCacheHomeThenKmatrixCacheWin() {
        #expect(Workspace.defaultRoot(environment: ["HOME": "/h", "XDG_CACHE_HOME": "/x"]) == "/x/kmatrix")
        #expect(Workspace.defaultRoot(environment: ["HOME": "/h", "XDG_CACHE_HOME": "/x", "KMATRIX_CACHE": "/k"]) == "/k")
    }

    @Test func withoutHomeThePasswordFilesHomeIsUsed() {
        #expect(Workspace.defaultRoot(environment: [:]) == (NSHomeDirectory() as NSString).appendingPathComponent(".cache/kmatrix"))
    }
}
