import ArgumentParser
import Foundation
import KmatrixBoot
import KmatrixCore

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that every selected cell can run here: toolchains, QEMU, firmware, build dependencies, sources, and whether KVM really works.",
        discussion: "Prints one apt-get line for everything missing; exits 3 when some cell cannot run.")

    @OptionGroup var options: ProjectOptions
    @Flag(help: "Print JSON (schema kmatrix-doctor/1).") var json = false

    func run() async throws {
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        let report = await Doctor.examine(project: project, cells: cells, workspace: options.workspace)
        // Stopped by a signal: half the checks say "interrupted", which is no report.
        try Task.checkCancellation()
        if json { try printJSON(report, schema: "kmatrix-doctor/1") } else { print(report.text) }
        if !report.ready { throw ExitCode(3) }
    }
}

/// The findings of `kmatrix doctor`.
public struct DoctorReport: Sendable, Encodable {
    public struct Check: Sendable, Encodable {
        public var group: String
        public var name: String
        public var ok: Bool
        public var detail: String
        public var packages: [String]
    }
    public struct CellReadiness: Sendable, Encodable {
        public var cell: String
        public var ready: Bool
        public var accelerator: Accelerator
        public var compiler: String
        public var qemu: String
        public var missing: [String]
    }

    public var checks: [Check]
    public var kvm: KvmProbe
    public var cells: [CellReadiness]
    public var ready: Bool { cells.allSatisfy(\.ready) }
    public var missingPackages: [String] { Array(Set(checks.filter { !$0.ok }.flatMap(\.packages))).sorted() }
    /// Failed checks that no `apt-get install` fixes (a source that must be fetched, as
    /// busybox's is): the summary names each with its detail, which says how to get it.
    public var missingOtherwise: [Check] { checks.filter { !$0.ok && $0.packages.isEmpty } }

    enum CodingKeys: String, CodingKey { case checks, kvm, cells, ready, missingPackages, missingOtherwise }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(checks, forKey: .checks)
        try container.encode(kvm, forKey: .kvm)
        try container.encode(cells, forKey: .cells)
        try container.encode(ready, forKey: .ready)
        try container.encode(missingPackages, forKey: .missingPackages)
        try container.encode(missingOtherwise.map { "\($0.name): \($0.detail)" }, forKey: .missingOtherwise)
    }

    var text: String {
        var out: [String] = []
        let width = checks.map(\.name.count).max() ?? 34
        for group in ["host", "sources", "toolchain", "qemu"] {
            let rows = checks.filter { $0.group == group }
            guard !rows.isEmpty else { continue }
            out.append("\(group.capitalized):")
            for row in rows { out.append("  \(row.ok ? "ok     " : "MISSING") \(row.name.padding(toLength: width, withPad: " ", startingAt: 0)) \(row.detail)") }
        }
        out.append("Accelerator:")
        out.append("  KVM \(kvm.usable ? "usable" : "unusable"): \(kvm.reason) (probe took \(String(format: "%.1f", kvm.seconds)) s)")
        out.append("  boots use \(kvm.usable ? "KVM where the host architecture matches, TCG elsewhere" : "TCG")")
        out.append("Cells:")
        out.append(table(["cell", "ready", "accel", "compiler", "qemu"], cells.map {
            [$0.cell, $0.ready ? "yes" : "no: " + $0.missing.joined(separator: ", "), $0.accelerator.rawValue, $0.compiler, $0.qemu]
        }).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        // The summary agrees with the lines above it: "Nothing missing." only when no check failed.
        if !missingPackages.isEmpty {
            out.append("Missing; install with:\n  apt-get install \(missingPackages.joined(separator: " "))")
        }
        if !missingOtherwise.isEmpty {
            out.append("Missing, not from a package:")
            for check in missingOtherwise { out.append("  \(check.name): \(check.detail)") }
        }
        if missingPackages.isEmpty, missingOtherwise.isEmpty { out.append(ready ? "Nothing missing." : "Nothing missing, yet some cell cannot run (see Cells).") }
        return out.joined(separator: "\n")
    }
}

