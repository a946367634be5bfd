import CArchive
import Foundation

/// Writes a gzip-compressed POSIX (pax) tar archive with libarchive: directories, regular
/// files streamed from disk, symlinks. Owners are not recorded (uid/gid 0): what reads it
/// back is not the user that wrote it. One final class owns the handle and frees it.
public final class TarWriter {
    private let handle: OpaquePointer
    public let path: String
    private var closed = false

    public init(path: String) throws(ArchiveError) {
        self.path = path
        guard let handle = archive_write_new() else {
            throw ArchiveError("create", path: path, message: "libarchive could not allocate a handle")
        }
        self.handle = handle
        var code = archive_write_set_format_pax_restricted(handle)
        if code == ARCHIVE_OK { code = archive_write_add_filter_gzip(handle) }
        if code == ARCHIVE_OK { code = archive_write_open_filename(handle, path) }
        guard code == ARCHIVE_OK else {
            let message = ArchiveError.message(handle, code: code)
            closed = true
            throw ArchiveError("create", path: path, message: message)
        }
    }

    deinit {
        if !closed { archive_write_close(handle) }
        archive_write_free(handle)
    }

    /// Adds the file, directory or symlink at `source` as `name`, with its mode and mtime.
    public func append(_ name: String, from source: String) throws(ArchiveError) {
        var info = stat()
        guard lstat(source, &info) == 0 else {
            throw ArchiveError("add", path: path, entry: name, message: "cannot stat \(source): \(String(cString: strerror(errno)))")
        }
        guard let entry = archive_entry_new() else { throw ArchiveError("add", path: path, entry: name, message: "out of memory") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_mode(entry, info.st_mode)
        archive_entry_set_mtime(entry, info.st_mtim.tv_sec, info.st_mtim.tv_nsec)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        let type = info.st_mode & S_IFMT
        if type == S_IFREG { archive_entry_set_size(entry, la_int64_t(info.st_size)) } else { archive_entry_set_size(entry, 0) }
        if type == S_IFLNK {
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: source)) ?? ""
            archive_entry_set_symlink(entry, target)
        }
        let code = archive_write_header(handle, entry)
        guard code >= ARCHIVE_WARN else { throw ArchiveError("add", path: path, entry: name, message: ArchiveError.message(handle, code: code)) }
        guard type == S_IFREG, info.st_size > 0 else { return }
        guard let file = FileHandle(forReadingAtPath: source) else {
            throw ArchiveError("add", path: path, entry: name, message: "cannot open \(source)")
        }
        defer { try? file.close() }
        while true {
            let chunk = file.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            let written = chunk.withUnsafeBytes { archive_write_data(handle, $0.baseAddress, $0.count) }
            guard written == chunk.count else {
                throw ArchiveError("add", path: path, entry: name, message: ArchiveError.message(handle, code: Int32(truncatingIfNeeded: written)))
            }
        }
    }

    /// Adds `bytes` as a regular file `name` (mode 0644).
    public func append(_ name: String, contents bytes: Data) throws(ArchiveError) {
        guard let entry = archive_entry_new() else { throw ArchiveError("add", path: path, entry: name, message: "out of memory") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_mode(entry, S_IFREG | 0o644)
        archive_entry_set_size(entry, la_int64_t(bytes.count))
        archive_entry_set_mtime(entry, time(nil), 0)
        var code = archive_write_header(handle, entry)
        guard code >= ARCHIVE_WARN else { throw ArchiveError("add", path: path, entry: name, message: ArchiveError.message(handle, code: code)) }
        let written = bytes.withUnsafeBytes { archive_write_data(handle, $0.baseAddress, $0.count) }
        code = written == bytes.count ? ARCHIVE_OK : ARCHIVE_FATAL
        guard code == ARCHIVE_OK else { throw ArchiveError("add", path: path, entry: name, message: ArchiveError.message(handle, code: code)) }
    }

    /// Flushes and closes the archive (a full disk shows up here).
    public func finish() throws(ArchiveError) {
        closed = true
        let code = archive_write_close(handle)
        guard code == ARCHIVE_OK else { throw ArchiveError("write", path: path, message: ArchiveError.message(handle, code: code)) }
    }
}
