import Foundation
import KmatrixCore

/// Why a cell's kernel failed. The kind is the classification results and `expect` use.
public struct KernelFailure: Sendable, Codable, Equatable, CustomStringConvertible {
    public var kind: FailureClass
    public var message: String
    /// The last lines of the log (or the list of dropped options).
    public var excerpt: [String]

    public init(_ kind: FailureClass, _ message: String, excerpt: [String] = []) {
        self.kind = kind
        self.message = message
        self.excerpt = excerpt
    }

    public var description: String {
        ([ "\(kind.rawValue): \(message)" ] + excerpt.map { "  " + $0 }).joined(separator: "\n")
    }
}

/// The outcome of the configure step: the verified `.config`, or why it was rejected.
public struct KernelConfiguration: Sendable, Codable, Equatable {
    public var inputsFingerprint: String
    /// The final `.config` in the build directory.
    public var configPath: String
    /// sha256 of the final `.config`; `nil` when none was produced.
    public var configSHA256: String?
    public var requestedCount: Int
    public var mismatches: [OptionMismatch]
    public var hasModules: Bool
    public var seconds: Double
    public var log: String
    public var failure: KernelFailure?

    public var succeeded: Bool { failure == nil }
}

/// The paths of one cell's kernel artifacts, in the output folder.
public struct KernelArtifacts: Sendable, Codable, Equatable {
    public var directory: String
    public var image: String?
    public var vmlinux: String?
    public var systemMap: String?
    public var config: String?
    /// DTB file name (as the target names it) to its copy.
    public var dtbs: [String: String]
    /// The staged `lib/modules` tree, when the config has modules.
    public var modules: String?
    public var buildLog: String?
    public var configLog: String?

    public init(directory: String) {
        self.directory = directory
        dtbs = [:]
    }
}

/// What kmatrix records about one cell's kernel, written as `kernel.json` beside the artifacts.
public struct KernelBuildRecord: Sendable, Codable, Equatable {
    public var cell: String
    public var target: String
    public var arch: String
    public var toolchain: ToolchainIdentity
    /// The source's identity (tarball sha256) and the tree built from.
    public var sourceSHA256: String
    public var sourceTree: String
    public var buildDirectory: String
    public var configFingerprint: String
    public var buildFingerprint: String?
    public var configSHA256: String?
    public var jobs: Int?
    public var ccache: Bool
    /// ccache's hits and misses in this build (nil without ccache).
    public var ccacheStats: CcacheStats?
    /// make rewrote the verified config (the environment Kconfig saw differs from the one
    /// it was made in): the config is stale and must be made again.
    public var staleConfig: Bool?
    public var configureSeconds: Double
    public var buildSeconds: Double
    /// User + system CPU time of the make processes (this process's reaped children:
    /// exact when cells build one at a time).
    public var buildCPUSeconds: Double
    public var imageBytes: UInt64?
    public var warnings: Int
    public var errors: Int
    public var modules: Bool
    public var mismatches: [OptionMismatch]
    public var artifacts: KernelArtifacts
    public var failure: KernelFailure?

    public var succeeded: Bool { failure == nil }
}

/// Counts and excerpts from a build log, read in chunks (a defconfig log runs to megabytes).
public struct BuildLogSummary: Sendable, Equatable {
    public var warnings = 0
    public var errors = 0
    /// The first lines that carry an error (usually the cause).
    public var firstErrors: [String] = []
    /// The first warning lines, for the report (a new warning usually shows first).
    public var firstWarnings: [String] = []
    /// The last lines of the log.
    public var tail: [String] = []

    public init() {}

    public static func scan(_ path: String, tailLines: Int = 30, errorLines: Int = 10) -> BuildLogSummary {
        var summary = BuildLogSummary()
        guard let handle = FileHandle(forReadingAtPath: path) else { return summary }
        defer { try? handle.close() }
        var pending = Data()
        func take(_ lineData: Data) {
            let line = String(decoding: lineData, as: UTF8.self)
            summary.add(line, tailLines: tailLines, errorLines: errorLines)
        }
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            pending.append(chunk)
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                take(pending[start..<newline])
                start = pending.index(after: newline)
            }
            pending = Data(pending[start...])
        }
        if !pending.isEmpty { take(pending) }
        return summary
    }

    public static func scan(text: String, tailLines: Int = 30, errorLines: Int = 10) -> BuildLogSummary {
        var summary = BuildLogSummary()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            summary.add(String(line), tailLines: tailLines, errorLines: errorLines)
        }
        return summary
    }

    mutating func add(_ line: String, tailLines: Int, errorLines: Int) {
        // make's own remarks (`make[2]: warning: -j0 forced`) are about the jobserver, not the code.
        let fromMake = line.hasPrefix("make: ") || (line.hasPrefix("make[") && line.contains("]: warning:"))
        if !fromMake, line.contains(": warning:") || line.hasPrefix("WARNING:") {
            warnings += 1
            if firstWarnings.count < errorLines { firstWarnings.append(line) }
        }
        if line.contains(": error:") || line.contains(": fatal error:") || line.contains("undefined reference to") {
            errors += 1
            if firstErrors.count < errorLines { firstErrors.append(line) }
        }
        tail.append(line)
        if tail.count > tailLines { tail.removeFirst(tail.count - tailLines) }
    }
}
