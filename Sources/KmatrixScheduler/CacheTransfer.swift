import Foundation
import KmatrixArchive
import KmatrixCore

/// Cache entries moved between machines as one archive (`kmatrix cache export|import`): a
/// gzip'd tar written and read with libarchive, holding an index and each entry's folder
/// with its manifest. Keys hold no host paths, so an entry is a hit wherever it lands; an
/// import checks every file against its manifest (sizes and sha256) before publishing.
public enum CacheTransfer {
    public static let indexName = "kmatrix-cache-archive.json"

    public struct Index: Codable, Sendable {
        public static let currentFormat = "kmatrix-cache-archive/1"
        public var format = Index.currentFormat
        public var entries: [Entry]

        public struct Entry: Codable, Sendable, Hashable {
            public var kind: String
            public var key: String
            public var bytes: UInt64
            public init(kind: String, key: String, bytes: UInt64) { self.kind = kind; self.key = key; self.bytes = bytes }
        }
    }

    /// Writes the entries named by `refs` (each must be published and intact) into `file`.
    public static func export(_ refs: [(kind: String, key: String)], from cache: ArtifactCache, to file: String) async throws(KmatrixError) -> Index {
        var index = Index(entries: [])
        var problems: [String] = []
        var seen = Set<String>()
        for ref in refs where seen.insert("\(ref.kind)/\(ref.key)").inserted {
            let path = cache.entry(kind: ref.kind, key: ref.key)
            guard FileManager.default.fileExists(atPath: path) else {
                problems.append("\(ref.kind)/\(ref.key): not in the cache \(cache.root)")
                continue
            }
            if let problem = await Blocking.run({ CacheEntryCheck.problem(path, hashes: true) }) {
                problems.append("\(ref.kind)/\(ref.key): \(problem) (kmatrix cache verify moves it aside)")
                continue
            }
            index.entries.append(.init(kind: ref.kind, key: ref.key, bytes: CacheEntryManifest.read(entry: path)?.bytes ?? 0))
        }
        guard problems.isEmpty else { throw .badInput("cannot export:\n  " + problems.joined(separator: "\n  ")) }
        let final = index
        try await Blocking.run { () throws(KmatrixError) in
            let temporary = "\(file).partial-\(getpid())"
            do {
                let writer = try TarWriter(path: temporary)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let indexData: Data
                do { indexData = try encoder.encode(final) } catch { throw ArchiveError("write", path: file, message: "\(error)") }
                try writer.append(indexName, contents: indexData)
                for entry in final.entries {
                    let path = cache.entry(kind: entry.kind, key: entry.key)
                    try writer.append("\(entry.kind)/\(entry.key)", from: path)
                    let names = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
                    for name in names { try writer.append("\(entry.kind)/\(entry.key)/\(name)", from: "\(path)/\(name)") }
                }
                try writer.finish()
            } catch {
                try? FileManager.default.removeItem(atPath: temporary)
                throw .host("cannot write \(file): \(error)\(DiskSpace.note(path: (file as NSString).deletingLastPathComponent, error: error))")
            }
            guard rename(temporary, file) == 0 else {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(atPath: temporary)
                throw .host("cannot move the archive into place as \(file): \(reason)")
            }
        }
        return final
    }

    public struct Imported: Sendable {
        public var added: [Index.Entry] = []
        /// Entries the cache already held intact.
        public var present: [Index.Entry] = []
    }

    /// Unpacks `file` beside the cache, checks every entry against its manifest, then
    /// publishes each with one rename. A damaged archive or entry is bad input naming it,
    /// and then nothing is imported. The caller holds the `RunLock`.
    public static func importArchive(_ file: String, into cache: ArtifactCache) async throws(KmatrixError) -> Imported {
        guard FileManager.default.fileExists(atPath: file) else { throw .badInput("\(file): no such file") }
        let staging = "\(cache.root)/.import-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? TreePermissions.remove(staging) }
        do {
            _ = try await Blocking.run { () throws(ArchiveError) -> ExtractionSummary in try TarballExtractor.extract(file, into: staging) }
        } catch {
            throw .badInput("\(file) is not a readable kmatrix cache archive (damaged or truncated?): \(error.message)")
        }
        guard let data = FileManager.default.contents(atPath: "\(staging)/\(indexName)") else {
            throw .badInput("\(file) is not a kmatrix cache archive: it has no \(indexName) (make one with kmatrix cache export)")
        }
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
            throw .badInput("\(file): \(indexName) does not parse: \(error)")
        }
        guard index.format == Index.currentFormat else {
            throw .badInput("\(file): archive format '\(index.format)', this kmatrix reads '\(Index.currentFormat)'")
        }
        var problems: [String] = []
        for entry in index.entries {
            let name = "\(entry.kind)/\(entry.key)"
            guard isPlainName(entry.kind), isPlainName(entry.key) else { problems.append("\(name): not a cache entry name"); continue }
            let path = "\(staging)/\(name)"
            if let problem = await Blocking.run({ CacheEntryCheck.problem(path, hashes: true) }) {
                problems.append("\(name): \(problem)")
            } else if let manifest = CacheEntryManifest.read(entry: path), manifest.kind != entry.kind || manifest.key != entry.key {
                problems.append("\(name): its manifest names \(manifest.kind)/\(manifest.key)")
            }
        }
        guard problems.isEmpty else {
            throw .badInput("\(file): entries that do not match their manifests, nothing imported:\n  " + problems.joined(separator: "\n  "))
        }
        var imported = Imported()
        for entry in index.entries {
            if cache.lookup(kind: entry.kind, key: entry.key) != nil {
                imported.present.append(entry)
                continue
            }
            let path = "\(staging)/\(entry.kind)/\(entry.key)", final = cache.entry(kind: entry.kind, key: entry.key)
            do {
                try FileManager.default.createDirectory(atPath: "\(cache.root)/\(entry.kind)", withIntermediateDirectories: true)
                try SafeFile.sync(path)
                try TreePermissions.makeReadOnly(path)
            } catch {
                throw .host("cannot publish \(final)", underlying: error)
            }
            guard rename(path, final) == 0 else {
                throw .host("cannot publish \(final): \(String(cString: strerror(errno)))\(DiskSpace.note(path: cache.root, errno: errno))")
            }
            try SafeFile.sync("\(cache.root)/\(entry.kind)")
            imported.added.append(entry)
        }
        return imported
    }

    /// A kind or key: one path component, nothing that climbs out.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_") }
    }
}
