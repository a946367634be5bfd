import Foundation
import KmatrixCore
import KmatrixCrypto

/// What making a filesystem image produced.
public struct FilesystemImageRecord: Sendable, Codable, Equatable {
    public var path: String
    public var filesystem: String
    public var sizeKiB: Int
    /// Folder the image was made from (`mke2fs -d`).
    public var directory: String
    /// Device nodes, FIFOs and sockets added into the image by debugfs.
    public var specialFiles: Int
    public var durationSeconds: Double
    /// `root=/dev/ram0` needs `ramdisk_size=` at least this big (KiB) when it exceeds the
    /// kernel's `CONFIG_BLK_DEV_RAM_SIZE` (4096 by default).
    public var ramdiskSizeKiB: Int { sizeKiB }
}

/// ext2/3/4 images of a rootfs for `root=/dev/ram0` and disks, made without root:
/// the tree is written to a folder (files, links, directories, all mtimes fixed), `mke2fs
/// -d` copies it into the image, and debugfs adds what an unprivileged user cannot create
/// on disk (device nodes) and sets every owner to 0:0. The kernel profile's devtmpfs with
/// DEVTMPFS_MOUNT would populate /dev on these roots anyway; the nodes make the image
/// usable with kernels without it. UUID, hash seed and times are fixed, so the same tree
/// gives the same image.
public enum FilesystemImage {
    public static let fixedTime: Int64 = 0

