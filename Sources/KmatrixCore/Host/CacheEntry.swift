import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The manifest (`.kmatrix-entry.json`) of one published cache entry: what defines it and
/// every file it holds. An entry is served only while its files match this record.
public struct CacheEntryManifest: Codable, Sendable {
    /// Entries written before files were recorded (format 1) are rebuilt, not trusted.
    public static let currentFormat = 2
    public static let fileName = ".kmatrix-entry.json"

    public var format: Int
    public var kind: String
    public var key: String
    public var created: Date
    public var inputs: String
    public var files: [TreeManifest.File]

    public init(kind: String, key: String, inputs: String, tree: TreeManifest) {
        format = Self.currentFormat
        self.kind = kind; self.key = key; created = Date(); self.inputs = inputs; files = tree.files
    }

    public var tree: TreeManifest { TreeManifest(files: files) }
    public var bytes: UInt64 { tree.bytes }

    public static func read(entry: String) -> CacheEntryManifest? {
        guard let data = FileManager.default.contents(atPath: "\(entry)/\(fileName)") else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(CacheEntryManifest.self, from: data)
    }

    public func write(into entry: String) throws(KmatrixError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data: Data
        do { data = try encoder.encode(self) } catch { throw .host("cannot encode the manifest of \(entry)", underlying: error) }
        try SafeFile.write(data, to: "\(entry)/\(Self.fileName)", mode: 0o444)
    }
}

/// Checks on a published entry folder, and what happens to one that fails them.
public enum CacheEntryCheck {
    /// Why the entry at `path` cannot be served (nil when it can): no manifest, one that does
    /// not parse or is of an older format, a missing file, a size (with `hashes`, a sha256) that differs.
    public static func problem(_ path: String, hashes: Bool) -> String? {
        guard FileManager.default.fileExists(atPath: "\(path)/\(CacheEntryManifest.fileName)") else { return "it has no manifest" }
        guard let manifest = CacheEntryManifest.read(entry: path) else { return "its manifest does not parse" }
        guard manifest.format == CacheEntryManifest.currentFormat else { return "its manifest is of format \(manifest.format), not \(CacheEntryManifest.currentFormat)" }
        return manifest.tree.problem(in: path, hashes: hashes)
    }

    /// Moves a bad entry out of the way (`<kind>/.bad-<key>-<time>`, swept later) so that
    /// its key reads as a miss and the step builds it again. Returns the new path.
    @discardableResult
    public static func moveAside(_ path: String) -> String? {
        let parent = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let aside = "\(parent)/.bad-\(name)-\(Int(Date().timeIntervalSince1970))-\(UInt16.random(in: 0...UInt16.max))"
        guard rename(path, aside) == 0 else {
            // Could not move it: remove it, so it is never served either way.
            try? TreePermissions.remove(path)
            return nil
        }
        return aside
    }

    /// Records a use for least-recently-used collection: the manifest's mtime becomes now.
    public static func touch(_ path: String) {
        _ = utimensat(AT_FDCWD, "\(path)/\(CacheEntryManifest.fileName)", nil, 0)
    }

    /// When the entry was last used (its manifest's mtime); distant past when unknown.
    public static func lastUsed(_ path: String) -> Date {
        let attributes = try? FileManager.default.attributesOfItem(atPath: "\(path)/\(CacheEntryManifest.fileName)")
        return attributes?[.modificationDate] as? Date ?? .distantPast
    }
}
