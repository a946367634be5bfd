import Foundation
import KmatrixCore
import Testing

/// What an integration test needs from the machine: tools on `PATH`, files, fixtures of
/// the shared test cache. Locally a test whose needs are missing is skipped with the
/// reason, as `.enabled(if:)` does; under `CI=true` it runs and fails with that reason,
/// because in CI everything was installed and made first and a skip would hide a hole.
public struct Needs: TestTrait, SuiteTrait, TestScoping {
    /// One thing that must be there, and how a person gets it.
    public struct Item: Sendable {
        public var what: String
        public var isPresent: @Sendable () -> Bool

        public init(_ what: String, _ isPresent: @escaping @Sendable () -> Bool) {
            self.what = what
            self.isPresent = isPresent
        }
    }

    public var items: [Item]
    public var sourceLocation: SourceLocation
    public var isRecursive: Bool { true }

    /// `CI=true` (or `1`), as CI systems and `.ci/run` set it.
    public static var isCI: Bool { ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "") }

    /// What is missing, one line (empty when nothing is).
    public var missing: String { items.filter { !$0.isPresent() }.map(\.what).joined(separator: "; ") }

    public func prepare(for test: Test) async throws {
        let missing = missing
        // The skip itself is Swift Testing's own, so it is reported like any other.
        try await ConditionTrait.enabled(if: missing.isEmpty || Self.isCI, Comment(rawValue: "needs \(missing)")).prepare(for: test)
    }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? { test.isSuite ? nil : self }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let missing = missing
        guard missing.isEmpty else {
            Issue.record("CI=true and this integration test cannot run: needs \(missing)", sourceLocation: sourceLocation)
            return
        }
        try await function()
    }
}

extension Needs.Item {
    /// A program on `PATH` (Scripts/bootstrap installs every one the tests use).
    public static func tool(_ name: String) -> Self { .init(name) { ProcessRunner.which(name) != nil } }
    /// A file a package installs.
    public static func file(_ path: String, from package: String) -> Self {
        .init("\(path) (apt-get install \(package))") { FileManager.default.fileExists(atPath: path) }
    }
    /// A fixture of the shared test cache; `what` also says what makes it.
    public static func fixture(_ what: String, _ isPresent: @escaping @Sendable () -> Bool) -> Self {
        .init("\(what) in \(TestCache.shared.root)", isPresent)
    }

    /// The kmatrix executable beside the test bundle (`swift build --build-tests` builds both).
    public static var kmatrixBinary: Self {
        .init("the kmatrix binary (swift build --build-tests)") { TestCache.kmatrixBinary != nil }
    }
    public static var unpackedKernel: Self {
        fixture("the unpacked kernel source (made by kmatrix run; Scripts/test runs it first)") { TestCache.shared.unpackedKernel != nil }
    }
    public static var unpackedBusybox: Self {
        fixture("the unpacked busybox source (made by kmatrix run)") { TestCache.shared.unpackedBusybox != nil }
    }
    public static func busyboxInstall(_ debianArch: String) -> Self {
        fixture("the \(debianArch) busybox install (made by kmatrix run)") { TestCache.shared.busyboxInstall(debianArch: debianArch) != nil }
    }
    public static var probeKernel: Self {
        fixture("probe/vmlinuz (fetched by Scripts/bootstrap)") { TestCache.shared.probeKernel != nil }
    }
    public static func builtKernel(_ cell: String) -> Self {
        fixture("the built kernel of \(cell) (made by kmatrix run)") {
            TestCache.project?.cells.first { $0.id == cell }.flatMap(TestCache.shared.builtKernel) != nil
        }
    }
}

extension Trait where Self == Needs {
    /// `@Test(.needs(tools: ["make"], .unpackedKernel))`.
    public static func needs(tools: [String] = [], _ items: Needs.Item..., sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        Needs(items: tools.map(Needs.Item.tool) + items, sourceLocation: sourceLocation)
    }
}

/// PIDs (other than this test process) whose command line mentions `text`: what a test
/// started and must not leave behind.
public func processesMentioning(_ text: String) -> [Int] {
    otherProcesses().filter { commandLine(of: $0).contains(text) }
}

/// PIDs (other than this test process) that mention `folder` on their command line or
/// run in it (a compiler under `make O=` names its files relative to the build folder).
public func processesUsing(_ folder: String) -> [Int] {
    otherProcesses().filter { pid in
        let cwd = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")) ?? ""
        return cwd.hasPrefix(folder) || commandLine(of: pid).contains(folder)
    }
}

/// A process's command line with spaces between the arguments ("" once it is gone).
public func commandLine(of pid: Int) -> String {
    let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
    return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ")
}

private func otherProcesses() -> [Int] {
    let me = Int(getpid())
    return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int.init).filter { $0 != me }
}
