import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Tells a full filesystem apart from a failing step, so a step that died of `ENOSPC`
/// is reported as the host's failure (exit 3, `FailureClass.infrastructure`) with the
/// filesystem named, not as a broken kernel.
public enum DiskSpace {
    /// Below this many free bytes a filesystem counts as full: writers fail well before 0.
    public static let fullBelowBytes: UInt64 = 1 << 20

    /// Bytes an unprivileged writer may still use on the filesystem holding `path`.
    public static func freeBytes(_ path: String) -> UInt64? {
        var stats = statvfs()
        guard statvfs(existingAncestor(path), &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    /// The mount point of the filesystem holding `path` (walks up while the device stays the same).
    public static func mountPoint(_ path: String) -> String {
        var current = existingAncestor(path)
        var info = stat()
        guard stat(current, &info) == 0 else { return current }
        let device = info.st_dev
        while current != "/" {
            let parent = (current as NSString).deletingLastPathComponent
            var parentInfo = stat()
            guard stat(parent, &parentInfo) == 0, parentInfo.st_dev == device else { break }
            current = parent
        }
        return current
    }

    /// A message naming the full filesystem when the one holding `path` is full, or when
    /// `text` (an error, a log excerpt) says so; nil otherwise.
    public static func fullFilesystem(at path: String, text: String? = nil) -> String? {
        let saysFull = text.map(mentionsNoSpace) ?? false
        let free = freeBytes(path)
        guard saysFull || (free.map { $0 < fullBelowBytes } ?? false) else { return nil }
        let left = free.map { " (\($0 / 1024) KiB free)" } ?? ""
        return "the filesystem at \(mountPoint(path)) is full\(left)"
    }

    /// Whether an error text or log says the disk is full.
    public static func mentionsNoSpace(_ text: String) -> Bool {
        text.contains("No space left on device") || text.contains("ENOSPC") || text.contains("Disk quota exceeded")
    }

    /// ": <message>" to append to an error when the disk is full, else "".
    public static func note(path: String, error: (any Error)? = nil) -> String {
        fullFilesystem(at: path, text: error.map { String(describing: $0) }).map { ": \($0)" } ?? ""
    }

    public static func note(path: String, errno code: Int32) -> String {
        fullFilesystem(at: path, text: code == ENOSPC || code == EDQUOT ? "No space left on device" : nil).map { ": \($0)" } ?? ""
    }

    static func existingAncestor(_ path: String) -> String {
        var current = (path as NSString).standardizingPath
        while !current.isEmpty, current != "/", access(current, F_OK) != 0 {
            current = (current as NSString).deletingLastPathComponent
        }
        return current.isEmpty ? "/" : current
    }
}
