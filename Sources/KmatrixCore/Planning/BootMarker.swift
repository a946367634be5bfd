import Foundation

/// The userspace marker kmatrix's init prints: `KMATRIX-BOOT-OK arch=... release=... uptime=...`.
public enum BootMarker {
    // The rootfs init prints it (KmatrixUserspace) and the console watcher looks for it (KmatrixBoot).
    public static let prefix = "KMATRIX-BOOT-OK"

    /// The `key=value` words after the marker on its line.
    public static func fields(of line: String, after range: Range<String.Index>) -> [String: String] {
        var fields: [String: String] = [:]
        var text = line[range.upperBound...]
        // The kernel writes to the console directly while userspace goes through the tty:
        // a kernel message can land inside the marker line. Its timestamp ends the fields.
        if let kernel = text.range(of: #"\[ *[0-9]+\.[0-9]+\]"#, options: .regularExpression) {
            text = text[..<kernel.lowerBound]
        }
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else { continue }
            fields[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return fields
    }
}
