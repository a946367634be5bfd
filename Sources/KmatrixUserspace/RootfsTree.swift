import Foundation
import Synchronization
import KmatrixCore
import KmatrixCrypto

/// One thing in a root filesystem, described rather than created: device nodes and owners
/// need no root because they only ever exist as archive entries or image inodes.
public struct RootfsEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case directory
        /// A regular file whose bytes come from a host file.
        case file(source: String)
        /// A regular file whose bytes kmatrix generated.
        case contents([UInt8])
        case symlink(target: String)
        case characterDevice(major: UInt32, minor: UInt32)
        case blockDevice(major: UInt32, minor: UInt32)
        case fifo
        case socket
    }

    /// Path inside the rootfs, normalised: no leading `/`, no `.` or empty components.
    public var path: String
    public var kind: Kind
    /// Permission bits (07777).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Further names of the same file (gen_init_cpio `file` lines with hard links).
    public var hardLinks: [String]

    public init(_ path: String, _ kind: Kind, mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0, hardLinks: [String] = []) {
        self.path = RootfsTree.normalize(path)
        self.kind = kind
        self.mode = mode & 0o7777
        self.uid = uid
        self.gid = gid
        self.hardLinks = hardLinks.map(RootfsTree.normalize)
    }

    public var isDirectory: Bool { kind == .directory }
}

/// An ordered set of rootfs entries keyed by path: later additions replace earlier ones
/// (an overlay wins over the skeleton), directories merge.
public struct RootfsTree: Sendable, Equatable {
    public private(set) var entries: [RootfsEntry] = []
    private var index: [String: Int] = [:]

    public init() {}

    public static func normalize(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.joined(separator: "/")
    }

    public subscript(path: String) -> RootfsEntry? {
        index[Self.normalize(path)].map { entries[$0] }
    }

    public mutating func add(_ entry: RootfsEntry) {
        if let existing = index[entry.path] {
            // A directory over a directory keeps its place; anything else replaces it.
            entries[existing] = entry
        } else {
            index[entry.path] = entries.count
            entries.append(entry)
        }
    }

    public mutating func directory(_ path: String, mode: UInt32 = 0o755) {
        add(RootfsEntry(path, .directory, mode: mode))
    }

    public mutating func file(_ path: String, _ text: String, mode: UInt32 = 0o644) {
        add(RootfsEntry(path, .contents(Array(text.utf8)), mode: mode))
    }

    /// Adds a host folder's contents below `prefix` (its files by reference), with owners
    /// 0:0 and the host's permission bits. Device nodes, FIFOs and sockets in the folder
    /// are taken as what they are. Entries are visited in sorted order.
    public mutating func addTree(from root: String, under prefix: String = "") throws(KmatrixError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw .badInput("\(root) is not a folder")
        }
        try walk(root, relative: "", prefix: Self.normalize(prefix))
    }

    private mutating func walk(_ root: String, relative: String, prefix: String) throws(KmatrixError) {
        let folder = relative.isEmpty ? root : "\(root)/\(relative)"
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted() } catch {
            throw .host("cannot read the folder \(folder)", underlying: error)
        }
        for name in names {
            let rel = relative.isEmpty ? name : "\(relative)/\(name)"
            let host = "\(root)/\(rel)"
            let inside = prefix.isEmpty ? rel : "\(prefix)/\(rel)"
            var st = stat()
            guard lstat(host, &st) == 0 else {
                throw .host("cannot stat \(host): \(String(cString: strerror(errno)))")
            }
            let mode = UInt32(st.st_mode) & 0o7777
            switch UInt32(st.st_mode) & 0o170000 {
            case 0o040000:
                add(RootfsEntry(inside, .directory, mode: mode))
                try walk(root, relative: rel, prefix: prefix)
            case 0o100000:
                add(RootfsEntry(inside, .file(source: host), mode: mode))
            case 0o120000:
                let target: String
                do { target = try FileManager.default.destinationOfSymbolicLink(atPath: host) } catch {
                    throw .host("cannot read the symlink \(host)", underlying: error)
                }
                add(RootfsEntry(inside, .symlink(target: target), mode: 0o777))
            case 0o020000:
                add(RootfsEntry(inside, .characterDevice(major: major(st.st_rdev), minor: minor(st.st_rdev)), mode: mode))
            case 0o060000:
                add(RootfsEntry(inside, .blockDevice(major: major(st.st_rdev), minor: minor(st.st_rdev)), mode: mode))
            case 0o010000:
                add(RootfsEntry(inside, .fifo, mode: mode))
            case 0o140000:
                add(RootfsEntry(inside, .socket, mode: mode))
            default:
                throw .host("\(host) has a file type kmatrix does not know")
            }
        }
    }

    /// The entries in archive order: every directory before what it contains, siblings
    /// sorted by name, missing parent directories added (0755, 0:0).
    public func ordered() -> [RootfsEntry] {
        var all = self
        for entry in entries {
            for name in [entry.path] + entry.hardLinks {
                var components = name.split(separator: "/").dropLast()
                while !components.isEmpty {
                    let parent = components.joined(separator: "/")
                    if all.index[parent] == nil { all.directory(parent) }
                    components = components.dropLast()
                }
            }
        }
        // A file with hard links sorts by its last name, so every name's folder comes first.
        func key(_ entry: RootfsEntry) -> [Substring] {
            ([entry.path] + entry.hardLinks).map { $0.split(separator: "/") }
                .max { $0.lexicographicallyPrecedes($1) } ?? []
        }
        // Each key made once, not in every comparison.
        return all.entries.filter { !$0.path.isEmpty }.map { (key: key($0), entry: $0) }.sorted { a, b in
            a.key == b.key ? a.entry.path < b.entry.path : a.key.lexicographicallyPrecedes(b.key)
        }.map(\.entry)
    }
}

