/// The one error type the tool reports to people. `kind` decides the exit status,
/// `message` says what and where, `underlying` keeps the cause for logs.
public struct KmatrixError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, Codable {
        /// Malformed descriptors, unknown names, bad command-line values: exit 2, nothing run.
        case badInput = "bad-input"
        /// The host failed: a missing tool, a full disk, a source that cannot be read: exit 3.
        case hostFailure = "host-failure"
        /// The work ran and some cell failed: exit 1.
        case cellFailure = "cell-failure"
        /// SIGINT or SIGTERM: exit 130.
        case interrupted
    }

    public var kind: Kind
    public var message: String
    public var underlying: String?

    public init(_ kind: Kind, _ message: String, underlying: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        self.underlying = underlying.map { String(describing: $0) }
    }

    public static func badInput(_ message: String) -> KmatrixError { .init(.badInput, message) }
    public static func host(_ message: String, underlying: (any Error)? = nil) -> KmatrixError {
        .init(.hostFailure, message, underlying: underlying)
    }

    public var exitCode: Int32 {
        switch kind {
        case .cellFailure: 1
        case .badInput: 2
        case .hostFailure: 3
        case .interrupted: 130
        }
    }

    public var description: String {
        if let underlying { return "\(message): \(underlying)" }
        return message
    }
}

/// Several independent problems found in one pass (every bad field of every descriptor),
/// printed one per line so a user fixes them all at once.
public struct KmatrixErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [KmatrixError]
    public init(_ errors: [KmatrixError]) { self.errors = errors }

    public var exitCode: Int32 { errors.map(\.exitCode).max() ?? 1 }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
