import Foundation
import KmatrixCore
import KmatrixCrypto

/// A step's output stored under a hash of everything that defines it, published with one
/// `rename` so an interrupted run never leaves a half entry that looks finished. Checked,
/// not trusted: an entry is served only while its files match its manifest
/// (`CacheEntryManifest`); a bad one is moved aside and reads as a miss.
public struct ArtifactCache: Sendable {
    public let root: String
    /// Entries up to this size are checked against their sha256 on every lookup (a few
    /// tenths of a second at most); bigger ones by size, and fully by `kmatrix cache verify`.
    public let hashCheckedBytes: UInt64

    public init(root: String, hashCheckedBytes: UInt64 = 64 << 20) {
        self.root = root
        self.hashCheckedBytes = hashCheckedBytes
    }

    /// The key of a step: sha256 of the canonical JSON of its inputs (sorted keys).
    public static func key<T: Encodable>(_ inputs: T) throws(KmatrixError) -> String {
        try SHA256.hex(canonicalJSON(inputs))
    }

    static func canonicalJSON<T: Encodable>(_ inputs: T, pretty: Bool = false) throws(KmatrixError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        do { return try encoder.encode(inputs) } catch {
            throw .host("cannot encode the inputs of a step as JSON for its cache key", underlying: error)
        }
    }

    public func entry(kind: String, key: String) -> String { "\(root)/\(kind)/\(key)" }

    /// The entry's folder when it is published and its files match the manifest (sizes,
    /// and hashes for entries up to `hashCheckedBytes`), else nil; a bad entry is moved
    /// aside so the step rebuilds it. A hit counts as a use.
    public func lookup(kind: String, key: String) -> String? {
        let path = entry(kind: kind, key: key)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        if CacheEntryCheck.problem(path, hashes: directorySize(path) <= hashCheckedBytes) != nil {
            CacheEntryCheck.moveAside(path)
            return nil
        }
        CacheEntryCheck.touch(path)
        return path
    }

    /// Runs `fill` on a staging folder and publishes it as the entry: every file hashed into
    /// the manifest, flushed, made read-only, renamed into place, the rename flushed.
    /// `fill` returning false (a failed build) discards the staging folder and returns nil:
    /// failures are not cached. Throws when the entry cannot be published (a full disk
    /// among others), so a returned path always exists.
    public func publish<Inputs: Encodable>(kind: String, key: String, inputs: Inputs,
                                           fill: (String) async -> Bool) async throws(KmatrixError) -> String? {
        let final = entry(kind: kind, key: key)
        let staging = "\(root)/\(kind)/.staging-\(key.prefix(16))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        } catch {
            throw .host("cannot create \(staging)\(DiskSpace.note(path: staging, error: error))", underlying: error)
        }
        let inputsText = String(decoding: try canonicalJSONOrDiscard(inputs, staging: staging), as: UTF8.self)
        guard await fill(staging) else {
            let full = DiskSpace.fullFilesystem(at: staging)
            try? TreePermissions.remove(staging)
            // A step that failed because the disk filled up is the host's failure, not the step's.
            if let full { throw .host("cannot publish the cache entry \(final): \(full)") }
            return nil
        }
        do {
            let tree = try await Blocking.run { () throws(KmatrixError) -> TreeManifest in
                try TreeManifest.record(staging, excluding: [CacheEntryManifest.fileName])
            }
            try CacheEntryManifest(kind: kind, key: key, inputs: inputsText, tree: tree).write(into: staging)
            try SafeFile.sync(staging)
            try TreePermissions.makeReadOnly(staging)
        } catch {
            try? TreePermissions.remove(staging)
            throw .host("cannot publish the cache entry \(final): \(error.message)\(DiskSpace.note(path: staging, error: error))")
        }
        if fm.fileExists(atPath: final), lookup(kind: kind, key: key) != nil {
            // Published meanwhile (another cell, an earlier run): that one counts.
            try? TreePermissions.remove(staging)
            return final
        }
        guard rename(staging, final) == 0 else {
            let code = errno
            try? TreePermissions.remove(staging)
            // A second publisher lost the race: the winner's entry is as good as ours.
            if code == ENOTEMPTY || code == EEXIST, lookup(kind: kind, key: key) != nil { return final }
            throw .host("cannot publish the cache entry \(final): \(String(cString: strerror(code)))\(DiskSpace.note(path: root, errno: code))")
        }
        try SafeFile.sync("\(root)/\(kind)")
        return final
    }

    private func canonicalJSONOrDiscard<Inputs: Encodable>(_ inputs: Inputs, staging: String) throws(KmatrixError) -> Data {
        do { return try Self.canonicalJSON(inputs, pretty: true) } catch {
            try? TreePermissions.remove(staging)
            throw error
        }
    }

    /// Entries by kind, for `kmatrix clean`, `kmatrix cache` and reports.
    public func entries() -> [(kind: String, key: String, path: String, bytes: UInt64)] {
        let fm = FileManager.default
        var out: [(String, String, String, UInt64)] = []
        for kind in ((try? fm.contentsOfDirectory(atPath: root)) ?? []).sorted() where !kind.hasPrefix(".") {
            for key in ((try? fm.contentsOfDirectory(atPath: "\(root)/\(kind)")) ?? []).sorted() where !key.hasPrefix(".") {
                let path = "\(root)/\(kind)/\(key)"
                out.append((kind, key, path, CacheEntryManifest.read(entry: path)?.bytes ?? directorySize(path)))
            }
        }
        return out
    }

    /// Removes staging folders an interrupted run left behind and entries moved aside as bad.
    public func sweepStaging() {
        let fm = FileManager.default
        for kind in (try? fm.contentsOfDirectory(atPath: root)) ?? [] {
            for name in (try? fm.contentsOfDirectory(atPath: "\(root)/\(kind)")) ?? []
            where name.hasPrefix(".staging-") || name.hasPrefix(".bad-") {
                try? TreePermissions.remove("\(root)/\(kind)/\(name)")
            }
        }
    }
}

