import Foundation

/// Finding a byte string in a kernel image. memchr to each first byte, memcmp there: a
/// byte loop over a 30 MB vmlinux is seconds in a debug build.
enum ByteSearch {
    /// The offset of the first `needle` in `buffer` at or after `from`; nil when there is none.
    static func firstOffset(of needle: [UInt8], in buffer: UnsafeRawBufferPointer, from: Int = 0) -> Int? {
        guard let base = buffer.baseAddress, let first = needle.first else { return nil }
        var at = from
        while at + needle.count <= buffer.count, let hit = memchr(base + at, Int32(first), buffer.count - at) {
            let offset = base.distance(to: UnsafeRawPointer(hit))
            if offset + needle.count <= buffer.count, memcmp(hit, needle, needle.count) == 0 { return offset }
            at = offset + 1
        }
        return nil
    }
}
