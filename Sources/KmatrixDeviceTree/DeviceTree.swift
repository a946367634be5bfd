import Foundation
import KmatrixFDT

/// A device tree read out of a blob that libfdt validated: nodes with their paths,
/// properties and phandles, in plain Swift values the checks can walk without libfdt.
public struct DeviceTree: Sendable {
    public struct Node: Sendable {
        /// Full path (`/soc/serial@10000000`); `/` for the root.
        public var path: String
        /// Name with unit address (`serial@10000000`); empty for the root.
        public var name: String
        public var parent: Int?
        public var children: [Int] = []
        public var properties: [String: [UInt8]]

        /// The name without its unit address (`serial`).
        public var baseName: String { String(name.split(separator: "@", maxSplits: 1).first ?? "") }

        public func has(_ property: String) -> Bool { properties[property] != nil }

        /// A string list property (`compatible`, `clock-names`); empty strings dropped.
        public func strings(_ property: String) -> [String] {
            guard let value = properties[property] else { return [] }
            return value.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
        }

        /// The first string of a property, or nil.
        public func string(_ property: String) -> String? { strings(property).first }

        /// Big-endian 32-bit cells; nil when absent or not a whole number of cells.
        public func cells(_ property: String) -> [UInt32]? {
            guard let value = properties[property], value.count % 4 == 0 else { return nil }
            return stride(from: 0, to: value.count, by: 4).map { i in
                UInt32(value[i]) << 24 | UInt32(value[i + 1]) << 16 | UInt32(value[i + 2]) << 8 | UInt32(value[i + 3])
            }
        }

        /// A single-cell property.
        public func cell(_ property: String) -> UInt32? {
            guard let cells = cells(property), cells.count == 1 else { return nil }
            return cells[0]
        }

        public var compatibles: [String] { strings("compatible") }

        /// `status` absent, `okay` or `ok` (the kernel's `of_device_is_available`).
        public var statusOkay: Bool {
            guard let status = string("status") else { return true }
            return status == "okay" || status == "ok"
        }

        public var phandle: UInt32? { cell("phandle") ?? cell("linux,phandle") }
    }

    /// Index 0 is the root.
    public private(set) var nodes: [Node]
    public private(set) var byPath: [String: Int]
    public private(set) var byPhandle: [UInt32: Int]

    /// Reads every node and property of a validated blob.
    public init(_ fdt: FlattenedDeviceTree) throws(FDTError) {
        nodes = []
        byPath = [:]
        byPhandle = [:]
        // The walk gives depths; a stack of node indices per depth gives parents and paths.
        var stack: [Int] = []
        for (offset, depth) in fdt.nodes() {
            guard depth <= stack.count else { throw FDTError("fdt_next_node", code: FDTError.truncatedCode) }
            stack.removeLast(stack.count - depth)
            let name = try fdt.name(of: offset)
            var properties: [String: [UInt8]] = [:]
            for property in try fdt.properties(of: offset) where properties[property.name] == nil {
                properties[property.name] = property.value
            }
            let parent = stack.last
            let path: String
            if let parent { path = nodes[parent].path == "/" ? "/\(name)" : "\(nodes[parent].path)/\(name)" } else { path = "/" }
            let index = nodes.count
            nodes.append(Node(path: path, name: depth == 0 ? "" : name, parent: parent, properties: properties))
            if let parent { nodes[parent].children.append(index) }
            if byPath[path] == nil { byPath[path] = index }
            if let phandle = nodes[index].phandle, phandle != 0, phandle != 0xffff_ffff, byPhandle[phandle] == nil {
                byPhandle[phandle] = index
            }
            stack.append(index)
        }
        guard !nodes.isEmpty else { throw FDTError("fdt_next_node", code: FDTError.truncatedCode) }
    }

    public var root: Node { nodes[0] }

    public func node(_ index: Int) -> Node { nodes[index] }

    /// The node at a full path; components without a unit address match the first child
    /// whose name before `@` is that component, as libfdt does.
    public func index(ofPath path: String) -> Int? {
        if let exact = byPath[path] { return exact }
        guard path.hasPrefix("/") else { return nil }
        var current = 0
        for component in path.split(separator: "/") {
            let part = String(component)
            let children = nodes[current].children
            if let child = children.first(where: { nodes[$0].name == part }) ?? children.first(where: {
                !part.contains("@") && nodes[$0].baseName == part
            }) {
                current = child
            } else {
                return nil
            }
        }
        return current
    }

    /// The path an alias in `/aliases` names.
    public func alias(_ name: String) -> String? {
        guard let aliases = index(ofPath: "/aliases") else { return nil }
        return nodes[aliases].string(name)
    }

    /// A full path, or an alias optionally followed by a path below it (`serial0`, `soc/uart`).
    public func resolve(_ pathOrAlias: String) -> Int? {
        if pathOrAlias.hasPrefix("/") { return index(ofPath: pathOrAlias) }
        let parts = pathOrAlias.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let target = alias(String(first)), target.hasPrefix("/") else { return nil }
        return index(ofPath: parts.count > 1 ? "\(target)/\(parts[1])" : target)
    }

    /// Whether the node and all its ancestors have an okay status.
    public func isEnabled(_ index: Int) -> Bool {
        var current: Int? = index
        while let i = current {
            guard nodes[i].statusOkay else { return false }
            current = nodes[i].parent
        }
        return true
    }

    /// Whether `index` lies at or below the node at `path`.
    public func isWithin(_ index: Int, path: String) -> Bool {
        let nodePath = nodes[index].path
        return nodePath == path || nodePath.hasPrefix(path + "/")
    }

    /// The phandle `interrupt-parent` that applies to the node: its own, else the nearest ancestor's.
    public func interruptParent(of index: Int) -> (phandle: UInt32, from: Int)? {
        var current: Int? = index
        while let i = current {
            if let phandle = nodes[i].cell("interrupt-parent") { return (phandle, i) }
            current = nodes[i].parent
        }
        return nil
    }

    /// A node and its compatibles for messages: `/soc/serial@10000000 (ns16550a)`.
    public func describe(_ index: Int) -> String {
        let compatibles = nodes[index].compatibles
        return compatibles.isEmpty ? nodes[index].path : "\(nodes[index].path) (\(compatibles.joined(separator: ", ")))"
    }
}
