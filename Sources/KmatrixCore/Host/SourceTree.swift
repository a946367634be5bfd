import Foundation
import KmatrixArchive

#if canImport(Glibc)
import Glibc
#endif

/// A source tree every cell builds from, out of tree and read-only: the kernel's, and
/// busybox's (one unpack per tarball checksum, shared by every cell and process).
public enum SourceTree {
    /// Written last into a finished unpack: a tree without it was interrupted.
    public static let markerName = ".kmatrix-unpacked"

    /// The tree for `source`: a tree is used in place; a tarball is unpacked once into
    /// `workspace.unpacked("linux", sha256:)` and shared by every cell and every process.
    ///
    /// Concurrent callers (other cells, other kmatrix processes, tests) are serialised by
    /// an flock on a lock file beside the tree; the unpack goes into a temporary folder in
    /// the same parent, gets its marker, and is renamed into place, so no reader ever sees
    /// a half-unpacked tree under the final name.
    public static func prepare(_ source: ResolvedSource, workspace: Workspace, name: String = "linux",
                               stripComponents: Int = 1, lockTimeout: Duration = .seconds(1800)) async throws(KmatrixError) -> String {
        if source.kind == .tree { return source.path }
        let tree = workspace.unpacked(name, sha256: source.sha256)
        if isComplete(tree) { return tree }

        let parent = (tree as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(parent)", underlying: error)
        }
        let lock = try await FileLock.acquire("\(tree).lock", timeout: lockTimeout)
        defer { lock.release() }
        // Whoever held the lock before us may have finished the job.
        if isComplete(tree) { return tree }

        let base = (tree as NSString).lastPathComponent
        let fm = FileManager.default
        // Leftovers of interrupted unpacks (we hold the lock: nobody is writing them).
        for item in (try? fm.contentsOfDirectory(atPath: parent)) ?? [] where item.hasPrefix(".\(base).partial-") {
            try? fm.removeItem(atPath: "\(parent)/\(item)")
        }
        if fm.fileExists(atPath: tree) {
            // A tree without its marker is not ours to trust.
            do { try fm.removeItem(atPath: tree) } catch { throw .host("cannot remove the incomplete tree \(tree)", underlying: error) }
        }

        let partial = "\(parent)/.\(base).partial-\(getpid())"
        let summary: ExtractionSummary
        switch await extractOffThePool(source.path, into: partial, stripComponents: stripComponents) {
        case .success(let value): summary = value
        case .failure(let error):
            try? fm.removeItem(atPath: partial)
            throw .host("cannot unpack \(source.path)", underlying: error)
        }
        guard fm.fileExists(atPath: "\(partial)/Makefile") else {
            try? fm.removeItem(atPath: partial)
            throw .badInput("\(source.path) does not unpack to a source tree (no Makefile after stripping \(stripComponents) path component(s))")
        }
        let marker = "sha256 \(source.sha256)\nentries \(summary.entries)\nbytes \(summary.bytes)\nfrom \(source.path)\n"
        do {
            try SafeFile.write(Data(marker.utf8), to: "\(partial)/\(markerName)")
        } catch {
            try? fm.removeItem(atPath: partial)
            throw error
        }
        guard rename(partial, tree) == 0 else {
            let reason = String(cString: strerror(errno))
            try? fm.removeItem(atPath: partial)
            throw .host("cannot move the unpacked tree to \(tree): \(reason)")
        }
        return tree
    }

    /// Unpacking the kernel takes tens of seconds of blocking I/O: keep it off the
    /// cooperative thread pool, which has one thread per core.
    static func extractOffThePool(_ archive: String, into directory: String, stripComponents: Int) async -> Result<ExtractionSummary, ArchiveError> {
        await Blocking.run { () -> Result<ExtractionSummary, ArchiveError> in
            Result { () throws(ArchiveError) -> ExtractionSummary in
                try TarballExtractor.extract(archive, into: directory, stripComponents: stripComponents)
            }
        }
    }

    public static func isComplete(_ tree: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(tree)/\(markerName)")
    }
}

/// An exclusive `flock` on a lock file, held until `release()` (or process exit, which
/// is what makes a crashed holder harmless).
public struct FileLock: Sendable {
    let fd: Int32

    /// Polls with `LOCK_NB` so that waiting never blocks a thread of the cooperative pool.
    public static func acquire(_ path: String, timeout: Duration) async throws(KmatrixError) -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .host("cannot open the lock file \(path): \(String(cString: strerror(errno)))") }
        let deadline = ContinuousClock.now + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw .host("cannot lock \(path): \(reason)")
            }
            guard ContinuousClock.now < deadline else {
                close(fd)
                throw .host("another process has held \(path) for longer than \(timeout); is an unpack stuck?")
            }
            do { try await Task.sleep(for: .milliseconds(250)) } catch {
                close(fd)
                throw KmatrixError(.interrupted, "interrupted while waiting for \(path)")
            }
        }
        return FileLock(fd: fd)
    }

    public func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
