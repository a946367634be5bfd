import Foundation
import KmatrixArchive
import KmatrixCore

/// Unpacks a source tarball once into the workspace (`src/<name>-<sha16>`), shared by
/// every build and every kmatrix process: an flock serialises concurrent callers, the
/// unpack lands in a temporary folder, gets a marker, and is renamed into place.
/// (KmatrixKernel's `KernelSource` does the same for the kernel; both could move to Core.)
public enum SourceTree {
    public static let markerName = ".kmatrix-unpacked"

    public static func prepare(_ source: ResolvedSource, name: String, workspace: Workspace,
                               lockTimeout: Duration = .seconds(600)) async throws(KmatrixError) -> String {
        if source.kind == .tree { return source.path }
        let tree = workspace.unpacked(name, sha256: source.sha256)
        if isComplete(tree) { return tree }
        guard FileManager.default.fileExists(atPath: source.path) else {
            throw .host("the \(name) source is missing: \(source.path) does not exist")
        }
        let parent = (tree as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(parent)", underlying: error)
        }
        let lock = try await LockFile.acquire("\(tree).lock", timeout: lockTimeout)
        defer { lock.release() }
        if isComplete(tree) { return tree }

        let fm = FileManager.default
        let partial = "\(parent)/.\((tree as NSString).lastPathComponent).partial-\(getpid())"
        try? fm.removeItem(atPath: partial)
        if fm.fileExists(atPath: tree) { try? fm.removeItem(atPath: tree) }
        let summary: ExtractionSummary
        do {
            summary = try TarballExtractor.extract(source.path, into: partial, stripComponents: 1)
        } catch {
            try? fm.removeItem(atPath: partial)
            throw .host("cannot unpack the \(name) source \(source.path)", underlying: error)
        }
        guard fm.fileExists(atPath: "\(partial)/Makefile") else {
            try? fm.removeItem(atPath: partial)
            throw .badInput("\(source.path) does not unpack to a source tree with a Makefile")
        }
        let marker = "sha256 \(source.sha256)\nentries \(summary.entries)\nbytes \(summary.bytes)\nfrom \(source.path)\n"
        do { try marker.write(toFile: "\(partial)/\(markerName)", atomically: true, encoding: .utf8) } catch {
            try? fm.removeItem(atPath: partial)
            throw .host("cannot write the unpack marker in \(partial)", underlying: error)
        }
        guard rename(partial, tree) == 0 else {
            let reason = String(cString: strerror(errno))
            try? fm.removeItem(atPath: partial)
            throw .host("cannot move the unpacked tree to \(tree): \(reason)")
        }
        return tree
    }

    public static func isComplete(_ tree: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(tree)/\(markerName)")
    }
}

/// An exclusive `flock`, polled so waiting never blocks a cooperative thread; released
/// by `release()` or by the process ending.
struct LockFile {
    let fd: Int32

    static func acquire(_ path: String, timeout: Duration) async throws(KmatrixError) -> LockFile {
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
                throw .host("another process has held \(path) for longer than \(timeout)")
            }
            do { try await Task.sleep(for: .milliseconds(250)) } catch {
                close(fd)
                throw KmatrixError(.interrupted, "interrupted while waiting for \(path)")
            }
        }
        return LockFile(fd: fd)
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
