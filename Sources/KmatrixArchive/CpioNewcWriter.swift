import CArchive
import Foundation
import KmatrixZlib

#if canImport(Glibc)
import Glibc
#endif

/// One member of a cpio archive, with every field given explicitly (nothing is read from
/// the disk), so the caller decides owners, times and inode numbers.
public struct CpioMember: Sendable, Equatable {
    public enum FileType: Sendable, Equatable {
        case regular, directory, symlink(target: String), characterDevice, blockDevice, fifo, socket
    }

    /// Path inside the archive, without a leading `/`.
    public var path: String
    public var type: FileType
    /// Permission bits (07777).
    public var permissions: UInt32
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var mtime: Int64 = 0
    public var inode: UInt64
    public var links: UInt32 = 1
    /// Bytes of data that follow (regular files only).
    public var size: UInt64 = 0
    public var deviceMajor: UInt32 = 0
    public var deviceMinor: UInt32 = 0

    // POSIX file type bits (the same on every Linux architecture).
    static let typeRegular: UInt32 = 0o100000, typeDirectory: UInt32 = 0o040000, typeSymlink: UInt32 = 0o120000
    static let typeCharacter: UInt32 = 0o020000, typeBlock: UInt32 = 0o060000, typeFIFO: UInt32 = 0o010000, typeSocket: UInt32 = 0o140000

    public init(path: String, type: FileType, permissions: UInt32, inode: UInt64) {
        self.path = path
        self.type = type
        self.permissions = permissions
        self.inode = inode
    }
}

/// Where compressed (or raw) archive bytes go: a file, through zlib when asked.
final class CpioSink {
    let fd: Int32
    let compressor: (any GzipStreaming)?
    var failure: String?
    var written: UInt64 = 0

    init(fd: Int32, compressor: (any GzipStreaming)?) {
        self.fd = fd
        self.compressor = compressor
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if let compressor {
            do {
                let out = try compressor.compress(bytes)
                return out.withUnsafeBytes { writeAll($0) }
            } catch {
                failure = error.description
                return false
            }
        }
        return writeAll(bytes)
    }

    func finish() -> Bool {
        guard let compressor else { return true }
        do {
            let out = try compressor.finish()
            return out.withUnsafeBytes { writeAll($0) }
        } catch {
            failure = error.description
            return false
        }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno))
                return false
            }
            offset += n
        }
        written += UInt64(bytes.count)
        return true
    }
}

/// Writes a cpio `newc` archive with libarchive (`archive_write_set_format_cpio_newc`,
/// called directly: the generic format-by-name lookup has mapped "newc" wrongly in other
/// tools), optionally gzip-compressed (libdeflate, or zlib) with a fixed header, so that the same
/// members in the same order always give the same bytes.
public final class CpioNewcWriter {
    /// `gzip`: libdeflate, the archive kept whole and deflated in one call
    /// (`LibdeflateGzipCompressor`); `gzipSingleStream`: zlib, streaming
    /// (`GzipCompressor`; several times slower, and bigger at the same level).
    public enum Compression: Sendable {
        case none, gzip(level: Int32), gzipSingleStream(level: Int32)

        /// What decides the compressed bytes besides the archive: for cache keys.
        public var identity: String {
            switch self {
            case .none: "uncompressed"
            case .gzip(let level): LibdeflateGzipCompressor.identity(level: level)
            case .gzipSingleStream(let level): GzipCompressor.identity(level: level)
            }
        }
    }

    private let handle: OpaquePointer
    private let sink: CpioSink
    private let path: String
    private var closed = false

    public init(path: String, compression: Compression = .gzip(level: 9)) throws(ArchiveError) {
        self.path = path
        // A new file only: never follow or overwrite whatever (or whoever's link) has the name.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ArchiveError("create", path: path, message: String(cString: strerror(errno))) }
        var compressor: (any GzipStreaming)?
        do {
            switch compression {
            case .none: break
            case .gzip(let level): compressor = try LibdeflateGzipCompressor(level: level)
            case .gzipSingleStream(let level): compressor = try GzipCompressor(level: level)
            }
        } catch {
            close(fd)
            throw ArchiveError("create", path: path, message: error.description)
        }
        guard let handle = archive_write_new() else {
            close(fd)
            throw ArchiveError("create", path: path, message: "libarchive could not allocate a handle")
        }
        self.handle = handle
        self.sink = CpioSink(fd: fd, compressor: compressor)
        var code = archive_write_set_format_cpio_newc(handle)
        if code == ARCHIVE_OK { code = archive_write_add_filter_none(handle) }
        // The kernel's gen_init_cpio pads the trailer to 512 bytes; do the same.
        if code == ARCHIVE_OK { code = archive_write_set_bytes_per_block(handle, 512) }
        if code == ARCHIVE_OK { code = archive_write_set_bytes_in_last_block(handle, 512) }
        if code == ARCHIVE_OK {
            code = archive_write_open2(handle, Unmanaged.passUnretained(sink).toOpaque(), nil, { _, context, buffer, length in
                guard let context, let buffer else { return -1 }
                let sink = Unmanaged<CpioSink>.fromOpaque(context).takeUnretainedValue()
                return sink.write(UnsafeRawBufferPointer(start: buffer, count: length)) ? length : -1
            }, nil, nil)
        }
        guard code == ARCHIVE_OK else {
            let message = ArchiveError.message(handle, code: code)
            archive_write_free(handle)
            close(fd)
            throw ArchiveError("create", path: path, message: message)
        }
    }

