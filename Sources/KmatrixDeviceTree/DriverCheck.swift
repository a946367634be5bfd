import Foundation
import KmatrixCore

/// Built-in drivers for what the boot needs (console, interrupt controllers, timers) and
/// for the providers they depend on, with the chain that leads to each missing one.
extension Checker {
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
            if !covered { add(DeviceTreeRules.notNeededToBoot.severity, .drivers, i, DeviceTreeRules.notNeededToBoot.reason) }
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
}
