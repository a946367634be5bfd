import Foundation
import KmatrixCore
import KmatrixCrypto

/// A step's output stored under a hash of everything that defines it, published with one
/// `rename` so an interrupted run never leaves a half entry that looks finished.
public struct ArtifactCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// The key of a step: sha256 of the canonical JSON of its inputs (sorted keys).
    public static func key<T: Encodable>(_ inputs: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(inputs)) ?? Data()
        return SHA256.hex(data)
    }

    public func entry(kind: String, key: String) -> String { "\(root)/\(kind)/\(key)" }

    /// The entry's folder when it was published, else nil.
    public func lookup(kind: String, key: String) -> String? {
        let path = entry(kind: kind, key: key)
        return FileManager.default.fileExists(atPath: "\(path)/.kmatrix-entry.json") ? path : nil
    }

    /// Runs `fill` on a staging folder and publishes it as the entry. `fill` returning
    /// false (a failed build) discards the staging folder: failures are not cached.
    public func publish<Inputs: Encodable>(kind: String, key: String, inputs: Inputs,
                                           fill: (String) async -> Bool) async throws(KmatrixError) -> String? {
        let final = entry(kind: kind, key: key)
        let staging = "\(root)/\(kind)/.staging-\(key.prefix(16))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        } catch {
            throw .host("cannot create \(staging) (is the disk full?)", underlying: error)
        }
        guard await fill(staging) else {
            try? fm.removeItem(atPath: staging)
            return nil
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let manifest = CacheManifest(kind: kind, key: key, created: Date(), inputs: (try? encoder.encode(inputs)).map { String(decoding: $0, as: UTF8.self) } ?? "")
        do {
            try encoder.encode(manifest).write(to: URL(fileURLWithPath: "\(staging)/.kmatrix-entry.json"))
        } catch {
            try? fm.removeItem(atPath: staging)
            throw .host("cannot write the cache manifest in \(staging) (is the disk full?)", underlying: error)
        }
        if fm.fileExists(atPath: final) {
            // A stale, unfinished entry (no manifest) or an equal one from an earlier run.
            if lookup(kind: kind, key: key) != nil {
                try? fm.removeItem(atPath: staging)
                return final
            }
            try? fm.removeItem(atPath: final)
        }
        guard rename(staging, final) == 0 else {
            let reason = String(cString: strerror(errno))
            try? fm.removeItem(atPath: staging)
            throw .host("cannot publish the cache entry \(final): \(reason)")
        }
        return final
    }

    /// Entries by kind, for `kmatrix clean` and reports.
    public func entries() -> [(kind: String, key: String, path: String, bytes: UInt64)] {
        let fm = FileManager.default
        var out: [(String, String, String, UInt64)] = []
        for kind in ((try? fm.contentsOfDirectory(atPath: root)) ?? []).sorted() {
            for key in ((try? fm.contentsOfDirectory(atPath: "\(root)/\(kind)")) ?? []).sorted() where !key.hasPrefix(".") {
                let path = "\(root)/\(kind)/\(key)"
                out.append((kind, key, path, directorySize(path)))
            }
        }
        return out
    }

    /// Removes staging folders an interrupted run left behind.
    public func sweepStaging() {
        let fm = FileManager.default
        for kind in (try? fm.contentsOfDirectory(atPath: root)) ?? [] {
            for name in (try? fm.contentsOfDirectory(atPath: "\(root)/\(kind)")) ?? [] where name.hasPrefix(".staging-") {
                try? fm.removeItem(atPath: "\(root)/\(kind)/\(name)")
            }
        }
    }
}

struct CacheManifest: Codable {
    var kind: String
    var key: String
    var created: Date
    var inputs: String
}

func directorySize(_ path: String) -> UInt64 {
    let fm = FileManager.default
    guard let walker = fm.enumerator(atPath: path) else { return 0 }
    var total: UInt64 = 0
    while let name = walker.nextObject() as? String {
        if let size = (try? fm.attributesOfItem(atPath: "\(path)/\(name)"))?[.size] as? UInt64 { total += size }
    }
    return total
}

/// Keeps a second kmatrix run off the same cache: an exclusive `flock` held for the whole
/// run. The kernel drops it when the process dies, so a crash never leaves it stuck.
public final class RunLock: Sendable {
    private let fd: Int32
    public let path: String

    public init(directory: String) throws(KmatrixError) {
        path = "\(directory)/kmatrix.lock"
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(directory)", underlying: error)
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .host("cannot open the lock file \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw .host("another kmatrix run (pid \(holder)) is using the cache \(directory); wait for it to finish or pass another --cache")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
