import Foundation
import KmatrixCore
import KmatrixCrypto

/// What one busybox build produced (or found already built), for results and caching.
public struct BusyboxBuildRecord: Sendable, Codable, Equatable {
    public var debianArch: String
    public var toolchain: String
    public var crossCompile: String?
    /// `<crossCompile>gcc -dumpfullversion`.
    public var compilerVersion: String
    public var sourceTree: String
    public var buildDirectory: String
    public var installDirectory: String
    /// `<installDirectory>/bin/busybox`.
    public var binary: String
    public var configLines: [String]
    /// Hash of everything the build depends on; a record with the same hash is reused.
    public var inputsHash: String
    /// How long this call took (seconds when it reused a build).
    public var durationSeconds: Double
    /// How long the build itself took, when it ran.
    public var buildSeconds: Double
    /// True when this call found the build done and ran nothing.
    public var reused: Bool
    /// Compiler warnings from the log (deduplicated, at most 50).
    public var warnings: [String]
    public var log: String
    public var elf: ELFHeader
}

/// How the caller wants make run: extra environment (a jobserver's MAKEFLAGS), extra
/// make arguments, and a wrapper for the compile step (`Jobserver.wrap`).
public struct BusyboxBuildSettings: Sendable {
    public var environment: [String: String?]
    public var makeArguments: [String]
    public var wrap: @Sendable (Command) -> Command
    public var timeout: Duration
    /// Reuse a finished build with the same inputs instead of running make again.
    public var reuse: Bool

    public init(environment: [String: String?] = [:], makeArguments: [String] = [],
                wrap: @escaping @Sendable (Command) -> Command = { $0 }, timeout: Duration = .seconds(1800), reuse: Bool = true) {
        self.environment = environment
        self.makeArguments = makeArguments
        self.wrap = wrap
        self.timeout = timeout
        self.reuse = reuse
    }
}

public enum BusyboxBuilder {
    /// Everything the build depends on; a record with the same hash is reused.
    public static func inputsHash(_ plan: BusyboxPlan, sourceSha256: String, compilerVersion: String, libc: String,
                                  makeArguments: [String] = []) -> String {
        // The base joins the inputs only when it is not busybox's defconfig, so the keys of
        // builds from defconfig stay what they were before the base could be chosen.
        let base = plan.base == BusyboxSpec.defaultBase ? [] : ["base \(plan.base)"]
        let inputs = ["busybox-build-v3", sourceSha256, plan.crossCompile ?? "", plan.compiler, compilerVersion, "libc \(libc)"]
            + base + plan.configLines + makeArguments
        return SHA256.hex(inputs.joined(separator: "\n"))
    }

    /// The identity of the static C library `compiler` links busybox against: the sha256
    /// of its libc.a (nil when it has none).
    public static func libcIdentity(_ compiler: String) async -> String? {
        guard let output = try? await ProcessRunner.capture(Command([compiler, "-print-file-name=libc.a"]), timeout: .seconds(120)) else { return nil }
        let path = output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        guard path.hasPrefix("/") else { return nil }
        return try? await Blocking.run { () throws(KmatrixError) -> String in
            do { return try FileDigests.shared.sha256(path) } catch { throw .host("cannot read \(path)") }
        }
    }

    /// The record of a finished build, beside the install directory.
    public static func recordPath(_ plan: BusyboxPlan) -> String { "\(plan.buildDirectory)/kmatrix-busybox.json" }

    /// Unpacks the busybox tarball once (`src/busybox-<sha16>`), or uses a tree in place.
    public static func prepareSource(_ source: ResolvedSource, workspace: Workspace) async throws(KmatrixError) -> String {
        try await SourceTree.prepare(source, workspace: workspace, name: "busybox")
    }

