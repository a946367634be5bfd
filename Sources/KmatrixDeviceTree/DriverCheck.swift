import Foundation
import KmatrixCore

/// Built-in drivers for what the boot needs (console, interrupt controllers, timers) and
/// for the providers they depend on, with the chain that leads to each missing one.
extension Checker {
    /// Whether the kernel can drive the node: a specific compatible in the kernel, or a bus
    /// the core populates. Generic compatibles (`arm,primecell`) prove nothing; a PrimeCell
    /// whose driver is known is driven when that driver's `amba_id` table is in the kernel's
    /// symbols (AMBA drivers match peripheral IDs, not compatibles).
    func driven(_ index: Int, by kernel: KernelDrivers) -> Bool {
        let compatibles = tree.nodes[index].compatibles
        if compatibles.contains(where: { DeviceTreeRules.busCompatibles.contains($0) }) { return true }
        if compatibles.contains(where: { (DeviceTreeRules.populatedBy[$0] ?? []).contains(where: kernel.compatibles.contains) }) { return true }
        if compatibles.contains("arm,primecell"), let symbols = kernel.symbols {
            let tables = compatibles.flatMap { DeviceTreeRules.ambaIDTables[$0] ?? [] }
            if !tables.isEmpty { return tables.contains(where: symbols.contains) }
        }
        return compatibles.contains { !DeviceTreeRules.genericCompatibles.contains($0) && kernel.compatibles.contains($0) }
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
        // The bus above: a device is created only when every bus over it is (simple-bus and
        // the like by the core, any other by its driver).
        if let parent = node.parent, parent != 0, !isDescriptive(parent), let bus = nearestWithCompatible(from: parent) {
            edges.append(("parent bus", bus))
        }
        var seen = Set<Int>()
        return (edges.filter { seen.insert($0.1).inserted }, problems)
    }

    /// `index` or the nearest ancestor of it with a compatible (a device, not a container
    /// node), short of the root.
    func nearestWithCompatible(from index: Int) -> Int? {
        var current: Int? = index
        while let c = current, c != 0 {
            if !tree.nodes[c].compatibles.isEmpty { return c }
            current = tree.nodes[c].parent
        }
        return nil
    }

    /// The pin controllers a node's default pin state (`pinctrl-0`) uses: each entry is a
    /// configuration node below its controller, the nearest ancestor with a compatible.
    func pinControllers(of index: Int) -> (edges: [(via: String, node: Int)], problems: [String]) {
        let node = tree.nodes[index]
        guard node.has("pinctrl-0") else { return ([], []) }
        guard let phandles = node.cells("pinctrl-0") else { return ([], ["'pinctrl-0' is not a list of phandles"]) }
        var edges: [(String, Int)] = []
        var problems: [String] = []
        for phandle in phandles where phandle != 0 {
            guard let state = tree.byPhandle[phandle] else {
                problems.append("'pinctrl-0' names phandle \(hex(phandle)), which no node has")
                continue
            }
            if let controller = tree.nodes[state].parent.flatMap(nearestWithCompatible(from:)), !edges.contains(where: { $0.1 == controller }) {
                edges.append(("pinctrl-0", controller))
            }
        }
        return (edges, problems)
    }

    /// One chain the boot needs, walked breadth first from `start` (so each chain is the
    /// shortest way the boot reaches a node): what it reaches and what is wrong on the way.
    ///
    /// A clock provider's own `clocks` are its parents, and the kernel registers a clock
    /// whose parent has no driver as an orphan: only the clocks derived from that parent
    /// fail. Whether the console's clock is one of them the tree does not say, so what is
    /// reached only through a provider's parents is a warning (`soft`), not an error (an
    /// Allwinner H3's CCU lists the RTC's 32 kHz oscillator; its UART clock comes from the
    /// 24 MHz one and the board boots without the RTC driver).
    func walk(from start: Int, role: String, kernel: KernelDrivers, followPins: Bool)
        -> (reached: Set<Int>, problems: [(node: Int, chain: [DeviceTreeFinding.Link], reason: String, soft: Bool)]) {
        var previous: [Int: (via: String, from: Int)] = [:]
        var soft: [Int: Bool] = [start: false]
        var queue = [start]
        var visited: Set<Int> = [start]
        var problems: [(Int, [DeviceTreeFinding.Link], String, Bool)] = []
        var head = 0
        while head < queue.count {
            let current = queue[head]
            head += 1
            let chain = self.chain(to: current, from: start, previous: previous)
            let isSoft = soft[current] ?? false
            let parentNote = isSoft ? " (a parent clock: the boot needs it only if the clock in use derives from it)" : ""
            if !tree.isEnabled(current) {
                problems.append((current, chain, "needed by the \(role) but disabled\(parentNote)", isSoft))
            } else if tree.nodes[current].compatibles.isEmpty {
                problems.append((current, chain, "needed by the \(role) but has no compatible: no driver can bind it\(parentNote)", isSoft))
            } else if !driven(current, by: kernel) {
                problems.append((current, chain, (current == start ? "\(role) with no built-in driver" : "needed by the \(role); no built-in driver") + parentNote, isSoft))
            }
            var (edges, found) = dependencies(of: current)
            if followPins, current == start {
                let pins = pinControllers(of: current)
                edges += pins.edges
                found += pins.problems
            }
            for problem in found { problems.append((current, chain, "needed by the \(role): \(problem)", isSoft)) }
            let isClockProvider = tree.nodes[current].has("#clock-cells")
            for (via, next) in edges where visited.insert(next).inserted {
                previous[next] = (via, current)
                soft[next] = isSoft || (via == "clocks" && isClockProvider)
                queue.append(next)
            }
        }
        return (visited, problems)
    }