// glibc's gnu_dev_major/gnu_dev_minor encoding.
private func major(_ dev: dev_t) -> UInt32 {
    let d = UInt64(dev)
    let low = (d >> 8) & 0xfff
    let high = (d >> 32) & 0xffff_f000
    return UInt32(truncatingIfNeeded: low | high)
}
private func minor(_ dev: dev_t) -> UInt32 {
    let d = UInt64(dev)
    let low = d & 0xff
    let high = (d >> 12) & 0xffff_ff00
    return UInt32(truncatingIfNeeded: low | high)
}

extension RootfsTree {
    /// The tree's content as a hash: every entry's path, kind, mode, owner, hard links and,
    /// for files, the sha256 of their bytes. Whatever goes into the image (busybox, modules,
    /// an overlay, a cpio list's files, kmatrix's own scripts) changes it; host paths and
    /// times do not.
    public func digest() throws(KmatrixError) -> String {
        var lines: [String] = []
        for entry in ordered() {
            let kind: String
            switch entry.kind {
            case .directory: kind = "dir"
            case .file(let source):
                do { kind = "file \(try FileDigests.shared.sha256(source))" } catch { throw .host("cannot read \(source) for the rootfs") }
            case .contents(let bytes): kind = "file \(SHA256.hex(Data(bytes)))"
            case .symlink(let target): kind = "link \(target)"
            case .characterDevice(let major, let minor): kind = "char \(major):\(minor)"
            case .blockDevice(let major, let minor): kind = "block \(major):\(minor)"
            case .fifo: kind = "fifo"
            case .socket: kind = "socket"
            }
            lines.append("\(entry.path) \(kind) \(String(entry.mode, radix: 8)) \(entry.uid):\(entry.gid) \(entry.hardLinks.joined(separator: ","))")
        }
        return SHA256.hex(lines.joined(separator: "\n"))
    }
}

/// sha256 of files by path, remembered for as long as the file is the same one unchanged
/// (device, inode, size, modification and change times): every cell's rootfs digest reads
/// the same busybox binary, and `plan` of 1,000 cells hashed it 1,000 times. Only for
/// digests that make keys; cache verification hashes afresh.
public final class FileDigests: Sendable {
    public static let shared = FileDigests()
    private let digests = Mutex<[String: (identity: [Int], sha256: String)]>([:])

    public func sha256(_ path: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return try SHA256.hex(fileAt: path) }
        let identity = [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec),
                        Int(info.st_ctim.tv_sec), Int(info.st_ctim.tv_nsec)]
        if let known = digests.withLock({ $0[path] }), known.identity == identity { return known.sha256 }
        let digest = try SHA256.hex(fileAt: path)
        digests.withLock { $0[path] = (identity, digest) }
        return digest
    }
}