    deinit {
        if !closed { archive_write_close(handle) }
        archive_write_free(handle)
        close(sink.fd)
    }

    /// Adds a member; for a regular file, `data` must yield exactly `member.size` bytes.
    public func append(_ member: CpioMember, data: (_ write: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void) throws(ArchiveError) -> Void = { _ throws(ArchiveError) in }) throws(ArchiveError) {
        guard let entry = archive_entry_new() else {
            throw ArchiveError("write", path: path, entry: member.path, message: "libarchive could not allocate an entry")
        }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, member.path)
        let type: UInt32
        switch member.type {
        case .regular: type = CpioMember.typeRegular
        case .directory: type = CpioMember.typeDirectory
        case .symlink(let target):
            type = CpioMember.typeSymlink
            archive_entry_set_symlink(entry, target)
        case .characterDevice: type = CpioMember.typeCharacter
        case .blockDevice: type = CpioMember.typeBlock
        case .fifo: type = CpioMember.typeFIFO
        case .socket: type = CpioMember.typeSocket
        }
        archive_entry_set_mode(entry, mode_t(type | (member.permissions & 0o7777)))
        archive_entry_set_uid(entry, la_int64_t(member.uid))
        archive_entry_set_gid(entry, la_int64_t(member.gid))
        archive_entry_set_mtime(entry, time_t(member.mtime), 0)
        archive_entry_set_ino64(entry, la_int64_t(member.inode))
        archive_entry_set_nlink(entry, member.links)
        archive_entry_set_dev(entry, 0)
        if member.type == .characterDevice || member.type == .blockDevice {
            archive_entry_set_rdevmajor(entry, dev_t(member.deviceMajor))
            archive_entry_set_rdevminor(entry, dev_t(member.deviceMinor))
        }
        archive_entry_set_size(entry, member.type == .regular ? la_int64_t(member.size) : 0)
        let code = archive_write_header(handle, entry)
        guard code == ARCHIVE_OK else { throw failure("write", member.path, code) }
        guard member.type == .regular, member.size > 0 else { return }
        var remaining = member.size
        try data { (bytes) throws(ArchiveError) in
            guard UInt64(bytes.count) <= remaining else {
                throw ArchiveError("write", path: path, entry: member.path, message: "more data than the \(member.size) bytes announced")
            }
            let n = archive_write_data(handle, bytes.baseAddress, bytes.count)
            guard n == bytes.count else { throw failure("write", member.path, Int32(truncatingIfNeeded: n)) }
            remaining -= UInt64(bytes.count)
        }
        guard remaining == 0 else {
            throw ArchiveError("write", path: path, entry: member.path, message: "\(remaining) of \(member.size) bytes missing (did the file change?)")
        }
    }

    /// Writes the trailer, flushes the compressor; returns the bytes written to the file.
    @discardableResult
    public func finish() throws(ArchiveError) -> UInt64 {
        guard !closed else { return sink.written }
        closed = true
        let code = archive_write_close(handle)
        guard code == ARCHIVE_OK else { throw failure("close", nil, code) }
        guard sink.finish() else { throw ArchiveError("close", path: path, message: sink.failure ?? "write failed") }
        guard fsync(sink.fd) == 0 || errno == EINVAL else {
            throw ArchiveError("close", path: path, message: String(cString: strerror(errno)))
        }
        return sink.written
    }

    private func failure(_ operation: String, _ entry: String?, _ code: Int32) -> ArchiveError {
        var message = ArchiveError.message(handle, code: code)
        if let extra = sink.failure { message += " (\(extra))" }
        return ArchiveError(operation, path: path, entry: entry, message: message)
    }
}
