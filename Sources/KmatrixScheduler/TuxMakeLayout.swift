import Foundation
import KmatrixCore
import KmatrixKernel

/// One cell's kernel build written as TuxMake writes a build's output directory, which
/// TuxRun and KernelCI's tooling read: `metadata.json` (the groups TuxMake documents:
/// build, compiler, results, vmlinux, artifacts), `config`, the kernel image, `dtbs/` and
/// `dtbs.tar.xz`, `modules.tar.xz`, `System.map`, `build.log`. The field names and shapes
/// are those TuxMake 1.45's `Build.collect_metadata` writes (`results.targets` as
/// `{status, duration}`, `results.duration`); TuxMake has no reader of its own to check against.
public enum TuxMakeLayout {
    /// TuxMake's metadata, the groups kmatrix can fill.
    public struct Metadata: Codable, Sendable, Equatable {
        public struct Build: Codable, Sendable, Equatable {
            public var targets: [String]
            public var target_arch: String
            public var toolchain: String
            public var kconfig: String
            public var kconfig_add: [String]
            public var jobs: Int?
            public var runtime: String
            public var wrapper: String
            /// kmatrix builds with a clean environment: only a toolchain's or profile's makeVariables reach make.
            public var environment: [String: String]
            public var verbose: Bool
        }
        public struct Compiler: Codable, Sendable, Equatable {
            public var name: String
            public var version: String
            public var version_full: String
        }
        public struct TargetResult: Codable, Sendable, Equatable {
            public var status: String
            public var duration: Double
        }
        public struct Results: Codable, Sendable, Equatable {
            public var status: String
            public var targets: [String: TargetResult]
            public var artifacts: [String: [String]]
            public var errors: Int
            public var warnings: Int
            public var duration: [String: Double]
        }
        public struct Vmlinux: Codable, Sendable, Equatable {
            public var text_size: UInt64
            public var data_size: UInt64
            public var bss_size: UInt64
            public var file_size: UInt64
        }
        public struct Artifacts: Codable, Sendable, Equatable {
            public var dtbs: [String]?
            public var modules: [String]?
        }
        public var build: Build
        public var compiler: Compiler
        public var results: Results
        public var vmlinux: Vmlinux?
        public var artifacts: Artifacts?
    }

    /// The folder a cell's build goes to under `--tuxmake-dir`: its id with `/` made `-`.
    public static func folderName(_ cellID: String) -> String { cellID.replacingOccurrences(of: "/", with: "-") }

    /// Writes `record` (a finished build) into `directory`, replacing what was there.
    public static func write(_ record: KernelBuildRecord, cell: Cell, to directory: String) async throws(KmatrixError) -> Metadata {
        let fm = FileManager.default
        try? fm.removeItem(atPath: directory)
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(directory)", underlying: error)
        }
        func copy(_ source: String?, as name: String) throws(KmatrixError) -> String? {
            guard let source, fm.fileExists(atPath: source) else { return nil }
            do { try fm.copyItem(atPath: source, toPath: "\(directory)/\(name)") } catch {
                throw .host("cannot copy \(source) to \(directory)/\(name)", underlying: error)
            }
            // Cache entries are read-only; the copy belongs to the user.
            try? fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(directory)/\(name)")
            return name
        }
        var artifacts: [String: [String]] = [:]
        var targets: [String: Metadata.TargetResult] = [:]
        let status = record.succeeded ? "PASS" : "FAIL"
        if let config = try copy(record.artifacts.config, as: "config") {
            artifacts["config"] = [config]
            targets["config"] = .init(status: "PASS", duration: record.configureSeconds)
        }
        if let image = try copy(record.artifacts.image, as: (record.artifacts.image.map { ($0 as NSString).lastPathComponent }) ?? "") {
            artifacts["kernel"] = [image]
        }
        targets["kernel"] = .init(status: artifacts["kernel"] == nil ? "FAIL" : status, duration: record.buildSeconds)
        _ = try copy(record.artifacts.systemMap, as: "System.map")
        if let log = try copy(record.artifacts.buildLog, as: "build.log") { artifacts["log"] = [log] }

