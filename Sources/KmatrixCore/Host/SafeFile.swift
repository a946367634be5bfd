import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Output files that can never be redirected: created with `O_EXCL|O_NOFOLLOW`, so a file
/// or a symlink planted under the name (a stale leftover, or someone else's) is an error
/// instead of something kmatrix follows and overwrites.
public enum SafeFile {
    /// A new file at `path`, open for writing; fails when anything already has that name.
    public static func createExclusive(_ path: String, mode: mode_t = 0o644) throws(KmatrixError) -> FileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .host("cannot create \(path): \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Writes `data` to a new file at `path` and flushes it to disk before returning.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws(KmatrixError) {
        let handle = try createExclusive(path, mode: mode)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
        } catch {
            throw .host("cannot write \(path)\(DiskSpace.note(path: path, error: error))", underlying: error)
        }
    }

    /// fsync of a file or a directory (a directory's fsync makes the names in it durable).
    public static func sync(_ path: String) throws(KmatrixError) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .host("cannot open \(path) to flush it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            let code = errno
            throw .host("cannot flush \(path) to disk: \(String(cString: strerror(code)))\(DiskSpace.note(path: path, errno: code))")
        }
    }
}
