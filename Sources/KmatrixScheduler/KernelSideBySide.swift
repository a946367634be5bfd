import Foundation

/// A matrix with several kernels, read the way a porting engineer compares them: per
/// target (with its toolchain, profile and root device) one row, each kernel's outcome,
/// image size and boot time in its own columns.
public enum KernelSideBySide {
    /// The kernels of the run in matrix order, when there are two or more.
    static func kernels(_ results: RunResults) -> [String] {
        var names: [String] = []
        for name in results.cells.compactMap(\.kernelName) where !names.contains(name) { names.append(name) }
        return names.count > 1 ? names : []
    }

    /// Rows: the cell without its kernel (`target/toolchain/profile/rootfs`), then per kernel
    /// outcome, image size and the time to the boot's last phase (the marker).
    public static func rows(_ results: RunResults) -> (kernels: [String], rows: [[String]]) {
        let kernels = kernels(results)
        guard !kernels.isEmpty else { return ([], []) }
        var order: [String] = []
        var byRow: [String: [String: CellResult]] = [:]
        for cell in results.cells {
            guard let kernel = cell.kernelName else { continue }
            let row = "\(cell.target)/\(cell.toolchain)/\(cell.profile)/\(cell.rootfs)"
            if byRow[row] == nil { order.append(row) }
            byRow[row, default: [:]][kernel] = cell
        }
        let rows = order.map { row in
            [row] + kernels.flatMap { kernel -> [String] in
                guard let cell = byRow[row]?[kernel] else { return ["not in the matrix", "-", "-"] }
                return [cell.outcome.rawValue, Reports.megabytes(cell.kernel?.imageBytes), Reports.seconds(cell.boot?.phases.last?.seconds)]
            }
        }
        return (kernels, rows)
    }

    /// The markdown section (empty for a run with one kernel).
    public static func markdown(_ results: RunResults) -> String {
        let (kernels, rows) = rows(results)
        guard !kernels.isEmpty else { return "" }
        var out = "\n## Kernels side by side\n\n| cell | " + kernels.map { "\($0): outcome | \($0): image | \($0): boot" }.joined(separator: " | ") + " |\n"
        out += "|---|" + String(repeating: "---|", count: kernels.count * 3) + "\n"
        for row in rows { out += "| " + row.joined(separator: " | ") + " |\n" }
        return out
    }
}
