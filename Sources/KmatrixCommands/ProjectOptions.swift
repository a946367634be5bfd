import ArgumentParser
import Foundation
import KmatrixCore

/// Where the descriptors are and which cells to act on: shared by every command.
struct ProjectOptions: ParsableArguments {
    @Option(help: "Project folder: its matrix.json (or kmatrix.json) and its own Targets/ and Toolchains/, which add to or replace the shipped ones (default: the current folder when it holds matrix.json or kmatrix.json, else the shipped descriptors).")
    var project: String?

    @Option(help: "The matrix file (default: matrix.json, else kmatrix.json, in the project folder).")
    var matrix: String?

    @Option(help: "kmatrix's cache and work folder (default: $KMATRIX_CACHE, else ~/.cache/kmatrix).")
    var cache: String?

    @Option(name: .customLong("target"), help: "Only cells of this target (repeatable).")
    var targets: [String] = []

    @Option(name: .customLong("toolchain"), help: "Only cells built with this toolchain (repeatable).")
    var toolchains: [String] = []

    @Option(name: .customLong("cell"), help: "Only this cell, as target/toolchain/profile/rootfs (repeatable).")
    var cells: [String] = []

    /// The names a project's matrix file may have, in the order they are looked for.
    static let matrixNames = ["matrix.json", "kmatrix.json"]

    /// The shipped descriptors (`$KMATRIX_DATA`, else found from the executable's location).
    func dataDirectory() throws -> String? { try DataDirectory.locate() }

    /// `--project`; else the current folder when it holds a matrix file; else the shipped
    /// descriptors, whose matrix.json is the example matrix; else the current folder.
    func projectRoot(dataDirectory: String?) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        if let project { return absolutePath(project, relativeTo: cwd) }
        if Self.matrixNames.contains(where: { FileManager.default.fileExists(atPath: (cwd as NSString).appendingPathComponent($0)) }) {
            return cwd
        }
        return dataDirectory ?? cwd
    }

    /// `--matrix` (relative to the current folder), else the project's first matrix file.
    func matrixFile(root: String) -> String? {
        if let matrix { return absolutePath(matrix, relativeTo: FileManager.default.currentDirectoryPath) }
        return Self.matrixNames.map { (root as NSString).appendingPathComponent($0) }
            .first { FileManager.default.fileExists(atPath: $0) }
    }

    func load() throws -> Project {
        let data = try dataDirectory()
        let root = projectRoot(dataDirectory: data)
        return try Project.load(root: root, matrixFile: matrixFile(root: root), dataDirectory: data)
    }

    func selectedCells(in project: Project) throws -> [Cell] {
        try project.select(targets: targets, toolchains: toolchains, cells: cells)
    }

    var workspace: Workspace {
        Workspace(root: cache.map { absolutePath($0, relativeTo: FileManager.default.currentDirectoryPath) } ?? Workspace.defaultRoot())
    }
}

/// JSON for `--json` outputs: stable key order, readable, dates in ISO 8601 as results.json has them.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// A `--json` document: one object whose `schema` names the command and a version
/// (`kmatrix-list/1`), followed by the value's own keys; docs/json-output.md lists them.
/// `value` must encode as an object (a keyed container), which every output type does.
func printJSON<T: Encodable>(_ value: T, schema: String) throws {
    try printJSON(SchemaTagged(schema: schema, value: value))
}

private struct SchemaTagged<T: Encodable>: Encodable {
    var schema: String
    var value: T

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        // JSONEncoder merges two keyed containers at one level into one object.
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(schema, forKey: Key(stringValue: "schema"))
        try value.encode(to: encoder)
    }
}


/// `run --json`: what the command prints for people goes to standard error until `end()`,
/// so standard output carries the JSON document alone.
final class StandardOutputOnStandardError {
    private let saved: Int32

    init() throws {
        fflush(nil)  // every stream: what print buffered goes where it was meant to
        saved = dup(STDOUT_FILENO)
        guard saved >= 0, dup2(STDERR_FILENO, STDOUT_FILENO) >= 0 else {
            throw KmatrixError.host("cannot point standard output at standard error: \(String(cString: strerror(errno)))")
        }
    }

    /// Standard output back where it was.
    func end() {
        fflush(nil)  // every stream: what print buffered goes where it was meant to
        dup2(saved, STDOUT_FILENO)
        close(saved)
    }
}
