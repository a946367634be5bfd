import CArchive

/// A libarchive failure: what kmatrix was doing, on which archive (and entry), and
/// libarchive's own explanation (`archive_error_string`).
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var entry: String?
    public var message: String

    public init(_ operation: String, path: String, entry: String? = nil, message: String) {
        self.operation = operation
        self.path = path
        self.entry = entry
        self.message = message
    }

    public var description: String {
        var text = "\(operation) \(path)"
        if let entry { text += " (entry \(entry))" }
        return text + ": " + message
    }

    /// The handle's last error message, or a fallback naming the return code.
    static func message(_ handle: OpaquePointer, code: Int32) -> String {
        if let text = archive_error_string(handle) { return String(cString: text) }
        return "libarchive returned \(code)"
    }
}