    /// Errors only for what the boot needs: the console UART, the interrupt controller the
    /// tree defaults to, and a timer (any one whose chain is whole: the kernel needs one
    /// clock event source, not every timer a SoC has), each followed through interrupt
    /// parents, clocks, resets, power domains, the console's pins and the buses above.
    /// Everything else without a driver is a note.
    mutating func drivers(console: Int?, kernelProblem: String? = nil) {
        guard let kernel else {
            if let kernelProblem {
                add(.error, .drivers, nil, "the kernel could not be read, so its drivers are unknown: \(kernelProblem)")
            } else {
                add(.info, .drivers, nil, "no kernel given: driver checks skipped")
            }
            return
        }
        if kernel.fromEveryString {
            add(.warning, .drivers, nil, "the kernel has no string shaped like an of_device_id compatible: every printable string of its data was taken instead, so a missing driver may pass unseen")
        }
        var roots: [(node: Int, role: String)] = []
        if let (phandle, _) = tree.interruptParent(of: 0), let controller = tree.byPhandle[phandle] {
            roots.append((controller, "root interrupt controller"))
        }
        if let console, tree.isEnabled(console) { roots.append((console, "console UART")) }
        var required = Set<Int>()
        var reported = Set<String>()
        for (start, role) in roots {
            let walked = walk(from: start, role: role, kernel: kernel, followPins: role == "console UART")
            required.formUnion(walked.reached)
            for problem in walked.problems { report(&reported, problem.soft ? .warning : .error, problem.node, problem.chain, problem.reason) }
        }

        // Timers: one whose whole chain has drivers is enough.
        let timers = tree.nodes.indices.filter { i in
            i != 0 && tree.isEnabled(i) && !tree.isWithin(i, path: "/cpus") && DeviceTreeRules.isTimer(tree.nodes[i])
        }
        let timerWalks = timers.map { walk(from: $0, role: "timer", kernel: kernel, followPins: false) }
        let usable = timers.indices.filter { !timerWalks[$0].problems.contains { !$0.soft } }
        if let first = usable.first {
            required.formUnion(timerWalks[first].reached)
            for problem in timerWalks[first].problems { report(&reported, .warning, problem.node, problem.chain, problem.reason) }
            for i in timers.indices where !usable.contains(i) {
                for problem in timerWalks[i].problems {
                    report(&reported, .info, problem.node, problem.chain,
                           "\(problem.reason) (not needed to boot: \(tree.nodes[timers[first]].path) is a usable timer)")
                }
            }
        } else {
            for walked in timerWalks {
                for problem in walked.problems {
                    report(&reported, problem.soft ? .warning : .error, problem.node, problem.chain, "\(problem.reason) (and no other timer is usable)")
                }
            }
        }

        // Every other enabled device: a note, once per subtree whose top has no driver.
        var undrivenTops = Set<Int>()
        for i in tree.nodes.indices where i != 0 && !required.contains(i) && !timers.contains(i) && tree.isEnabled(i) && !isDescriptive(i) {
            guard !tree.nodes[i].compatibles.isEmpty, !driven(i, by: kernel) else { continue }
            var ancestor = tree.nodes[i].parent
            var covered = false
            while let a = ancestor {
                if undrivenTops.contains(a) { covered = true; break }
                ancestor = tree.nodes[a].parent
            }
            undrivenTops.insert(i)
            if !covered { add(DeviceTreeRules.notNeededToBoot.severity, .drivers, i, DeviceTreeRules.notNeededToBoot.reason) }
        }
        if !findings.contains(where: { $0.check == .drivers && $0.severity == .error }) {
            let consoleText = roots.contains { $0.role == "console UART" } ? "the console UART, " : ""
            let controllerText = roots.contains { $0.role == "root interrupt controller" } ? "the root interrupt controller, " : ""
            let timerText = usable.first.map { "a timer (\(tree.nodes[timers[$0]].path), of \(timers.count)) " } ?? "no timer node "
            add(.info, .drivers, nil, "\(consoleText)\(controllerText)\(timerText)and the \(max(0, required.count - roots.count - (usable.isEmpty ? 0 : 1))) provider(s) and bus(es) they use all have built-in drivers")
        }
    }

    mutating func report(_ reported: inout Set<String>, _ severity: DeviceTreeFinding.Severity, _ node: Int,
                         _ chain: [DeviceTreeFinding.Link], _ reason: String) {
        // Once per node and severity: a controller two chains need is named once, on the first chain.
        let key = "\(tree.nodes[node].path)|\(severity)"
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
}
