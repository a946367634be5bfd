import Foundation

/// Where kmatrix keeps what it makes, outside the project tree: unpacked sources, per-cell
/// build directories, the artifact cache and run directories. One root, configurable
/// with `--cache` or `KMATRIX_CACHE`, default `$XDG_CACHE_HOME/kmatrix` (`~/.cache/kmatrix`).
public struct Workspace: Sendable, Equatable {
    public var root: String

    public init(root: String) { self.root = (root as NSString).standardizingPath }

    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["KMATRIX_CACHE"], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return "\(xdg)/kmatrix" }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".cache/kmatrix")
    }

    /// Downloaded or fetched source tarballs.
    public var sources: String { "\(root)/sources" }
    /// Unpacked source trees, one per tarball checksum, shared read-only by every cell.
    public func unpacked(_ name: String, sha256: String) -> String { "\(root)/src/\(name)-\(sha256.prefix(16))" }
    /// The out-of-tree kernel build directory of one cell (`make O=`).
    public func kernelBuild(_ cell: Cell) -> String { "\(root)/build/\(cell.id)/kernel" }
    /// The busybox build directory for one (ABI, toolchain): shared by every cell that needs it.
    public func busyboxBuild(debianArch: String, toolchain: String) -> String { "\(root)/build/busybox/\(debianArch)-\(toolchain)" }
    /// Where one cell's rootfs and images are assembled.
    public func images(_ cell: Cell) -> String { "\(root)/build/\(cell.id)/images" }
    /// Published step outputs, keyed by a hash of their inputs.
    public var cache: String { "\(root)/cache" }
    public var runs: String { "\(root)/runs" }

    /// Expands `~` and `{cache}` in a descriptor path.
    public func expand(_ path: String) -> String {
        (path.replacingOccurrences(of: "{cache}", with: root) as NSString).expandingTildeInPath
    }
}
