import Foundation

/// Where kmatrix keeps what it makes, outside the project tree: unpacked sources, per-cell
/// build directories, the artifact cache and run directories. One root, configurable
/// with `--cache` or `KMATRIX_CACHE`, default `$XDG_CACHE_HOME/kmatrix` (`~/.cache/kmatrix`).
public struct Workspace: Sendable, Equatable {
    public var root: String

    /// The root's symlinks are resolved: libarchive's secure-symlinks check refuses to
    /// extract through any symlink on the destination path, so a cache reached through one
    /// (`~/.cache` linked to a bigger disk) would fail every unpack.
    public init(root: String) { self.root = Self.resolvingSymlinks((root as NSString).standardizingPath) }

    /// `path` with the symlinks of its longest existing prefix resolved (the rest may not exist yet).
    public static func resolvingSymlinks(_ path: String) -> String {
        var existing = path
        var rest: [String] = []
        while existing.count > 1, access(existing, F_OK) != 0 {
            rest.insert((existing as NSString).lastPathComponent, at: 0)
            existing = (existing as NSString).deletingLastPathComponent
        }
        guard let real = realpath(existing, nil) else { return path }
        defer { free(real) }
        return rest.reduce(String(cString: real)) { ($0 as NSString).appendingPathComponent($1) }
    }

    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["KMATRIX_CACHE"], !explicit.isEmpty { return explicit }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return "\(xdg)/kmatrix" }
        // $HOME first, as Scripts/bootstrap and every XDG tool read it: Foundation's
        // NSHomeDirectory() on Linux is the password file's home and ignores $HOME, so with
        // HOME set elsewhere (a CI job's, `sudo -E`) bootstrap's fetched sources landed in
        // one cache and kmatrix looked in another.
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".cache/kmatrix")
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
