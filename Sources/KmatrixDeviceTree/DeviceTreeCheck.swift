import Foundation
import KmatrixCore
import KmatrixFDT

/// Checks a DTB, before any boot, against the target it is for and the kernel that will
/// boot it: structure (libfdt), machine, console, drivers for what the boot needs, memory.
public enum DeviceTreeCheck {
    /// Checks the DTB file at `dtb`. `console` defaults to the target's; `drivers` nil skips
    /// the driver checks (with `kernelProblem`, why the kernel could not be read: an error).
    /// Never throws: an unreadable or broken file is a finding.
    public static func run(dtb: String, target: Target?, console: String? = nil,
                           drivers: KernelDrivers?, kernel: String? = nil, kernelProblem: String? = nil) -> DeviceTreeReport {
        guard let data = FileManager.default.contents(atPath: dtb) else {
            var report = DeviceTreeReport(dtb: dtb, target: target?.name, console: console ?? target?.console.device,
                                          kernel: kernel, kernelCompatibleCount: drivers?.compatibles.count)
            report.findings = [DeviceTreeFinding(.error, .structure, reason: "cannot read \(dtb)")]
            return report
        }
        return run(blob: [UInt8](data), name: dtb, target: target, console: console, drivers: drivers, kernel: kernel,
                   kernelProblem: kernelProblem)
    }

    /// The same, with the kernel given as its compatibles only (no symbol table).
    public static func run(dtb: String, target: Target?, console: String? = nil,
                           kernelCompatibles: Set<String>?, kernel: String? = nil) -> DeviceTreeReport {
        run(dtb: dtb, target: target, console: console, drivers: kernelCompatibles.map { KernelDrivers(compatibles: $0) }, kernel: kernel)
    }

    public static func run(blob: [UInt8], name: String, target: Target?, console: String? = nil,
                           kernelCompatibles: Set<String>?, kernel: String? = nil) -> DeviceTreeReport {
        run(blob: blob, name: name, target: target, console: console,
            drivers: kernelCompatibles.map { KernelDrivers(compatibles: $0) }, kernel: kernel)
    }

    /// Checks a DTB held in memory; `name` is what the report calls it.
    public static func run(blob: [UInt8], name: String, target: Target?, console: String? = nil,
                           drivers: KernelDrivers?, kernel: String? = nil, kernelProblem: String? = nil) -> DeviceTreeReport {
        let consoleDevice = console ?? target?.console.device
        var report = DeviceTreeReport(dtb: name, target: target?.name, console: consoleDevice, kernel: kernel,
                                      kernelCompatibleCount: drivers?.compatibles.count)
        let tree: DeviceTree
        do {
            let fdt = try FlattenedDeviceTree(bytes: blob)
            tree = try DeviceTree(fdt)
            report.findings.append(.init(.info, .structure,
                                         reason: "valid DTB (version \(fdt.version), \(fdt.totalSize) bytes, \(tree.nodes.count) nodes)"))
        } catch {
            report.findings.append(.init(.error, .structure, reason: structureReason(error, blob: blob)))
            return report
        }
        report.rootCompatibles = tree.root.compatibles
        var checker = Checker(tree: tree, kernel: drivers)
        checker.machine(expected: target?.deviceTree.rootCompatible, target: target?.name)
        // The target's flag speaks for its own console only, not for a --console override.
        let inTree = target.map { $0.console.deviceTree || consoleDevice != $0.console.device } ?? true
        let consoleNode = checker.console(consoleDevice, inTree: inTree)
        checker.drivers(console: consoleNode, kernelProblem: kernelProblem)
        checker.memory(target: target)
        report.findings += checker.findings
        return report
    }

    /// libfdt's text, with what the header says when the file is shorter than it claims.
    static func structureReason(_ error: FDTError, blob: [UInt8]) -> String {
        var reason = "not a usable DTB: \(error.operation) failed with \(error.message)"
        if blob.count >= 8, blob[0..<4] == [0xd0, 0x0d, 0xfe, 0xed] {
            let total = Int(blob[4]) << 24 | Int(blob[5]) << 16 | Int(blob[6]) << 8 | Int(blob[7])
            if total > blob.count { reason += " (the header says \(total) bytes, the file has \(blob.count): truncated)" }
        } else if blob.count >= 4 {
            reason += " (no FDT magic d00dfeed at the start: not a device tree blob)"
        } else {
            reason += " (\(blob.count) bytes)"
        }
        return reason
    }
}

/// The checks over one parsed tree, accumulating findings.
struct Checker {
    let tree: DeviceTree
    let kernel: KernelDrivers?
    var findings: [DeviceTreeFinding] = []

    init(tree: DeviceTree, kernel: KernelDrivers?) {
        self.tree = tree
        self.kernel = kernel
    }

    mutating func add(_ severity: DeviceTreeFinding.Severity, _ check: DeviceTreeFinding.Check, _ index: Int?, _ reason: String,
                      chain: [DeviceTreeFinding.Link] = []) {
        findings.append(DeviceTreeFinding(severity, check, node: index.map { tree.nodes[$0].path },
                                          compatibles: index.map { tree.nodes[$0].compatibles } ?? [], reason: reason, chain: chain))
    }

    mutating func machine(expected: String?, target: String?) {
        let root = tree.root.compatibles
        guard let expected else {
            add(.info, .machine, 0, "no expected root compatible\(target.map { " for \($0)" } ?? ""): not checked")
            return
        }
        if root.contains(expected) {
            add(.info, .machine, 0, "root compatible has \(expected)")
        } else {
            let actual = root.isEmpty ? "the root node has no compatible" : "the root compatible is \(root.joined(separator: ", "))"
            add(.error, .machine, 0, "\(actual); \(target ?? "the target") expects \(expected): this DTB is for another machine")
        }
    }
}

extension DeviceTreeCheck {
    /// The DTB a kernel build produced for the target: the first of `kernel.dtbs`' candidate
    /// paths that exists (the kernel moved arm DTBs from `dts/` to `dts/arm/` in 6.5).
    public static func builtDTB(for target: Target, in buildDirectory: String) -> String? {
        for product in target.kernel.dtbs {
            for path in product.paths {
                let full = (buildDirectory as NSString).appendingPathComponent(path)
                if FileManager.default.fileExists(atPath: full) { return full }
            }
        }
        return nil
    }
}

extension DeviceTreeReport {
    /// The report for a target that boots without a device tree (x86's ACPI and legacy tables).
    public static func notApplicable(target: Target) -> DeviceTreeReport {
        DeviceTreeReport(dtb: "none", target: target.name, console: target.console.device, findings: [
            DeviceTreeFinding(.info, .structure, reason: "\(target.name) boots without a device tree (deviceTree.source none): nothing to check"),
        ])
    }
}
