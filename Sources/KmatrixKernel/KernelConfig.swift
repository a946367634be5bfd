import Foundation
import KmatrixCore

/// A kernel `.config` as Kconfig wrote it: every symbol that is set, and every symbol
/// written as `# CONFIG_X is not set`. A symbol absent from the file is not set either
/// (Kconfig leaves out symbols whose dependencies are off).
public struct KernelConfig: Sendable, Equatable {
    /// Symbol name to value as `.config` spells it; `nil` for `# ... is not set`.
    public private(set) var values: [String: String?]

    public init(values: [String: String?] = [:]) { self.values = values }

    /// Parses `.config` text. Lines that are neither options nor `is not set` comments
    /// (headers, section comments) are skipped; a malformed option line is skipped too,
    /// because Kconfig itself is the writer and verification must not fail on its output.
    public init(parsing text: String) {
        var values: [String: String?] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let option = try? KernelOption.parseLine(String(line)) else { continue }
            values[option.name] = option.value
        }
        self.values = values
    }

    public init(contentsOfFile path: String) throws(KmatrixError) {
        do {
            self.init(parsing: try String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw .host("cannot read the kernel config \(path)", underlying: error)
        }
    }

    /// The value of `name`: `nil` when it is not set, whether written so or absent.
    public func value(_ name: String) -> String? { values[name] ?? nil }

    /// Whether the symbol appears in the file at all (as a value or as `is not set`).
    public func mentions(_ name: String) -> Bool { values[name] != nil }

    /// Whether the kernel has anything to build as a module.
    public var hasModules: Bool { values.values.contains { $0 == "m" } }
}

/// One requested option together with who asked for it, for messages that name the
/// descriptor to fix.
public struct RequestedOption: Sendable, Hashable, Codable {
    public var option: KernelOption
    /// `target arm-vexpress-a9`, `profile tiny (Fragments/debug.config)`, `cell`...
    public var origin: String
    /// The symbol's name in older kernels (a target's `kernel.formerNames`): a kernel
    /// that lacks `option.name` but has this one with the value satisfies the request.
    public var formerName: String?

    public init(_ option: KernelOption, origin: String, formerName: String? = nil) {
        self.option = option
        self.origin = origin
        self.formerName = formerName
    }

    /// The fragment lines: the option, and under its former name too (Kconfig ignores a
    /// symbol the kernel does not have).
    public var configLines: [String] {
        [option.configLine] + (formerName.map { [KernelOption(name: $0, value: option.value).configLine] } ?? [])
    }
}

/// A requested option that the final `.config` does not have as asked.
public struct OptionMismatch: Sendable, Hashable, Codable, CustomStringConvertible {
    public var name: String
    /// The value asked for, `nil` for "is not set".
    public var requested: String?
    /// The value in the final `.config`, `nil` for not set.
    public var actual: String?
    /// True when the symbol is missing from `.config` altogether (its dependencies are off).
    public var absent: Bool
    public var origin: String

    public var description: String {
        let asked = KernelOption(name: name, value: requested).configLine
        let got: String
        if let actual { got = "\(name)=\(actual)" } else if absent { got = "not set (absent from .config: a dependency is off)" } else { got = "# \(name) is not set" }
        return "\(asked) (from \(origin)) came out as \(got)"
    }
}

public enum ConfigVerification {
    /// Compares every requested option with the final config. The result lists each
    /// option that was dropped or changed, in request order.
    public static func mismatches(requested: [RequestedOption], in config: KernelConfig) -> [OptionMismatch] {
        requested.compactMap { request in
            let name = request.option.name
            let actual = config.value(name)
            guard !sameValue(request.option.value, actual) else { return nil }
            // Renamed between kernel versions: this kernel knows only the old name.
            if let former = request.formerName, !config.mentions(name), config.mentions(former),
               sameValue(request.option.value, config.value(former)) { return nil }
            return OptionMismatch(name: name, requested: request.option.value, actual: actual,
                                  absent: !config.mentions(name), origin: request.origin)
        }
    }

    /// Kconfig canonicalises some spellings: `0x10` and `0X10` are one hex value, `064`
    /// is 64, and a string asked for without quotes comes out quoted.
    public static func sameValue(_ requested: String?, _ actual: String?) -> Bool {
        switch (requested, actual) {
        case (nil, nil): return true
        case (nil, _), (_, nil): return false
        case let (requested?, actual?): return canonical(requested) == canonical(actual)
        }
    }

    static func canonical(_ value: String) -> String {
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            // Kconfig escapes `"` and `\` inside strings; compare the text itself.
            var text = ""
            var escaped = false
            for character in value.dropFirst().dropLast() {
                if escaped { text.append(character); escaped = false } else if character == "\\" { escaped = true } else { text.append(character) }
            }
            return "s:" + text
        }
        let lower = value.lowercased()
        if lower.hasPrefix("0x"), let number = UInt64(lower.dropFirst(2), radix: 16) { return "h:\(number)" }
        if let number = Int64(value) { return "n:\(number)" }
        // A bare word: a tristate (`y`, `m`) or a string Kconfig will have quoted.
        if value == "y" || value == "m" { return value }
        return "s:" + value
    }
}
