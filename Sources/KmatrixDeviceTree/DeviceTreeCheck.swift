import Foundation
import KmatrixCore
import KmatrixFDT

/// Checks a DTB, before any boot, against the target it is for and the kernel that will
/// boot it: structure (libfdt), machine, console, drivers for what the boot needs, memory.
public enum DeviceTreeCheck {
    /// Checks the DTB file at `dtb`. `console` defaults to the target's; `kernelCompatibles`
    /// nil skips the driver checks. Never throws: an unreadable or broken file is a finding.
    public static func run(dtb: String, target: Target?, console: String? = nil,
                           kernelCompatibles: Set<String>?, kernel: String? = nil) -> DeviceTreeReport {
        guard let data = FileManager.default.contents(atPath: dtb) else {
            var report = DeviceTreeReport(dtb: dtb, target: target?.name, console: console ?? target?.console.device,
                                          kernel: kernel, kernelCompatibleCount: kernelCompatibles?.count)
            report.findings = [DeviceTreeFinding(.error, .structure, reason: "cannot read \(dtb)")]
            return report
        }
        return run(blob: [UInt8](data), name: dtb, target: target, console: console, kernelCompatibles: kernelCompatibles, kernel: kernel)
    }

    /// Checks a DTB held in memory; `name` is what the report calls it.
    public static func run(blob: [UInt8], name: String, target: Target?, console: String? = nil,
                           kernelCompatibles: Set<String>?, kernel: String? = nil) -> DeviceTreeReport {
        let consoleDevice = console ?? target?.console.device
        var report = DeviceTreeReport(dtb: name, target: target?.name, console: consoleDevice, kernel: kernel,
                                      kernelCompatibleCount: kernelCompatibles?.count)
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
        var checker = Checker(tree: tree, kernel: kernelCompatibles)
        checker.machine(expected: target?.deviceTree.rootCompatible, target: target?.name)
        let consoleNode = checker.console(consoleDevice)
        checker.drivers(console: consoleNode)
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
    let kernel: Set<String>?
    var findings: [DeviceTreeFinding] = []

    init(tree: DeviceTree, kernel: Set<String>?) {
        self.tree = tree
        self.kernel = kernel
    }

    mutating func add(_ severity: DeviceTreeFinding.Severity, _ check: DeviceTreeFinding.Check, _ index: Int?, _ reason: String,
                      chain: [DeviceTreeFinding.Link] = []) {
        findings.append(DeviceTreeFinding(severity, check, node: index.map { tree.nodes[$0].path },
                                          compatibles: index.map { tree.nodes[$0].compatibles } ?? [], reason: reason, chain: chain))
    }

    // MARK: Machine

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

    // MARK: Console

    /// Resolves the console device to a node and checks it; returns the node when found.
    mutating func console(_ device: String?) -> Int? {
        guard let device else {
            add(.info, .console, nil, "no console device given: not checked")
            return nil
        }
        guard let match = device.firstMatch(of: /^([A-Za-z]+)([0-9]+)$/), let index = Int(match.2) else {
            add(.error, .console, nil, "'\(device)' is not a console device name like ttyS0 or ttyAMA0")
            return nil
        }
        let prefix = String(match.1)
        let family = DeviceTreeRules.consoleFamily(prefix: prefix)

        var node: Int?
        var how: String
        let chosen = tree.index(ofPath: "/chosen")
        let stdout = chosen.flatMap { tree.nodes[$0].string("stdout-path") ?? tree.nodes[$0].string("linux,stdout-path") }
        if let stdout {
            let target = String(stdout.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            node = tree.resolve(target)
            how = "/chosen stdout-path '\(stdout)'"
            if node == nil {
                add(.error, .console, chosen, "stdout-path '\(stdout)' names no node (\(target.hasPrefix("/") ? "no such path" : "no such alias or path")): \(device) has no UART")
                return nil
            }
        } else if let alias = tree.alias("serial\(index)") {
            node = tree.resolve(alias)
            how = "alias serial\(index) -> \(alias)"
            if node == nil {
                add(.error, .console, tree.index(ofPath: "/aliases"), "alias serial\(index) names '\(alias)', which is no node: \(device) has no UART")
                return nil
            }
        } else if let family {
            // No stdout-path and no alias: the kernel numbers ports in probe order.
            let candidates = tree.nodes.indices.filter { i in
                tree.isEnabled(i) && tree.nodes[i].compatibles.contains { family.compatibles.contains($0) }
            }
            guard index < candidates.count else {
                add(.error, .console, nil, "\(device) resolves to no node: no stdout-path in /chosen, no alias serial\(index), and \(candidates.count) enabled \(family.name) UART(s)")
                return nil
            }
            node = candidates[index]
            how = "enabled \(family.name) UART number \(index) in tree order (no stdout-path, no alias serial\(index))"
        } else {
            add(.error, .console, nil, "\(device) resolves to no node: no stdout-path in /chosen and no alias serial\(index)")
            return nil
        }
        guard let node else { return nil }

        var ok = true
        if !tree.isEnabled(node) {
            let status = tree.nodes[node].string("status") ?? "disabled"
            add(.error, .console, node, "the console UART (\(how)) is disabled (status \"\(status)\", or a disabled parent)")
            ok = false
        }
        if let family {
            let compatibles = tree.nodes[node].compatibles
            if !compatibles.contains(where: { family.compatibles.contains($0) }) {
                let what = compatibles.isEmpty ? "has no compatible" : "is \(compatibles.joined(separator: ", "))"
                add(.error, .console, node, "the console UART (\(how)) \(what), not a \(family.name) UART as \(prefix) needs (\(family.compatibles.prefix(4).joined(separator: ", "))...)")
                ok = false
            }
        } else {
            add(.info, .console, node, "no UART family known for \(prefix): the node's compatible is not checked")
        }
        if ok { add(.info, .console, node, "\(device) is this node (\(how))") }
        return node
    }

    // MARK: Drivers

    /// Whether the kernel can drive the node: a specific compatible in the kernel, or a bus
    /// the core populates. Generic compatibles (`arm,primecell`) prove nothing.
    func driven(_ index: Int, by kernel: Set<String>) -> Bool {
        let compatibles = tree.nodes[index].compatibles
        if compatibles.contains(where: { DeviceTreeRules.busCompatibles.contains($0) }) { return true }
        return compatibles.contains { !DeviceTreeRules.genericCompatibles.contains($0) && kernel.contains($0) }
    }

    func isDescriptive(_ index: Int) -> Bool {
        DeviceTreeRules.nonDevicePaths.contains { tree.isWithin(index, path: $0) }
            || tree.nodes[index].string("device_type") == "memory"
            || (tree.nodes[index].parent == 0 && ["memory", "reserved-memory"].contains(tree.nodes[index].baseName))
    }

    /// The nodes this one needs before it can work, with the property that names each,
    /// and the problems in those references.
    func dependencies(of index: Int) -> (edges: [(via: String, node: Int)], problems: [String]) {
        let node = tree.nodes[index]
        var edges: [(String, Int)] = []
        var problems: [String] = []
        for (property, cellsProperty) in DeviceTreeRules.providerProperties where node.has(property) {
            guard let cells = node.cells(property) else {
                problems.append("'\(property)' is not a list of 32-bit cells")
                continue
            }
            var i = 0
            while i < cells.count {
                let phandle = cells[i]
                i += 1
                if phandle == 0 { continue }  // an empty slot, allowed by some bindings
                guard let provider = tree.byPhandle[phandle] else {
                    problems.append("'\(property)' names phandle \(hex(phandle)), which no node has")
                    break
                }
                guard let count = tree.nodes[provider].cell(cellsProperty), count <= 32 else {
                    problems.append("'\(property)' names \(tree.nodes[provider].path), which has no usable \(cellsProperty)")
                    edges.append((property, provider))
                    break
                }
                if provider != index { edges.append((property, provider)) }
                i += Int(count)
            }
        }
        // Interrupts go to the explicit or inherited interrupt-parent.
        if node.has("interrupts") || (node.has("interrupt-controller") && node.has("interrupt-parent")),
           let (phandle, from) = tree.interruptParent(of: index) {
            let via = from == index ? "interrupt-parent" : "interrupt-parent (inherited from \(tree.nodes[from].path))"
            if let parent = tree.byPhandle[phandle] {
                if parent != index { edges.append((via, parent)) }
            } else {
                problems.append("\(via) is phandle \(hex(phandle)), which no node has")
            }
        }
        var seen = Set<Int>()
        return (edges.filter { seen.insert($0.1).inserted }, problems)
    }

    mutating func drivers(console: Int?) {
        guard let kernel else {
            add(.info, .drivers, nil, "no kernel given: driver checks skipped")
            return
        }
        // What the boot needs: the console UART, every interrupt controller, every timer.
        var roots: [(node: Int, role: String)] = []
        if let console, tree.isEnabled(console) { roots.append((console, "console UART")) }
        for i in tree.nodes.indices where i != 0 && tree.isEnabled(i) {
            if tree.nodes[i].has("interrupt-controller") {
                roots.append((i, "interrupt controller"))
            } else if !tree.isWithin(i, path: "/cpus"), DeviceTreeRules.isTimer(tree.nodes[i]) {
                roots.append((i, "timer"))
            }
        }
        let rootSet = Set(roots.map(\.node))
        var required = Set<Int>()
        var reported = Set<String>()

        for (start, role) in roots {
            // Breadth first, so each chain is the shortest way the boot reaches a node.
            var previous: [Int: (via: String, from: Int)] = [:]
            var queue = [start]
            var visited: Set<Int> = [start]
            var head = 0
            while head < queue.count {
                let current = queue[head]
                head += 1
                required.insert(current)
                let chain = self.chain(to: current, from: start, previous: previous)
                // A root reached from another root is reported once, as its own root.
                let ownTurn = current == start || !rootSet.contains(current)
                if ownTurn {
                    if !tree.isEnabled(current) {
                        report(&reported, .error, current, chain, "needed by the \(role) but disabled")
                    } else if tree.nodes[current].compatibles.isEmpty {
                        report(&reported, .error, current, chain, "needed by the \(role) but has no compatible: no driver can bind it")
                    } else if !driven(current, by: kernel) {
                        report(&reported, .error, current, chain, current == start
                               ? "\(role) with no built-in driver" : "needed by the \(role); no built-in driver")
                    }
                }
                let (edges, problems) = dependencies(of: current)
                if ownTurn {
                    for problem in problems { report(&reported, .error, current, chain, "needed by the \(role): \(problem)") }
                }
                for (via, next) in edges where visited.insert(next).inserted {
                    previous[next] = (via, current)
                    queue.append(next)
                }
            }
        }

        // Every other enabled device: a warning, once per subtree whose top has no driver.
        var undrivenTops = Set<Int>()
        for i in tree.nodes.indices where i != 0 && !required.contains(i) && tree.isEnabled(i) && !isDescriptive(i) {
            guard !tree.nodes[i].compatibles.isEmpty, !driven(i, by: kernel) else { continue }
            var ancestor = tree.nodes[i].parent
            var covered = false
            while let a = ancestor {
                if undrivenTops.contains(a) { covered = true; break }
                ancestor = tree.nodes[a].parent
            }
            undrivenTops.insert(i)
            if !covered { add(.warning, .drivers, i, "no built-in driver (not needed to boot)") }
        }
        if !findings.contains(where: { $0.check == .drivers && $0.severity == .error }) {
            let count = { (role: String) in roots.filter { $0.role == role }.count }
            let consoleText = count("console UART") > 0 ? "the console UART, " : ""
            add(.info, .drivers, nil, "\(consoleText)\(count("interrupt controller")) interrupt controller(s), \(count("timer")) timer(s) and the \(required.count - roots.count) provider(s) they use all have built-in drivers")
        }
    }

    mutating func report(_ reported: inout Set<String>, _ severity: DeviceTreeFinding.Severity, _ node: Int,
                         _ chain: [DeviceTreeFinding.Link], _ reason: String) {
        let key = chain.map { "\($0.via ?? "")>\($0.node)" }.joined(separator: "|") + "|" + reason
        guard reported.insert(key).inserted else { return }
        add(severity, .drivers, node, reason, chain: chain)
    }

    func chain(to node: Int, from start: Int, previous: [Int: (via: String, from: Int)]) -> [DeviceTreeFinding.Link] {
        var links: [DeviceTreeFinding.Link] = []
        var current = node
        while current != start, let step = previous[current], links.count <= tree.nodes.count {
            links.append(.init(via: step.via, node: tree.nodes[current].path, compatibles: tree.nodes[current].compatibles))
            current = step.from
        }
        links.append(.init(via: nil, node: tree.nodes[start].path, compatibles: tree.nodes[start].compatibles))
        return links.reversed()
    }

    // MARK: Memory

    mutating func memory(target: Target?) {
        let memoryNodes = tree.root.children.filter { i in
            (tree.nodes[i].string("device_type") == "memory" || tree.nodes[i].baseName == "memory") && tree.nodes[i].statusOkay
        }
        let addressCells = tree.root.cell("#address-cells") ?? 2
        let sizeCells = tree.root.cell("#size-cells") ?? 1
        guard let target else {
            add(.info, .memory, nil, "no target: memory not compared with RAM (\(memoryNodes.count) memory node(s))")
            return
        }
        let ram = UInt64(target.qemu.memoryMiB) << 20
        let rewrites = DeviceTreeRules.qemuRewritesMemory.contains(target.qemu.binary)
        // Under QEMU's ARM loader the tree's /memory is replaced: too much is then a warning.
        let overclaim: DeviceTreeFinding.Severity = rewrites ? .warning : .error
        let rewriteNote = rewrites ? "; \(target.qemu.binary) replaces /memory with the \(target.qemu.memoryMiB) MiB it gives, so this only matters off QEMU" : ""
        guard !memoryNodes.isEmpty else {
            add(rewrites ? .info : .error, .memory, nil,
                rewrites ? "no memory node; \(target.qemu.binary) adds one for the \(target.qemu.memoryMiB) MiB it gives"
                         : "no memory node (device_type \"memory\") under /: the kernel finds no RAM")
            return
        }
        guard (1...2).contains(addressCells), (1...2).contains(sizeCells) else {
            add(.warning, .memory, 0, "#address-cells \(addressCells) / #size-cells \(sizeCells): memory ranges not interpreted")
            return
        }
        let entryCells = Int(addressCells + sizeCells)
        var total: UInt64 = 0
        var ranges: [String] = []
        for i in memoryNodes {
            guard let cells = tree.nodes[i].cells("reg"), !cells.isEmpty, cells.count % entryCells == 0 else {
                add(.error, .memory, i, "reg is missing or not a list of (\(addressCells)+\(sizeCells))-cell ranges")
                continue
            }
            for entry in stride(from: 0, to: cells.count, by: entryCells) {
                let base = number(cells[entry..<(entry + Int(addressCells))])
                let size = number(cells[(entry + Int(addressCells))..<(entry + entryCells)])
                total = total.addingReportingOverflow(size).overflow ? .max : total + size
                ranges.append("\(mib(size)) at \(hex64(base))")
                if base.addingReportingOverflow(size).overflow {
                    add(.error, .memory, i, "the range \(hex64(base)) + \(hex64(size)) wraps past the end of the address space")
                }
            }
        }
        let described = ranges.joined(separator: ", ")
        if total == 0 {
            add(.error, .memory, memoryNodes.first, "the memory nodes describe no RAM")
        } else if total > ram {
            add(overclaim, .memory, memoryNodes.first, "the DTB claims \(mib(total)) (\(described)) but \(target.name) gives the machine \(target.qemu.memoryMiB) MiB\(rewriteNote)")
        } else if total < ram {
            add(.info, .memory, memoryNodes.first, "the DTB describes \(described); the kernel will use \(mib(total)) of the \(target.qemu.memoryMiB) MiB")
        } else {
            add(.info, .memory, memoryNodes.first, "\(described): matches the \(target.qemu.memoryMiB) MiB the machine gets")
        }
    }

    func number(_ cells: ArraySlice<UInt32>) -> UInt64 { cells.reduce(0) { $0 << 32 | UInt64($1) } }
    func mib(_ bytes: UInt64) -> String { bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes" }
}

func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
func hex64(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

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
