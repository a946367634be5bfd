import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport

/// Runs the kmatrix binary on a private cache that reads the fixture cache (the shared
/// one the end-to-end runs filled) through `--cache-from`: nothing is built again, and
/// nothing is written into the fixture.
struct FixtureCommands {
    static let shared = Workspace(root: Workspace.defaultRoot())
    static let binary: String? = {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kmatrix").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    /// The newest finished (not interrupted) run of `matrix` in the fixture cache that `accept` takes.
    static func lastRun(_ matrix: String, where accept: (RunResults) -> Bool = { _ in true }) -> RunResults? {
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: shared.runs)) ?? []
        return runs.filter { $0 != "latest" }.sorted().reversed().lazy
            .compactMap { try? RunResults.load(from: "\(shared.runs)/\($0)") }
            .first { $0.run.matrix == matrix && !$0.run.interrupted && accept($0) }
    }

    /// The private cache: its own folder, with the fixture's source tarballs linked.
    let cache: String
    /// A stand-in for the fixture that holds all of it but the kinds left out (links).
    let upstream: String

    init(cache: String? = nil, leavingOut kinds: Set<StepKind> = []) throws {
        let fm = FileManager.default
        let id = UUID().uuidString
        self.cache = cache ?? NSTemporaryDirectory() + "kmatrix-fixture-\(id)"
        upstream = NSTemporaryDirectory() + "kmatrix-upstream-\(id)"
        try fm.createDirectory(atPath: self.cache, withIntermediateDirectories: true)
        // A cache kept between test runs has its link already.
        if (try? fm.destinationOfSymbolicLink(atPath: "\(self.cache)/sources")) == nil {
            try fm.createSymbolicLink(atPath: "\(self.cache)/sources", withDestinationPath: "\(Self.shared.root)/sources")
        }
        try fm.createDirectory(atPath: "\(upstream)/cache", withIntermediateDirectories: true)
        for kind in try fm.contentsOfDirectory(atPath: Self.shared.cache) where !kinds.map(\.rawValue).contains(kind) {
            try fm.createSymbolicLink(atPath: "\(upstream)/cache/\(kind)", withDestinationPath: "\(Self.shared.cache)/\(kind)")
        }
        try fm.createSymbolicLink(atPath: "\(upstream)/src", withDestinationPath: "\(Self.shared.root)/src")
    }

    /// `kmatrix <arguments> --project <project> --cache <cache> --cache-from <upstream>`.
    func run(_ arguments: [String], project: String = repositoryRoot) async throws -> (status: Int32, output: String) {
        try await TestProcess.run(Self.binary!, arguments + ["--project", project, "--cache", cache, "--cache-from", upstream],
                                  logPrefix: "kmatrix-fixture-log")
    }

    func remove() {
        // The upstream holds only links; the cache's published entries are read-only.
        try? FileManager.default.removeItem(atPath: upstream)
        TreePermissions.makeWritable(cache)
        try? FileManager.default.removeItem(atPath: cache)
    }
}
