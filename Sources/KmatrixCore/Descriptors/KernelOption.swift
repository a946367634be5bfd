/// One requested Kconfig option, in `.config` syntax: `CONFIG_X=y`, `CONFIG_X=m`,
/// `CONFIG_X="text"`, `CONFIG_X=64`, or `# CONFIG_X is not set` (also written `CONFIG_X=n`).
public struct KernelOption: Hashable, Sendable, Codable, CustomStringConvertible {
    public var name: String
    /// The value as `.config` spells it; `nil` means "is not set".
    public var value: String?

    public init(name: String, value: String?) {
        self.name = name
        self.value = value
    }

    /// Parses one `.config` or fragment line; `nil` for blank lines and plain comments.
    public static func parseLine(_ raw: String) throws(KernelOptionSyntaxError) -> KernelOption? {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty { return nil }
        if line.hasPrefix("#") {
            let body = line.dropFirst().trimmingCharacters(in: .whitespaces)
            guard body.hasPrefix("CONFIG_"), body.hasSuffix(" is not set") else { return nil }
            let name = String(body.dropLast(" is not set".count))
            guard isValidName(name) else { throw KernelOptionSyntaxError(line: raw, reason: "'\(name)' is not a Kconfig symbol") }
            return KernelOption(name: name, value: nil)
        }
        guard let eq = line.firstIndex(of: "=") else {
            throw KernelOptionSyntaxError(line: raw, reason: "expected CONFIG_NAME=value or '# CONFIG_NAME is not set'")
        }
        let name = String(line[..<eq])
        let value = String(line[line.index(after: eq)...])
        guard isValidName(name) else {
            throw KernelOptionSyntaxError(line: raw, reason: "'\(name)' is not a Kconfig symbol (CONFIG_ followed by A-Z, 0-9, _)")
        }
        guard !value.isEmpty else { throw KernelOptionSyntaxError(line: raw, reason: "empty value") }
        if value == "n" { return KernelOption(name: name, value: nil) }
        let quoted = value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2
        let plain = value.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        guard quoted || plain else {
            throw KernelOptionSyntaxError(line: raw, reason: "value '\(value)' must be y, m, n, a number or a quoted string")
        }
        return KernelOption(name: name, value: value)
    }

    static func isValidName(_ name: String) -> Bool {
        name.hasPrefix("CONFIG_") && name.count > 7
            && name.dropFirst(7).allSatisfy { ($0.isASCII && ($0.isUppercase || $0.isNumber)) || $0 == "_" || ($0.isASCII && $0.isLowercase) }
    }

    /// The line as a fragment or `.config` writes it.
    public var configLine: String {
        guard let value else { return "# \(name) is not set" }
        return "\(name)=\(value)"
    }

    public var description: String { configLine }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            guard let option = try KernelOption.parseLine(text) else {
                throw decoder.problem("'\(text)' is not an option line")
            }
            self = option
        } catch let error as KernelOptionSyntaxError {
            throw decoder.problem(error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(configLine)
    }
}

public struct KernelOptionSyntaxError: Error, CustomStringConvertible, Sendable {
    public var line: String
    public var reason: String
    public var description: String { "bad kernel option '\(line)': \(reason)" }
}

import Foundation
