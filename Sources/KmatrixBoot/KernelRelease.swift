import Foundation

/// The release a built kernel reports (`uname -r`), read from the banner it carries
/// (`Linux version 6.1.192 (...)`, `linux_banner` in `vmlinux`): what the boot marker's
/// `release` must say. Read from the build's own output, so a cached kernel has it too.
public enum KernelRelease {
    static let banner = Array("Linux version ".utf8)

    /// The release in the first banner of `path` (an uncompressed kernel: `vmlinux`, an
    /// arm64 `Image`); nil when there is none.
    public static func read(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var carry: [UInt8] = []
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            let bytes = carry + Array(chunk)
            if let release = find(in: bytes) { return release }
            // Keep enough to see a banner split across chunks.
            carry = Array(bytes.suffix(256))
        }
        return nil
    }

    /// The release after the first `Linux version ` that is followed by ` (`, as the banner is.
    static func find(in bytes: [UInt8]) -> String? {
        var from = 0
        while from < bytes.count {
            guard let index = bytes.withUnsafeBytes({ ByteSearch.firstOffset(of: banner, in: $0, from: from) }) else { return nil }
            let start = index + banner.count
            var end = start
            while end < bytes.count, end - start < 128, bytes[end] > 0x20, bytes[end] < 0x7F { end += 1 }
            if end > start, end + 1 < bytes.count, bytes[end] == 0x20, bytes[end + 1] == UInt8(ascii: "(") {
                return String(decoding: bytes[start..<end], as: UTF8.self)
            }
            from = index + 1
        }
        return nil
    }
}

/// Initcall names for a kernel without kallsyms, where `%pS` prints an address: the
/// build's System.map names it.
public enum InitcallNames {
    public static func resolve(_ calls: [InitcallTime], systemMap: String) -> [InitcallTime] {
        let wanted = Set(calls.compactMap { address($0.name) })
        guard !wanted.isEmpty, let text = try? String(contentsOfFile: systemMap, encoding: .utf8) else { return calls }
        var names: [UInt64: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3, let value = UInt64(fields[0], radix: 16), wanted.contains(value), names[value] == nil else { continue }
            names[value] = String(fields[2])
        }
        return calls.map { call in
            var named = call
            if let value = address(call.name), let name = names[value] { named.name = name }
            return named
        }
    }

    static func address(_ name: String) -> UInt64? {
        name.hasPrefix("0x") ? UInt64(name.dropFirst(2), radix: 16) : nil
    }
}
