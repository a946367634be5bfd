import Foundation
import KmatrixCore

/// The memory nodes against the RAM the target's machine gets.
extension Checker {
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
        let rewrites = target.qemu.replacesDTBMemory
        // When QEMU replaces the tree's /memory, too much there is only a warning.
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
