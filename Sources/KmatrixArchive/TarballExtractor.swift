import CArchive
import Foundation

public struct ExtractionSummary: Sendable, Codable, Equatable {
    public var entries: Int
    public var bytes: UInt64
    public init(entries: Int, bytes: UInt64) {
        self.entries = entries
        self.bytes = bytes
    }
}

/// Owns a libarchive read handle; freed with the object.
final class ArchiveReadHandle {
    let handle: OpaquePointer
    init?() {
        guard let handle = archive_read_new() else { return nil }
        self.handle = handle
    }
    deinit { archive_read_free(handle) }
}

/// Owns a libarchive disk-writer handle; freed with the object.
final class ArchiveDiskHandle {
    let handle: OpaquePointer
    init?() {
        guard let handle = archive_write_disk_new() else { return nil }
        self.handle = handle
    }
    deinit { archive_write_free(handle) }
}

/// Unpacks source tarballs (any compression libarchive reads: xz, gzip, bzip2, zstd...)
/// in process, with modes, symlinks, hard links and mtimes preserved.
public enum TarballExtractor {
    /// Extracts `archive` into `directory` (created if needed), dropping the first `stripComponents` path components.
    /// Refuses absolute paths and `..` escapes. Errors carry libarchive's own message (archive_error_string).
    public static func extract(_ archive: String, into directory: String, stripComponents: Int = 0) throws(ArchiveError) -> ExtractionSummary {
        guard stripComponents >= 0 else {
            throw ArchiveError("extract", path: archive, message: "stripComponents must be 0 or more, not \(stripComponents)")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ArchiveError("extract", path: archive, message: "cannot create \(directory): \(error.localizedDescription)")
        }
        guard let reader = ArchiveReadHandle(), let writer = ArchiveDiskHandle() else {
            throw ArchiveError("extract", path: archive, message: "libarchive could not allocate a handle")
        }
        let r = reader.handle, w = writer.handle
        archive_read_support_filter_all(r)
        archive_read_support_format_tar(r)
        archive_read_support_format_gnutar(r)
        // Owners are not restored (a non-root user cannot, and the tree is ours). Entry paths
        // are checked below and then made absolute under `directory`, so libarchive's
        // NOABSOLUTEPATHS cannot be used; NODOTDOT and SECURE_SYMLINKS still guard the writes.
        let flags: Int32 = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS
            | ARCHIVE_EXTRACT_SECURE_NODOTDOT
        archive_write_disk_set_options(w, flags)
        archive_write_disk_set_standard_lookup(w)

        var code = archive_read_open_filename(r, archive, 1 << 20)
        guard code == ARCHIVE_OK else {
            throw ArchiveError("open", path: archive, message: ArchiveError.message(r, code: code))
        }
        // Resolved: SECURE_SYMLINKS refuses any symlink on the destination path, also one
        // above `directory` (a cache folder reached through a link).
        let root = resolved((directory as NSString).standardizingPath)
        var summary = ExtractionSummary(entries: 0, bytes: 0)
        var entry: OpaquePointer?
        while true {
            code = archive_read_next_header(r, &entry)
            if code == ARCHIVE_EOF { break }
            guard code >= ARCHIVE_WARN, let entry else {
                throw ArchiveError("read", path: archive, message: ArchiveError.message(r, code: code))
            }
            guard let rawName = archive_entry_pathname(entry) else {
                throw ArchiveError("read", path: archive, message: "an entry has no path")
            }
            let name = String(cString: rawName)
            guard let relative = try relativePath(name, strip: stripComponents, archive: archive) else { continue }
            let destination = relative.isEmpty ? root : root + "/" + relative
            archive_entry_set_pathname(entry, destination)
            // Hard links name another entry of the same archive: same stripping, same root.
            if let rawLink = archive_entry_hardlink(entry) {
                let link = String(cString: rawLink)
                guard let linkRelative = try relativePath(link, strip: stripComponents, archive: archive) else {
                    throw ArchiveError("extract", path: archive, entry: name, message: "hard link to \(link), which stripping removes")
                }
                archive_entry_set_hardlink(entry, root + "/" + linkRelative)
            }
            code = archive_write_header(w, entry)
            guard code >= ARCHIVE_WARN else {
                throw ArchiveError("extract", path: archive, entry: name, message: ArchiveError.message(w, code: code))
            }
            if archive_entry_size_is_set(entry) != 0, archive_entry_size(entry) > 0 {
                summary.bytes += try copyData(from: r, to: w, archive: archive, entry: name)
            }
            code = archive_write_finish_entry(w)
            guard code >= ARCHIVE_WARN else {
                throw ArchiveError("extract", path: archive, entry: name, message: ArchiveError.message(w, code: code))
            }
            summary.entries += 1
        }
        // Closing applies the deferred directory modes and times.
        code = archive_write_close(w)
        guard code >= ARCHIVE_WARN else {
            throw ArchiveError("extract", path: archive, message: ArchiveError.message(w, code: code))
        }
        return summary
    }

    /// The entry's path below the destination after stripping, nil when stripping removes
    /// it entirely (the top folder itself); throws on absolute paths and `..`.
    static func relativePath(_ name: String, strip: Int, archive: String) throws(ArchiveError) -> String? {
        if name.hasPrefix("/") {
            throw ArchiveError("extract", path: archive, entry: name, message: "refusing an absolute path")
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if components.contains("..") {
            throw ArchiveError("extract", path: archive, entry: name, message: "refusing a path with `..`")
        }
        guard components.count > strip else { return strip == 0 ? "" : nil }
        return components.dropFirst(strip).joined(separator: "/")
    }

    static func copyData(from r: OpaquePointer, to w: OpaquePointer, archive: String, entry: String) throws(ArchiveError) -> UInt64 {
        var total: UInt64 = 0
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let code = archive_read_data_block(r, &buffer, &size, &offset)
            if code == ARCHIVE_EOF { return total }
            guard code >= ARCHIVE_WARN else {
                throw ArchiveError("read", path: archive, entry: entry, message: ArchiveError.message(r, code: code))
            }
            let written = archive_write_data_block(w, buffer, size, offset)
            guard written >= ARCHIVE_WARN else {
                throw ArchiveError("extract", path: archive, entry: entry, message: ArchiveError.message(w, code: Int32(written)))
            }
            total += UInt64(size)
        }
    }
}

/// `path` with every symlink resolved (`realpath`), or unchanged when it does not exist.
func resolved(_ path: String) -> String {
    guard let real = realpath(path, nil) else { return path }
    defer { free(real) }
    return String(cString: real)
}
