import Foundation
import KmatrixCrypto

/// A source found on this machine: a tarball (with its checksum) or a tree.
public struct ResolvedSource: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case tarball, tree }
    public var kind: Kind
    public var path: String
    /// The tarball's sha256 (its identity); for a tree, its content identity once
    /// `SourceIdentity.identify` has run (before that, a hash of its path).
    public var sha256: String
    public var bytes: UInt64

    public init(kind: Kind, path: String, sha256: String, bytes: UInt64) {
        self.kind = kind
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
    }
}

public enum SourceResolver {
    /// Finds the first candidate that exists and checks its sha256 when one is pinned.
    /// `what` names the source in messages ("kernel", "busybox").
    public static func resolve(_ spec: SourceSpec, what: String, workspace: Workspace, file: String) throws(KmatrixError) -> ResolvedSource {
        let candidates = spec.paths.map(workspace.expand)
        for path in candidates {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                guard FileManager.default.fileExists(atPath: "\(path)/Makefile") else {
                    throw .badInput("\(file): sources.\(what): \(path) is a folder without a Makefile, not a source tree")
                }
                try SourceIdentity.checkNotConfiguredInPlace(path, field: "\(file): sources.\(what)")
                return ResolvedSource(kind: .tree, path: path, sha256: SHA256.hex("tree:" + path), bytes: 0)
            }
            let digest: String
            do { digest = try SHA256.hex(fileAt: path) } catch {
                throw .host("cannot read the \(what) source \(path)", underlying: error)
            }
            if let pinned = spec.sha256?.lowercased(), pinned != digest {
                throw .badInput("\(file): sources.\(what).sha256: \(path) has sha256 \(digest), the matrix pins \(pinned)")
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64) ?? 0
            return ResolvedSource(kind: .tarball, path: path, sha256: digest, bytes: size)
        }
        var hint = ""
        if let package = spec.debianPackage { hint = " (apt-get install \(package))" }
        if let package = spec.debianSourcePackage, let first = candidates.first {
            // An installed kmatrix has no Scripts/bootstrap: say the command itself. apt-get
            // source needs no root, only a deb-src line in apt's sources.
            let folder = (first as NSString).deletingLastPathComponent
            hint = "; fetch it with: mkdir -p \(folder) && cd \(folder) && apt-get source --download-only \(package)"
                + " (apt needs a deb-src entry; Scripts/bootstrap in kmatrix's repository adds one and fetches it)"
        }
        throw .host("the \(what) source is missing: none of \(candidates.joined(separator: ", ")) exists\(hint)")
    }
}