/// Keeping the cache honest and bounded: `kmatrix cache verify`, `du` and `gc`.
extension ArtifactCache {
    public struct BadEntry: Sendable, Equatable {
        public var kind: String, key: String, problem: String, movedTo: String?
    }

    /// Checks every entry (of `kind`, when given) against its manifest, hashes included;
    /// bad entries are moved aside. Hashing runs off the cooperative pool.
    public func verify(kind: String? = nil) async -> [BadEntry] {
        var bad: [BadEntry] = []
        for entry in entries() where kind == nil || entry.kind == kind {
            let path = entry.path
            if let problem = await Blocking.run({ CacheEntryCheck.problem(path, hashes: true) }) {
                bad.append(BadEntry(kind: entry.kind, key: entry.key, problem: problem, movedTo: CacheEntryCheck.moveAside(path)))
            }
        }
        return bad
    }

    /// Bytes per kind (as the manifests record them).
    public func diskUsage() -> [(kind: String, entries: Int, bytes: UInt64)] {
        var counts: [String: Int] = [:]
        var bytes: [String: UInt64] = [:]
        for entry in entries() {
            counts[entry.kind, default: 0] += 1
            bytes[entry.kind, default: 0] += entry.bytes
        }
        return counts.keys.sorted().map { kind in (kind: kind, entries: counts[kind] ?? 0, bytes: bytes[kind] ?? 0) }
    }

    public struct Collection: Sendable {
        public var removed: [(kind: String, key: String, bytes: UInt64)] = []
        public var bytesBefore: UInt64 = 0
        public var bytesAfter: UInt64 = 0
    }

    /// Removes least recently used entries until the cache holds at most `maxBytes`, never
    /// one whose key is in `keeping` (what the current run used). The caller holds the
    /// `RunLock`, so no other run is using what goes. Staging and bad leftovers go first.
    public func collectGarbage(maxBytes: UInt64, keeping: Set<String> = []) throws(KmatrixError) -> Collection {
        sweepStaging()
        let all = entries()
        var collection = Collection()
        collection.bytesBefore = all.reduce(0) { $0 + $1.bytes }
        var total = collection.bytesBefore
        typealias Candidate = (entry: (kind: String, key: String, path: String, bytes: UInt64), used: Date)
        let candidates: [Candidate] = all.filter { !keeping.contains($0.key) }.map { entry -> Candidate in
            (entry: entry, used: CacheEntryCheck.lastUsed(entry.path))
        }
        let oldestFirst = candidates.sorted { (a: Candidate, b: Candidate) -> Bool in
            a.used == b.used ? a.entry.path < b.entry.path : a.used < b.used
        }
        for (entry, _) in oldestFirst where total > maxBytes {
            try TreePermissions.remove(entry.path)
            total -= min(total, entry.bytes)
            collection.removed.append((entry.kind, entry.key, entry.bytes))
        }
        collection.bytesAfter = total
        return collection
    }
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