    /// Writes `tree` into `directory` (emptied first). Returns the entries that must be
    /// added to the image another way (device nodes, FIFOs, sockets).
    public static func materialize(_ tree: RootfsTree, into directory: String) throws(KmatrixError) -> [RootfsEntry] {
        let fm = FileManager.default
        try? fm.removeItem(atPath: directory)
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(directory)", underlying: error)
        }
        var special: [RootfsEntry] = []
        let entries = tree.ordered()
        func fail(_ what: String, _ path: String) -> KmatrixError {
            .host("cannot \(what) \(path): \(String(cString: strerror(errno)))")
        }
        for entry in entries {
            let path = "\(directory)/\(entry.path)"
            switch entry.kind {
            case .directory:
                guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw fail("create the folder", path) }
            case .file(let source):
                do { try fm.copyItem(atPath: source, toPath: path) } catch {
                    throw .host("cannot copy \(source) to \(path)", underlying: error)
                }
                for link in entry.hardLinks where Glibc.link(path, "\(directory)/\(link)") != 0 {
                    throw fail("link", "\(directory)/\(link)")
                }
            case .contents(let bytes):
                try SafeFile.write(Data(bytes), to: path)
            case .symlink(let target):
                guard symlink(target, path) == 0 else { throw fail("create the symlink", path) }
            case .characterDevice, .blockDevice, .fifo, .socket:
                special.append(entry)
                continue
            }
            if case .symlink = entry.kind {} else {
                guard chmod(path, mode_t(entry.mode)) == 0 || entry.isDirectory else { throw fail("chmod", path) }
            }
        }
        // Directory modes and all times last: writing children would change both.
        var times = [timespec(tv_sec: Int(fixedTime), tv_nsec: 0), timespec(tv_sec: Int(fixedTime), tv_nsec: 0)]
        for entry in entries.reversed() {
            if case .characterDevice = entry.kind { continue }
            if case .blockDevice = entry.kind { continue }
            if entry.kind == .fifo || entry.kind == .socket { continue }
            let path = "\(directory)/\(entry.path)"
            if entry.isDirectory { _ = chmod(path, mode_t(entry.mode)) }
            _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
        }
        _ = utimensat(AT_FDCWD, directory, &times, AT_SYMLINK_NOFOLLOW)
        return special
    }

    /// A size that fits the tree with room to spare: data + one block per entry + 25%,
    /// at least 2 MiB, rounded up to 256 KiB.
    public static func suggestedSizeKiB(_ tree: RootfsTree) -> Int {
        var kib = 0
        for entry in tree.entries {
            switch entry.kind {
            case .file(let source):
                var st = stat()
                let size = stat(source, &st) == 0 ? Int(st.st_size) : 0
                kib += (size + 1023) / 1024 + 1
            case .contents(let bytes): kib += (bytes.count + 1023) / 1024 + 1
            default: kib += 1
            }
        }
        let total = max(2048, kib + kib / 4 + 512)
        return (total + 255) / 256 * 256
    }

    /// The two commands `make` runs for `tree` (mke2fs from the materialized folder, then
    /// debugfs with the special files and owners), for `kmatrix plan` and the run alike.
    /// The UUID and hash seed derive from the tree's paths and size: same tree, same image.
    public static func commands(_ tree: RootfsTree, filesystem: String, output: String, directory: String, sizeKiB: Int) -> [Command] {
        let ordered = tree.ordered()
        let seed = SHA256.hex(ordered.map(\.path).joined(separator: "\n") + "\n\(filesystem) \(sizeKiB)")
        let uuid = uuidString(seed)
        let environment: [String: String?] = ["E2FSPROGS_FAKE_TIME": "\(max(fixedTime, 1))", "LC_ALL": "C"]
        return [
            Command([tool("mke2fs"), "-q", "-F", "-t", filesystem, "-b", "1024", "-m", "0", "-N", "\(ordered.count + 128)",
                     "-L", "kmatrix", "-U", uuid, "-E", "hash_seed=\(uuid),root_owner=0:0", "-d", directory, output, "\(sizeKiB)"],
                    environment: environment),
            Command([tool("debugfs"), "-w", "-f", "\(output).debugfs", output], environment: environment),
        ]
    }

    /// debugfs: special files, then every owner to 0:0 (mke2fs copied the host's).
    static func debugfsScript(special: [RootfsEntry], ordered: [RootfsEntry]) -> [String] {
        var script: [String] = []
        for entry in special {
            let parent = (entry.path as NSString).deletingLastPathComponent
            let name = (entry.path as NSString).lastPathComponent
            script.append("cd /\(parent)")
            switch entry.kind {
            case .characterDevice(let major, let minor):
                script.append("mknod \(name) c \(major) \(minor)")
                script.append("sif \(name) mode 0\(String(0o020000 | entry.mode, radix: 8))")
            case .blockDevice(let major, let minor):
                script.append("mknod \(name) b \(major) \(minor)")
                script.append("sif \(name) mode 0\(String(0o060000 | entry.mode, radix: 8))")
            case .fifo:
                script.append("mknod \(name) p")
                script.append("sif \(name) mode 0\(String(0o010000 | entry.mode, radix: 8))")
            default:
                continue // sockets only exist while something listens; nothing to put in an image
            }
            script.append("cd /")
        }
        for entry in ordered where !entry.path.contains(" ") {
            let special = entry.kind == .socket
            if special { continue }
            script.append("sif /\(entry.path) uid \(entry.uid)")
            script.append("sif /\(entry.path) gid \(entry.gid)")
            for t in ["mtime", "atime", "ctime"] { script.append("sif /\(entry.path) \(t) \(max(fixedTime, 1))") }
        }
        return script
    }

    /// Makes `output` from `tree`: materialises it in `directory`, runs `mke2fs -d`, then
    /// debugfs for special files and owners. `logPath` gets both tools' output.
    public static func make(_ tree: RootfsTree, filesystem: String, output: String, directory: String,
                            sizeKiB: Int? = nil, logPath: String) async throws(KmatrixError) -> FilesystemImageRecord {
        guard ["ext2", "ext3", "ext4"].contains(filesystem) else {
            throw .badInput("'\(filesystem)' is not a filesystem kmatrix makes images of (ext2, ext3, ext4)")
        }
        for tool in ["mke2fs", "debugfs"] where ProcessRunner.which(tool) == nil && !FileManager.default.isExecutableFile(atPath: "/usr/sbin/\(tool)") && !FileManager.default.isExecutableFile(atPath: "/sbin/\(tool)") {
            throw .host("\(tool) is not installed (apt-get install e2fsprogs)")
        }
        let start = ContinuousClock.now
        let special = try materialize(tree, into: directory)
        let size = sizeKiB ?? suggestedSizeKiB(tree)
        let ordered = tree.ordered()
        try? FileManager.default.removeItem(atPath: output)
        let planned = commands(tree, filesystem: filesystem, output: output, directory: directory, sizeKiB: size)
        let mke2fs = planned[0], debugfs = planned[1]
        BusyboxBuilder.appendLog(logPath, "\n$ \(mke2fs)\n")
        let made = try await ProcessRunner.run(mke2fs, logPath: logPath, timeout: .seconds(300))
        guard made.succeeded else {
            throw .host("mke2fs could not make \(output) (\(made)); see \(logPath):\n\(BusyboxBuilder.tail(logPath, lines: 10))")
        }

        let script = debugfsScript(special: special, ordered: ordered)
        let scriptPath = "\(output).debugfs"
        try? FileManager.default.removeItem(atPath: scriptPath)
        try SafeFile.write(Data((script.joined(separator: "\n") + "\n").utf8), to: scriptPath)
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }
        BusyboxBuilder.appendLog(logPath, "\n$ \(debugfs)\n")
        let captured = try await ProcessRunner.capture(debugfs, timeout: .seconds(300))
        BusyboxBuilder.appendLog(logPath, captured.standardError)
        // debugfs exits 0 even when a command fails; its complaints name the command.
        let complaints = captured.standardError.split(separator: "\n").filter { !$0.hasPrefix("debugfs ") && !$0.isEmpty }
        guard captured.termination.succeeded, complaints.isEmpty else {
            throw .host("debugfs could not finish \(output): \(complaints.prefix(5).joined(separator: "; "))")
        }
        return FilesystemImageRecord(path: output, filesystem: filesystem, sizeKiB: size, directory: directory,
                                     specialFiles: special.count, durationSeconds: (ContinuousClock.now - start).seconds)
    }

    static func tool(_ name: String) -> String {
        if let path = ProcessRunner.which(name) { return path }
        for dir in ["/usr/sbin", "/sbin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") { return "\(dir)/\(name)" }
        return name
    }

    static func uuidString(_ hex: String) -> String {
        let h = Array(hex.prefix(32))
        return [String(h[0..<8]), String(h[8..<12]), "4" + String(h[13..<16]), "8" + String(h[17..<20]), String(h[20..<32])].joined(separator: "-")
    }
}
