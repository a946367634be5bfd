import Foundation
import KmatrixCore

/// The console device resolved to its UART node, which must be enabled and of the family
/// the console name needs.
extension Checker {
    /// Resolves the console device to a node and checks it; returns the node when found.
    /// `inTree` false: the console is no device-tree device (`hvc0`), nothing to find.
    mutating func console(_ device: String?, inTree: Bool = true) -> Int? {
        guard let device else {
            add(.info, .console, nil, "no console device given: not checked")
            return nil
        }
        guard inTree else {
            add(.info, .console, nil, "\(device) has no device-tree node (console.deviceTree is false): not checked")
            return nil
        }
        guard let match = device.firstMatch(of: /^([A-Za-z]+)([0-9]+)$/), let index = Int(match.2) else {
            add(.error, .console, nil, "'\(device)' is not a console device name (a driver's name and a port number)")
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
}
