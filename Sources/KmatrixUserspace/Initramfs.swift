import Foundation
import KmatrixArchive
import KmatrixCore

/// What packing an initramfs produced.
public struct InitramfsRecord: Sendable, Codable, Equatable {
    public var path: String
    public var entries: Int
    /// Uncompressed bytes of file data.
    public var dataBytes: UInt64
    /// Size of the compressed archive.
    public var archiveBytes: UInt64
    public var durationSeconds: Double
}

/// Packs a rootfs into a gzip'd cpio `newc` archive, in process (libarchive + libdeflate):
/// directories before their contents, owners as described (0:0 for kmatrix's own
/// rootfs), every mtime fixed, inode numbers assigned in archive order, gzip header
/// without a time or name. The same tree always gives the same bytes.
public enum InitramfsWriter {
    /// How kmatrix compresses the initramfs it packs.
    public static let compression = CpioNewcWriter.Compression.gzip(level: 9)

    /// `ordered`: archive order. `true` sorts directories before contents (the rootfs
    /// kmatrix assembles); `false` keeps the tree's order (a cpio list, as the kernel's
    /// tool does).
    /// `write`, run off Swift's cooperative pool: packing and gzip take seconds of CPU
    /// that would otherwise stall boot watchers and deadlines.
    public static func writeOffThePool(_ tree: RootfsTree, to output: String, mtime: Int64 = 0, ordered: Bool = true,
                                       compression: CpioNewcWriter.Compression = InitramfsWriter.compression) async throws(KmatrixError) -> InitramfsRecord {
        try await Blocking.run { () throws(KmatrixError) -> InitramfsRecord in
            try write(tree, to: output, mtime: mtime, ordered: ordered, compression: compression)
        }
    }

    public static func write(_ tree: RootfsTree, to output: String, mtime: Int64 = 0, ordered: Bool = true,
                             compression: CpioNewcWriter.Compression = InitramfsWriter.compression) throws(KmatrixError) -> InitramfsRecord {
        let start = ContinuousClock.now
        let entries = ordered ? tree.ordered() : tree.entries
        let folder = (output as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw .host("cannot create \(folder)", underlying: error)
            }
        }
        // Written under a temporary name and renamed, so a reader never sees half an archive.
        let partial = "\(output).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var dataBytes: UInt64 = 0
        var count = 0
        let archiveBytes: UInt64
        do {
            let writer = try CpioNewcWriter(path: partial, compression: compression)
            var inode: UInt64 = 1
            for entry in entries {
                let names = [entry.path] + entry.hardLinks
                var member = CpioMember(path: entry.path, type: .regular, permissions: entry.mode, inode: inode)
                member.uid = entry.uid
                member.gid = entry.gid
                member.mtime = mtime
                inode += 1
                switch entry.kind {
                // nlink 2 for directories, FIFOs and sockets, as the kernel's gen_init_cpio writes them.
                case .directory:
                    member.type = .directory
                    member.links = 2
                case .symlink(let target): member.type = .symlink(target: target)
                case .characterDevice(let major, let minor):
                    member.type = .characterDevice
                    (member.deviceMajor, member.deviceMinor) = (major, minor)
                case .blockDevice(let major, let minor):
                    member.type = .blockDevice
                    (member.deviceMajor, member.deviceMinor) = (major, minor)
                case .fifo:
                    member.type = .fifo
                    member.links = 2
                case .socket:
                    member.type = .socket
                    member.links = 2
                case .contents(let bytes):
                    // Hard links: every name shares the inode, the data goes on the last one.
                    member.links = UInt32(names.count)
                    for (i, name) in names.enumerated() {
                        member.path = name
                        member.size = i == names.count - 1 ? UInt64(bytes.count) : 0
                        try writer.append(member) { (emit) throws(ArchiveError) in
                            try bytes.withUnsafeBytes { raw in Result { () throws(ArchiveError) in try emit(raw) } }.get()
                        }
                        count += 1
                    }
                    dataBytes += UInt64(bytes.count)
                    continue
                case .file(let source):
                    member.links = UInt32(names.count)
                    let size = try fileSize(source)
                    for (i, name) in names.enumerated() {
                        member.path = name
                        member.size = i == names.count - 1 ? size : 0
                        try writer.append(member) { (emit) throws(ArchiveError) in
                            try stream(source, into: emit, entry: name, archive: output)
                        }
                        count += 1
                    }
                    dataBytes += size
                    continue
                }
                try writer.append(member)
                count += 1
            }
            archiveBytes = try writer.finish()
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw .host("cannot write the initramfs \(output)", underlying: error)
        }
        guard rename(partial, output) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: partial)
            throw .host("cannot move \(partial) to \(output): \(reason)")
        }
        let elapsed = ContinuousClock.now - start
        return InitramfsRecord(path: output, entries: count, dataBytes: dataBytes, archiveBytes: archiveBytes,
                               durationSeconds: elapsed.seconds)
    }

    static func fileSize(_ path: String) throws(ArchiveError) -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ArchiveError("read", path: path, message: String(cString: strerror(errno))) }
        return UInt64(st.st_size)
    }

    static func stream(_ source: String, into emit: (UnsafeRawBufferPointer) throws(ArchiveError) -> Void,
                       entry: String, archive: String) throws(ArchiveError) {
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError("read", path: source, entry: entry, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n == 0 { return }
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError("read", path: source, entry: entry, message: String(cString: strerror(errno)))
            }
            try emit(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }
}
