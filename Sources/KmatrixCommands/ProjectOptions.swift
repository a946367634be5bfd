import ArgumentParser
import Foundation
import KmatrixCore

/// Where the descriptors are and which cells to act on: shared by every command.
struct ProjectOptions: ParsableArguments {
    @Option(help: "Project folder holding Targets/, Toolchains/ and matrix.json.")
    var project: String = "."

    @Option(help: "The matrix file (default: matrix.json in the project folder).")
    var matrix: String?

    @Option(help: "kmatrix's cache and work folder (default: $KMATRIX_CACHE, else ~/.cache/kmatrix).")
    var cache: String?

    @Option(name: .customLong("target"), help: "Only cells of this target (repeatable).")
    var targets: [String] = []

    @Option(name: .customLong("toolchain"), help: "Only cells built with this toolchain (repeatable).")
    var toolchains: [String] = []

    @Option(name: .customLong("cell"), help: "Only this cell, as target/toolchain/profile/rootfs (repeatable).")
    var cells: [String] = []

    var projectRoot: String { absolutePath(project, relativeTo: FileManager.default.currentDirectoryPath) }

    func load() throws -> Project {
        try Project.load(root: projectRoot, matrixFile: matrix)
    }

    func selectedCells(in project: Project) throws -> [Cell] {
        try project.select(targets: targets, toolchains: toolchains, cells: cells)
    }

    var workspace: Workspace {
        Workspace(root: cache.map { absolutePath($0, relativeTo: FileManager.default.currentDirectoryPath) } ?? Workspace.defaultRoot())
    }
}

/// JSON for `--json` outputs: stable key order, readable.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}