        var metadataArtifacts = Metadata.Artifacts()
        if !record.artifacts.dtbs.isEmpty {
            do { try fm.createDirectory(atPath: "\(directory)/dtbs", withIntermediateDirectories: true) } catch {
                throw .host("cannot create \(directory)/dtbs", underlying: error)
            }
            for (name, path) in record.artifacts.dtbs.sorted(by: { $0.key < $1.key }) { _ = try copy(path, as: "dtbs/\(name)") }
            try await tar(["-cJf", "\(directory)/dtbs.tar.xz", "-C", directory, "dtbs"])
            artifacts["dtbs"] = ["dtbs.tar.xz"]
            metadataArtifacts.dtbs = record.artifacts.dtbs.keys.sorted().map { "dtbs/\($0)" }
            targets["dtbs"] = .init(status: "PASS", duration: 0)
        }
        if let modules = record.artifacts.modules, fm.fileExists(atPath: modules) {
            // The staged tree is <staging>/lib/modules: the tarball holds lib/modules/<release>/….
            let staging = ((modules as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
            try await tar(["-cJf", "\(directory)/modules.tar.xz", "-C", staging, "lib"])
            artifacts["modules"] = ["modules.tar.xz"]
            let files = (fm.enumerator(atPath: modules)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".ko") }.sorted()
            metadataArtifacts.modules = files.map { "lib/modules/\($0)" }
            targets["modules"] = .init(status: "PASS", duration: 0)
        }

        var vmlinux: Metadata.Vmlinux?
        if let path = record.artifacts.vmlinux, let sizes = try? SectionSizes.read(elf: path),
           let bytes = (try? fm.attributesOfItem(atPath: path)[.size] as? UInt64) {
            vmlinux = .init(text_size: sizes.text, data_size: sizes.data, bss_size: sizes.bss, file_size: bytes)
        }
        let requested = (cell.target.kernel.options + cell.target.userspace.kernelOptions + cell.rootDevice.kernelOptions
                         + cell.profile.options + cell.extraOptions).map(\.configLine)
        let metadata = Metadata(
            build: .init(targets: targets.keys.sorted(), target_arch: record.arch, toolchain: record.toolchain.name,
                         kconfig: cell.profile.baseIsMakeTarget && cell.profile.base == "defconfig" ? cell.target.kernel.defconfig : cell.profile.base,
                         kconfig_add: cell.profile.fragments + requested, jobs: record.jobs, runtime: "null",
                         wrapper: record.ccache ? "ccache" : "none",
                         environment: cell.toolchain.makeVariables.merging(cell.profile.makeVariables) { $1 }, verbose: false),
            compiler: .init(name: (record.toolchain.compiler as NSString).lastPathComponent, version: record.toolchain.version,
                            version_full: "\(record.toolchain.compiler) \(record.toolchain.version)"),
            results: .init(status: status, targets: targets, artifacts: artifacts, errors: record.errors, warnings: record.warnings,
                           duration: ["build": record.configureSeconds + record.buildSeconds]),
            vmlinux: vmlinux, artifacts: metadataArtifacts.dtbs == nil && metadataArtifacts.modules == nil ? nil : metadataArtifacts)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { try encoder.encode(metadata).write(to: URL(fileURLWithPath: "\(directory)/metadata.json")) } catch {
            throw .host("cannot write \(directory)/metadata.json", underlying: error)
        }
        return metadata
    }

    static func tar(_ arguments: [String]) async throws(KmatrixError) {
        let result = try await ProcessRunner.capture(Command(["tar"] + arguments, environment: ["XZ_OPT": "-T0"]), timeout: .seconds(600))
        guard result.termination.succeeded else {
            throw .host("tar \(arguments.joined(separator: " ")): \(result.termination): \(result.standardError)")
        }
    }
}