public enum Doctor {
    /// Host tools every kernel build needs, with the Debian package that provides each.
    static let hostTools: [(String, String)] = [("make", "make"), ("gcc", "gcc"), ("flex", "flex"), ("bison", "bison"),
                                                ("bc", "bc"), ("perl", "perl"), ("xz", "xz-utils"), ("bzip2", "bzip2")]
    static let hostHeaders: [(String, String)] = [("/usr/include/libelf.h", "libelf-dev"), ("/usr/include/openssl/opensslv.h", "libssl-dev")]

    public static func examine(project: Project, cells: [Cell], workspace: Workspace) async -> DoctorReport {
        var checks: [DoctorReport.Check] = []
        for (tool, package) in hostTools {
            let path = ProcessRunner.which(tool)
            checks.append(.init(group: "host", name: tool, ok: path != nil, detail: path ?? "not on PATH (\(package))", packages: [package]))
        }
        for (header, package) in hostHeaders {
            let ok = FileManager.default.fileExists(atPath: header)
            checks.append(.init(group: "host", name: header, ok: ok, detail: ok ? "present" : "missing (\(package))", packages: [package]))
        }
        if cells.contains(where: { $0.rootDevice.kind != .initramfs }) {
            let path = ProcessRunner.which("mke2fs")
            checks.append(.init(group: "host", name: "mke2fs", ok: path != nil, detail: path ?? "not on PATH (e2fsprogs)", packages: ["e2fsprogs"]))
        }
        let ccache = ProcessRunner.which("ccache")
        checks.append(.init(group: "host", name: "ccache (optional)", ok: true, detail: ccache ?? "not installed: rebuilds start cold", packages: []))

        var sourceOK: [String: Bool] = [:]
        let kernels = project.matrix.sources.kernels.map { ($0.name.map { "kernel \($0)" } ?? "kernel", $0.spec) }
        for (what, spec) in kernels + [("busybox", project.matrix.sources.busybox)] {
            do {
                let source = try SourceResolver.resolve(spec, what: what, workspace: workspace, file: project.matrix.file)
                let size = source.kind == .tarball ? String(format: ", %.1f MB", Double(source.bytes) / 1e6) : ""
                checks.append(.init(group: "sources", name: what, ok: true,
                                    detail: "\(source.path) (\(source.kind.rawValue)\(size), sha256 \(source.sha256)\(spec.sha256 == nil ? "" : ", verified"))", packages: []))
                sourceOK[what] = true
            } catch {
                checks.append(.init(group: "sources", name: what, ok: false, detail: error.message,
                                    packages: spec.debianPackage.map { [$0] } ?? []))
                sourceOK[what] = false
            }
        }

        var compilerVersions: [String: (ok: Bool, detail: String)] = [:]
        var qemuVersions: [String: (ok: Bool, detail: String)] = [:]
        var staticLibc: [String: String?] = [:]
        let needsProbe = cells.contains { $0.target.qemu.kvmHostArch == KvmProbe.hostArch }
        let kvm = needsProbe
            ? await KvmProbe.run(linuxKernel: ProbeKernel.find(workspace: workspace, cells: project.cells))
            : KvmProbe(usable: false, reason: "no selected target runs on this host's architecture (\(KvmProbe.hostArch))", seconds: 0)

        var readiness: [DoctorReport.CellReadiness] = []
        for cell in cells {
            var missing: [String] = []
            // The kernel's compiler, and busybox's when another toolchain builds userspace.
            var toolchains = [cell.toolchain]
            if let other = cell.toolchain.userspaceToolchain.flatMap({ project.toolchains[$0] }) { toolchains.append(other) }
            var compilerText = ""
            for toolchain in toolchains {
                guard let arch = toolchain.architectures[cell.target.userspace.debianArch] else { continue }
                let compiler = toolchain.compilerPath(for: arch)
                if compilerVersions[compiler] == nil {
                    compilerVersions[compiler] = await version(of: compiler, arguments: toolchain.versionArguments)
                    checks.append(.init(group: "toolchain", name: compiler, ok: compilerVersions[compiler]!.ok,
                                        detail: compilerVersions[compiler]!.detail, packages: arch.packages))
                }
                if !compilerVersions[compiler]!.ok { missing.append(compiler) }
                if compilerText.isEmpty { compilerText = "\((compiler as NSString).lastPathComponent) \(compilerVersions[compiler]!.detail)" }
            }
            // Busybox is linked statically: the userspace compiler needs the target's libc.a.
            let userspace = cell.toolchain.userspaceToolchain.flatMap { project.toolchains[$0] } ?? cell.toolchain
            if let arch = userspace.architectures[cell.target.userspace.debianArch] {
                let compiler = userspace.compilerPath(for: arch)
                let name = "static libc for \(compiler)"
                if staticLibc[compiler] == nil, compilerVersions[compiler]?.ok == true {
                    staticLibc[compiler] = await staticLibcPath(compiler)
                    checks.append(.init(group: "toolchain", name: name, ok: staticLibc[compiler]! != nil,
                                        detail: staticLibc[compiler]!.map { $0 } ?? "\(compiler) finds no libc.a: static busybox cannot link",
                                        packages: arch.packages))
                }
                if staticLibc[compiler].map({ $0 == nil }) ?? false { missing.append("libc.a for \(cell.target.userspace.debianArch)") }
            }
            let qemu = cell.target.qemu
            if qemuVersions[qemu.binary] == nil {
                qemuVersions[qemu.binary] = await version(of: qemu.binary, arguments: ["--version"])
                checks.append(.init(group: "qemu", name: qemu.binary, ok: qemuVersions[qemu.binary]!.ok,
                                    detail: qemuVersions[qemu.binary]!.detail, packages: [qemu.package]))
            }
            if !qemuVersions[qemu.binary]!.ok { missing.append(qemu.binary) }
            if let firmware = qemu.firmware, !firmware.files.isEmpty {
                let found = firmware.files.first { FileManager.default.fileExists(atPath: $0) }
                let name = "firmware for \(cell.target.name)"
                if !checks.contains(where: { $0.name == name }) {
                    checks.append(.init(group: "qemu", name: name, ok: found != nil,
                                        detail: found ?? "none of \(firmware.files.joined(separator: ", "))", packages: [firmware.package]))
                }
                if found == nil { missing.append("firmware") }
            }
            for (tool, _) in hostTools where ProcessRunner.which(tool) == nil { missing.append(tool) }
            for (header, _) in hostHeaders where !FileManager.default.fileExists(atPath: header) { missing.append(header) }
            if cell.rootDevice.kind != .initramfs, ProcessRunner.which("mke2fs") == nil { missing.append("mke2fs") }
            for (what, ok) in sourceOK where !ok { missing.append("\(what) source") }
            let accelerator: Accelerator = kvm.usable && qemu.kvmHostArch == KvmProbe.hostArch ? .kvm : .tcg
            readiness.append(.init(cell: cell.id, ready: missing.isEmpty, accelerator: accelerator, compiler: compilerText,
                                   qemu: qemuVersions[qemu.binary]!.detail, missing: missing))
        }
        return DoctorReport(checks: checks, kvm: kvm, cells: readiness)
    }

    /// Where the compiler finds `libc.a`; gcc prints the bare name when it has none.
    static func staticLibcPath(_ compiler: String) async -> String? {
        guard let output = try? await ProcessRunner.capture(Command([compiler, "-print-file-name=libc.a"]), timeout: .seconds(120)) else { return nil }
        let path = output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.hasPrefix("/") && FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// The first line a tool prints for its version, or why it could not.
    static func version(of tool: String, arguments: [String]) async -> (ok: Bool, detail: String) {
        do {
            return (true, try await CompilerVersion.probe(tool, arguments: arguments))
        } catch {
            return (false, ProcessRunner.which(tool) == nil ? "not installed" : error.message)
        }
    }
}
