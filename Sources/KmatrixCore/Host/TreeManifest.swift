import Foundation
import KmatrixCrypto

#if canImport(Glibc)
import Glibc
#endif

/// What a published folder holds: every file's relative path, size and sha256 (a symlink's
/// target instead). Checked, not trusted: sizes on every use (cheap), hashes on demand.
public struct TreeManifest: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var size: UInt64
        public var sha256: String?
        public var link: String?
    }

    public var files: [File]

    /// Records every file and symlink under `root` except `excluding`, hashing each file
    /// and flushing it and every folder to disk, so the tree survives a power loss once
    /// it is renamed into place.
    public static func record(_ root: String, excluding: Set<String> = []) throws(KmatrixError) -> TreeManifest {
        var files: [File] = []
        var folders = [root]
        for relative in try walk(root) where !excluding.contains(relative) {
            let path = "\(root)/\(relative)"
            var info = stat()
            guard lstat(path, &info) == 0 else { throw .host("cannot stat \(path): \(String(cString: strerror(errno)))") }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: folders.append(path)
            case S_IFLNK:
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? ""
                files.append(File(path: relative, size: 0, sha256: nil, link: target))
            case S_IFREG:
                let sha: String
                do { sha = try SHA256.hex(fileAt: path) } catch { throw .host("cannot read \(path)", underlying: error) }
                try SafeFile.sync(path)
                files.append(File(path: relative, size: UInt64(info.st_size), sha256: sha, link: nil))
            default:
                throw .host("\(path) is neither a file, a folder nor a symlink; a cache entry cannot hold it")
            }
        }
        for folder in folders { try SafeFile.sync(folder) }
        return TreeManifest(files: files)
    }

    /// The first problem found under `root`, or nil: a missing file, a size (and with
    /// `hashes`, a sha256) that differs from the record.
    public func problem(in root: String, hashes: Bool) -> String? {
        for file in files {
            let path = "\(root)/\(file.path)"
            var info = stat()
            guard lstat(path, &info) == 0 else { return "\(file.path) is missing" }
            if let link = file.link {
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path)
                if target != link { return "\(file.path) no longer links to \(link)" }
                continue
            }
            guard info.st_mode & S_IFMT == S_IFREG else { return "\(file.path) is no longer a file" }
            guard UInt64(info.st_size) == file.size else { return "\(file.path) has \(info.st_size) bytes, not \(file.size)" }
            if hashes, let sha = file.sha256, (try? SHA256.hex(fileAt: path)) != sha {
                return "\(file.path) does not match its sha256"
            }
        }
        return nil
    }

    public var bytes: UInt64 { files.reduce(0) { $0 + $1.size } }

    /// Relative paths under `root`, sorted, folders included; symlinks are not followed.
    static func walk(_ root: String) throws(KmatrixError) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw .host("cannot list \(root)") }
        var out: [String] = []
        while let name = walker.nextObject() as? String { out.append(name) }
        return out.sorted()
    }
}

/// Published folders are read-only (files 0444, folders 0555) so nothing changes them in
/// place; whoever removes one makes it writable first.
public enum TreePermissions {
    public static func makeReadOnly(_ root: String) throws(KmatrixError) {
        try apply(root, file: 0o444, folder: 0o555)
    }

    /// Never throws: it runs before a removal that reports its own error.
    public static func makeWritable(_ root: String) {
        try? apply(root, file: 0o644, folder: 0o755)
    }

    /// Makes `path` writable and removes it.
    public static func remove(_ path: String) throws(KmatrixError) {
        makeWritable(path)
        do { try FileManager.default.removeItem(atPath: path) } catch {
            throw .host("cannot remove \(path)", underlying: error)
        }
    }

    static func apply(_ root: String, file: mode_t, folder: mode_t) throws(KmatrixError) {
        // Folders are opened up first (to reach their contents) and closed last.
        if folder & 0o200 != 0 { chmod(root, folder) }
        for relative in (try? TreeManifest.walk(root)) ?? [] {
            let path = "\(root)/\(relative)"
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: if folder & 0o200 != 0 { chmod(path, folder) }
            case S_IFREG:
                let mode = info.st_mode & 0o111 != 0 ? file | 0o111 : file
                guard chmod(path, mode) == 0 else { throw .host("cannot chmod \(path): \(String(cString: strerror(errno)))") }
            default: continue
            }
        }
        if folder & 0o200 == 0 {
            // Deepest first, so a folder is closed after everything in it.
            for relative in ((try? TreeManifest.walk(root)) ?? []).reversed() {
                var info = stat()
                if lstat("\(root)/\(relative)", &info) == 0, info.st_mode & S_IFMT == S_IFDIR { chmod("\(root)/\(relative)", folder) }
            }
            chmod(root, folder)
        }
    }
}
