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

/// What a boot's marker must say for the boot to count: the guest ran the kernel built
/// for the cell on the target's machine, and every module it lists loaded.
public struct MarkerExpectation: Sendable, Equatable, Codable {
    /// `uname -m` on the target (`Target.userspace.unameMachine`); nil: not checked.
    public var arch: String?
    /// The release of the kernel built for the cell (its banner); nil: not checked.
    public var release: String?
    /// How many modules the kernel built (its `modules.order`); nil: none built, not checked.
    /// The marker must then say `modules=M/M` with this M: a rootfs that lost them fails.
    public var modules: Int?

    public init(arch: String? = nil, release: String? = nil, modules: Int? = nil) {
        self.arch = arch
        self.release = release
        self.modules = modules
    }

    /// Each way the marker's fields differ from what was expected, with both values; empty
    /// when the marker is right. `modules=N/M` must have N == M wherever it is printed.
    public func mismatches(_ fields: [String: String]) -> [String] {
        var found: [String] = []
        if let arch, fields["arch"] != arch {
            found.append("arch=\(fields["arch"] ?? "(missing)") but the target's machine is \(arch)")
        }
        if let release, fields["release"] != release {
            found.append("release=\(fields["release"] ?? "(missing)") but the kernel built for this cell is \(release)")
        }
        if let built = modules, built > 0 {
            let loaded = fields["modules"]
            if loaded.map({ $0.split(separator: "/").last.flatMap { Int($0) } != built }) ?? true {
                found.append("modules=\(loaded ?? "(missing)") but the kernel built \(built) module\(built == 1 ? "" : "s")")
            }
        }
        if let modules = fields["modules"] {
            let counts = modules.split(separator: "/").compactMap { Int($0) }
            if counts.count != 2 {
                found.append("modules=\(modules) is not loaded/total")
            } else if counts[0] != counts[1] {
                found.append("modules=\(modules): \(counts[1] - counts[0]) of \(counts[1]) modules did not load")
            }
        }
        return found
    }
}
