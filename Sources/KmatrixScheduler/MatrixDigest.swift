import Foundation
import KmatrixCore
import KmatrixCrypto

/// What makes two runs' results parts of one matrix: the matrix file's bytes and the bytes
/// of every target and toolchain descriptor its cells use, each labelled by its name (never
/// its path, so a checkout in another folder or on another machine gives the same digest).
/// `merge` refuses results whose digests differ.
public enum MatrixDigest {
    public static func of(_ project: Project) -> String {
        var parts: [(label: String, path: String)] = [("matrix", absolutePath(project.matrix.file, relativeTo: project.root))]
        for name in Set(project.cells.map(\.target.name)).sorted() {
            if let target = project.targets[name] { parts.append(("target \(name)", absolutePath(target.file, relativeTo: project.root))) }
        }
        for name in Set(project.cells.map(\.toolchain.name)).sorted() {
            if let toolchain = project.toolchains[name] {
                parts.append(("toolchain \(name)", absolutePath(toolchain.file, relativeTo: project.root)))
            }
        }
        var hasher = SHA256Hasher()
        for part in parts {
            let bytes = FileManager.default.contents(atPath: part.path) ?? Data()
            // Label and length first, so no two different sets of files hash the same bytes.
            hasher.update("\(part.label)\n\(bytes.count)\n")
            hasher.update(bytes)
        }
        return hasher.finalizeHex()
    }
}
