import Foundation
import KmatrixCore

/// The repository root, found from this file's path.
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    fatalError("no Package.swift above \(#filePath)")
}()

/// A throwaway copy of the shipped descriptors that a test may break.
public struct ScratchProject {
    public let root: String

    public init() throws {
        root = NSTemporaryDirectory() + "kmatrix-project-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        for item in ["Targets", "Toolchains", "matrix.json", "guest-tests"] {
            try fm.copyItem(atPath: "\(repositoryRoot)/\(item)", toPath: "\(root)/\(item)")
        }
    }

    public func read(_ file: String) throws -> String { try String(contentsOfFile: "\(root)/\(file)", encoding: .utf8) }
    public func write(_ file: String, _ text: String) throws {
        try text.write(toFile: "\(root)/\(file)", atomically: true, encoding: .utf8)
    }

    /// Replaces text that must be present (so a fixture cannot silently stop applying).
    public func edit(_ file: String, replacing old: String, with new: String) throws {
        let text = try read(file)
        guard text.contains(old) else { throw FixtureError(message: "\(file) does not contain \(old)") }
        try write(file, text.replacingOccurrences(of: old, with: new))
    }

    /// Edits the parsed JSON of a file.
    public func editJSON(_ file: String, _ change: (inout [String: Any]) -> Void) throws {
        var object = try JSONSerialization.jsonObject(with: Data(read(file).utf8)) as! [String: Any]
        change(&object)
        try write(file, String(decoding: JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted]), as: UTF8.self))
    }

    /// The errors loading this project gives (empty when it loads).
    public func loadErrors() -> [String] {
        do {
            _ = try Project.load(root: root)
            return []
        } catch {
            return error.errors.map(\.message)
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: root) }
}

public struct FixtureError: Error { public var message: String }
