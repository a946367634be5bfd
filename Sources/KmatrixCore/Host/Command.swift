import Foundation

/// A command as an argv array plus environment changes: what kmatrix runs, what `plan`
/// prints, and what results record. Never a shell string built from data.
public struct Command: Sendable, Hashable, Codable, CustomStringConvertible {
    public var argv: [String]
    /// Variables set (or, with `nil`, removed) on top of the inherited environment.
    public var environment: [String: String?]
    public var workingDirectory: String?
    /// true: the command sees only `BuildEnvironment.allowed` of kmatrix's environment plus
    /// `environment` (builds, whose outputs must follow from their inputs alone); nil or
    /// false: kmatrix's environment plus `environment`.
    public var cleanEnvironment: Bool?

    public init(_ argv: [String], environment: [String: String?] = [:], workingDirectory: String? = nil, cleanEnvironment: Bool? = nil) {
        precondition(!argv.isEmpty, "a command needs an executable")
        self.argv = argv
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.cleanEnvironment = cleanEnvironment
    }

    public var executable: String { argv[0] }
    public var arguments: [String] { Array(argv.dropFirst()) }

    /// A line a person can paste into a shell.
    public var description: String {
        var parts: [String] = []
        if let workingDirectory { parts.append("cd \(shellQuote(workingDirectory)) &&") }
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            if let value { parts.append("\(key)=\(shellQuote(value))") }
        }
        parts += argv.map(shellQuote)
        return parts.joined(separator: " ")
    }
}

/// Quotes a word for POSIX sh only when it needs it, so printed commands stay readable.
public func shellQuote(_ word: String) -> String {
    let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// What a build may take from kmatrix's environment. Everything else (KCFLAGS, KCPPFLAGS,
/// LLVM_IAS, MAKEFLAGS, KBUILD_*, CROSS_COMPILE, ARCH …) would change the result without
/// changing a cache key; descriptors set such things explicitly (`makeVariables`).
public enum BuildEnvironment {
    public static let allowed: Set<String> = ["PATH", "HOME", "TMPDIR", "USER", "LOGNAME", "TERM"]
    /// ccache's and distcc's own settings (where the cache lives, which hosts compile)
    /// change speed, not output.
    public static let allowedPrefixes = ["CCACHE_", "DISTCC_"]

    public static func filtered(_ environment: [String: String]) -> [String: String] {
        environment.filter { key, _ in allowed.contains(key) || allowedPrefixes.contains { key.hasPrefix($0) } }
    }
}

extension Duration {
    /// The duration in seconds, for records and reports.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