    /// Configures (the base config + `plan.configLines`, checked after oldconfig), builds and
    /// installs busybox out of tree, appending every command's output to `logPath`, then
    /// checks the binary's ELF header against `expect` (machine, class, static).
    /// `libcPackage` (the toolchain's `ToolchainArch.libcPackage`) names what to install
    /// when the compiler finds no static libc.
    public static func build(_ plan: BusyboxPlan, debianArch: String, toolchain: String, expect: UserspaceSpec?,
                             sourceSha256: String, logPath: String? = nil, libcPackage: String? = nil,
                             settings: BusyboxBuildSettings = BusyboxBuildSettings()) async throws(KmatrixError) -> BusyboxBuildRecord {
        let start = ContinuousClock.now
        let fm = FileManager.default
        guard fm.fileExists(atPath: "\(plan.sourceTree)/Makefile") else {
            throw .host("the busybox source tree \(plan.sourceTree) is missing (no Makefile): unpack the busybox source first")
        }
        let compiler = plan.compiler
        guard ProcessRunner.which(compiler) != nil else {
            throw .host("\(compiler) is not installed: busybox for \(debianArch) needs it")
        }
        // A static busybox links the target's libc.a; gcc prints the bare name when it has none.
        let libc = try await ProcessRunner.capture(Command([compiler, "-print-file-name=libc.a"]), timeout: .seconds(120))
        guard libc.termination.succeeded else {
            throw .host("\(compiler) -print-file-name=libc.a: \(libc.termination)\(libc.standardError.isEmpty ? "" : ": \(libc.standardError)")")
        }
        guard libc.standardOutput.hasPrefix("/") else {
            let install = libcPackage.map { "install \($0)" } ?? "install the static C library for \(debianArch) (the toolchain's libcPackage)"
            throw .host("\(compiler) finds no static C library (libc.a) for \(debianArch): \(install)")
        }
        let compilerVersion = try await CompilerVersion.probe(compiler, arguments: plan.versionArguments)
        guard let libcIdentity = await libcIdentity(compiler) else { throw .host("cannot read the static C library \(compiler) links") }
        let inputsHash = Self.inputsHash(plan, sourceSha256: sourceSha256, compilerVersion: compilerVersion, libc: libcIdentity,
                                         makeArguments: settings.makeArguments)
        let log = logPath ?? "\(plan.buildDirectory)/build.log"
        let binary = "\(plan.installDirectory)/bin/busybox"

        do { try fm.createDirectory(atPath: plan.buildDirectory, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(plan.buildDirectory)", underlying: error)
        }
        // One build per directory at a time, across processes.
        let lock = try await FileLock.acquire("\(plan.buildDirectory).lock", timeout: settings.timeout)
        defer { lock.release() }

        if settings.reuse, let data = fm.contents(atPath: recordPath(plan)),
           var previous = try? JSONDecoder().decode(BusyboxBuildRecord.self, from: data),
           previous.inputsHash == inputsHash, fm.isExecutableFile(atPath: binary) {
            previous.reused = true
            previous.durationSeconds = (ContinuousClock.now - start).seconds
            previous.elf = try ELFHeader.read(binary)
            try check(previous.elf, expect, binary)
            return previous
        }
        try? fm.removeItem(atPath: recordPath(plan))
        let logFolder = (log as NSString).deletingLastPathComponent
        try? fm.createDirectory(atPath: logFolder, withIntermediateDirectories: true)
        let logStart = (try? fm.attributesOfItem(atPath: log)[.size] as? UInt64) ?? 0

        func run(_ command: Command, _ step: String) async throws(KmatrixError) {
            var command = command
            for (key, value) in settings.environment { command.environment[key] = value }
            appendLog(log, "\n$ \(command)\n")
            let termination = try await ProcessRunner.run(command, logPath: log, timeout: settings.timeout)
            guard termination.succeeded else {
                if termination == .signaled(SIGTERM) || termination == .signaled(SIGKILL), Task.isCancelled {
                throw KmatrixError(.interrupted, "busybox \(step) for \(debianArch) (\(toolchain)) was stopped")
            }
            throw KmatrixError(.cellFailure, "busybox \(step) for \(debianArch) (\(toolchain)) failed: \(termination); last lines of \(log):\n\(tail(log, lines: 15))")
            }
        }

        // Exactly `plan.commands` (what `kmatrix plan` prints), with the .config edits between them.
        let commands = plan.commands(makeArguments: settings.makeArguments)
        try await run(commands[0], plan.base)
        try rewriteConfig("\(plan.buildDirectory)/.config", plan.configLines)
        try await run(commands[1], "oldconfig")
        try verifyConfig("\(plan.buildDirectory)/.config", plan.configLines, debianArch: debianArch)
        try await run(settings.wrap(commands[2]), "build")
        try? fm.removeItem(atPath: plan.installDirectory)
        try await run(commands[3], "install")

        guard fm.isExecutableFile(atPath: binary) else {
            throw .host("busybox install for \(debianArch) left no \(binary); see \(log)")
        }
        let elf = try ELFHeader.read(binary)
        try check(elf, expect, binary)
        let record = BusyboxBuildRecord(
            debianArch: debianArch, toolchain: toolchain, crossCompile: plan.crossCompile, compilerVersion: compilerVersion,
            sourceTree: plan.sourceTree, buildDirectory: plan.buildDirectory, installDirectory: plan.installDirectory,
            binary: binary, configLines: plan.configLines, inputsHash: inputsHash,
            durationSeconds: (ContinuousClock.now - start).seconds, buildSeconds: (ContinuousClock.now - start).seconds, reused: false,
            warnings: warnings(log, from: logStart), log: log, elf: elf)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { try encoder.encode(record).write(to: URL(fileURLWithPath: recordPath(plan)), options: .atomic) } catch {
            throw .host("cannot write \(recordPath(plan))", underlying: error)
        }
        return record
    }

    /// The binary must be what the target runs: the right machine and class, static.
    static func check(_ elf: ELFHeader, _ expect: UserspaceSpec?, _ binary: String) throws(KmatrixError) {
        guard elf.isStatic else { throw KmatrixError(.cellFailure, "\(binary) is dynamically linked; CONFIG_STATIC did not take") }
        guard let expect else { return }
        guard elf.machine == expect.elfMachine, elf.elfClass == expect.elfClass else {
            throw KmatrixError(.cellFailure, "\(binary) is an ELF\(elf.elfClass) \(elf.machine) binary, the target needs ELF\(expect.elfClass) \(expect.elfMachine)")
        }
    }

    /// Replaces or appends each requested line in `.config`.
    static func rewriteConfig(_ path: String, _ lines: [String]) throws(KmatrixError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .host("busybox's base config (make defconfig or allnoconfig) wrote no \(path)", underlying: error)
        }
        let names = Set(lines.compactMap(BusyboxPlan.optionName))
        var kept = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { line in BusyboxPlan.optionName(line).map { !names.contains($0) } ?? true }
        while kept.last == "" { kept.removeLast() }
        let result = (kept + ["# kmatrix"] + lines).joined(separator: "\n") + "\n"
        do { try result.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw .host("cannot write \(path)", underlying: error)
        }
    }

