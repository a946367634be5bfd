import Foundation
import Testing

/// The Python of the test tools' venv (Scripts/test makes it in ~/.cache/kmatrix-test-tools
/// and exports KMATRIX_TEST_PYTHON): junitparser, check-jsonschema.
public enum TestPython {
    public static let path: String = ProcessInfo.processInfo.environment["KMATRIX_TEST_PYTHON"]
        ?? "\(FileManager.default.homeDirectoryForCurrentUser.path)/.cache/kmatrix-test-tools/bin/python"

    /// A program the venv installed beside its Python (`check-jsonschema`).
    public static func tool(_ name: String) -> String { "\((path as NSString).deletingLastPathComponent)/\(name)" }

    /// Runs the venv's Python (or one of its tools) and returns its status and output (stdout then stderr).
    public static func run(_ executable: String = path, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    public static func has(module: String) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: path) else { return false }
        return (try? run(path, ["-c", "import \(module)"]))?.status == 0
    }
}

extension Needs.Item {
    /// A module in the test tools' venv (Scripts/test installs it).
    public static func pythonModule(_ module: String) -> Self {
        .init("the Python module \(module) in \(TestPython.path) (Scripts/test installs it; KMATRIX_TEST_PYTHON)") { TestPython.has(module: module) }
    }
}

extension Trait where Self == Needs {
    /// `.needs(tools:_:)` with the items as an array (some are computed per cell).
    public static func needs(tools: [String] = [], all items: [Needs.Item], sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        Needs(items: tools.map(Needs.Item.tool) + items, sourceLocation: sourceLocation)
    }
}
