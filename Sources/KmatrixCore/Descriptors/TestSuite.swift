import Foundation

/// A test suite run inside the guest, as `matrix.json`'s `tests` defines it:
/// `{"kunit": ["CONFIG_KUNIT=y", "CONFIG_LIST_KUNIT_TEST=y"]}` (options merged into the
/// kernel config and verified like every other; the kernel runs the tests at boot and
/// prints KTAP) or `{"scripts": ["guest-tests/cpuinfo.sh"]}` (files copied into the rootfs
/// and run by init after the marker, each within `timeoutSeconds`).
public struct TestSuite: Sendable, Equatable, Codable {
    public var kunit: [KernelOption]
    /// Paths relative to the matrix file.
    public var scripts: [String]
    /// Each script's time limit in the guest.
    public var timeoutSeconds: Int
    public var description: String

    public static let defaultTimeoutSeconds = 60

    enum CodingKeys: String, CodingKey, CaseIterable { case kunit, scripts, timeoutSeconds, description }

    public init(kunit: [KernelOption] = [], scripts: [String] = [], timeoutSeconds: Int = TestSuite.defaultTimeoutSeconds, description: String = "") {
        self.kunit = kunit
        self.scripts = scripts
        self.timeoutSeconds = timeoutSeconds
        self.description = description
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kunit = try c.value(.kunit, default: [])
        scripts = try c.value(.scripts, default: [])
        timeoutSeconds = try c.value(.timeoutSeconds, default: Self.defaultTimeoutSeconds)
        description = try c.value(.description, default: "")
        guard !kunit.isEmpty || !scripts.isEmpty else {
            throw decoder.problem("a test suite needs 'kunit' options or 'scripts'")
        }
        guard (1...3600).contains(timeoutSeconds) else {
            throw decoder.problem("\(timeoutSeconds) is not a time limit in seconds (1 to 3600)", at: CodingKeys.timeoutSeconds)
        }
        // A script's file name names its test on the console and in the guest's paths.
        for script in scripts where !Self.isValidScriptName((script as NSString).lastPathComponent) {
            throw decoder.problem("'\(script)': a script's file name must be letters, digits, '_', '-', '.' (it names the test)", at: CodingKeys.scripts)
        }
        let names = scripts.map { ($0 as NSString).lastPathComponent }
        if let twice = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw decoder.problem("two scripts are named '\(twice)': a suite's tests need distinct names", at: CodingKeys.scripts)
        }
    }

    static func isValidScriptName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.hasPrefix("-")
            && name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "_-.".contains($0) }
    }
}

/// A suite as a cell runs it: its name, definition and the scripts' absolute paths.
public struct CellTestSuite: Sendable, Equatable {
    public var name: String
    public var suite: TestSuite
    public var scriptPaths: [String]

    /// The name each script's test goes by: its file name.
    public var scriptNames: [String] { scriptPaths.map { ($0 as NSString).lastPathComponent } }
}

extension Project {
    /// The suites a cell runs: its profile's, then its entry's, each once. Unknown names and
    /// missing scripts are problems naming the file and field.
    static func testSuites(profile: String, spec: CellSpec, at: String, matrix: Matrix, root: String,
                           problems: inout [DescriptorError]) -> [CellTestSuite] {
        let named = [(matrix.profiles[profile]?.tests ?? [], "profiles.\(profile).tests"), (spec.tests, "\(at).tests")]
        var suites: [CellTestSuite] = []
        for (names, field) in named {
            for name in names where !suites.contains(where: { $0.name == name }) {
                guard let suite = matrix.tests[name] else {
                    var message = "unknown test suite '\(name)'"
                    if let near = nearest(name, in: Array(matrix.tests.keys)) { message += " (did you mean '\(near)'?)" }
                    message += matrix.tests.isEmpty ? "; the matrix defines no 'tests'" : "; known: \(matrix.tests.keys.sorted().joined(separator: ", "))"
                    if !problems.contains(where: { $0.field == field && $0.message == message }) {
                        problems.append(DescriptorError(file: matrix.file, field: field, message: message))
                    }
                    continue
                }
                suites.append(CellTestSuite(name: name, suite: suite,
                                            scriptPaths: suite.scripts.map { resolveFragment($0, descriptor: matrix.file, root: root) }))
            }
        }
        return suites
    }

    /// Every suite's scripts exist and are files: checked once, not per cell.
    static func checkTestSuites(_ matrix: Matrix, root: String, problems: inout [DescriptorError]) {
        for (name, suite) in matrix.tests.sorted(by: { $0.key < $1.key }) {
            if !isValidName(name) {
                problems.append(DescriptorError(file: matrix.file, field: "tests", message: "'\(name)' is not a valid test suite name (letters, digits, '_', '-')"))
            }
            for (index, script) in suite.scripts.enumerated() {
                let full = resolveFragment(script, descriptor: matrix.file, root: root)
                var isDir: ObjCBool = false
                if !FileManager.default.fileExists(atPath: full, isDirectory: &isDir) || isDir.boolValue {
                    problems.append(DescriptorError(file: matrix.file, field: "tests.\(name).scripts[\(index)]",
                                                    message: "script '\(script)' does not exist (looked at \(full))"))
                }
            }
        }
    }
}

extension Cell {
    /// Whether init runs scripts after the marker (the boot then waits for them).
    public var hasGuestScripts: Bool { tests.contains { !$0.scriptPaths.isEmpty } }

    /// The longest the scripts may take in the guest, for the boot's deadline.
    public var guestScriptSeconds: Double {
        Double(tests.reduce(0) { $0 + $1.scriptPaths.count * $1.suite.timeoutSeconds })
    }
}