    /// Kconfig drops what it cannot satisfy without a word: compare with what was asked.
    static func verifyConfig(_ path: String, _ lines: [String], debianArch: String) throws(KmatrixError) {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var actual: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if let name = BusyboxPlan.optionName(String(line)) { actual[name] = String(line) }
        }
        var missing: [String] = []
        for line in lines {
            guard let name = BusyboxPlan.optionName(line) else { continue }
            let off = line.hasPrefix("#") || line.hasSuffix("=n")
            let got = actual[name]
            if off ? (got != nil && !got!.hasPrefix("#")) : got != line {
                missing.append("\(line) (got \(got ?? "nothing"))")
            }
        }
        guard missing.isEmpty else {
            throw KmatrixError(.cellFailure, "busybox for \(debianArch): the configuration did not keep \(missing.joined(separator: ", ")); check matrix.json busybox.options")
        }
    }

    static func appendLog(_ path: String, _ text: String) {
        guard let handle = FileHandle(forWritingAtPath: path) ?? {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)
        }() else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(text.utf8))
    }

    static func tail(_ path: String, lines: Int) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    static func warnings(_ path: String, from offset: UInt64) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        let text = String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
        var seen = Set<String>()
        var result: [String] = []
        for line in text.split(separator: "\n") where line.contains("warning:") {
            let entry = String(line)
            if seen.insert(entry).inserted { result.append(entry) }
            if result.count == 50 { break }
        }
        return result
    }
}
