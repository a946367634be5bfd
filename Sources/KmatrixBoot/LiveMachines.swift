import KmatrixCore

/// Kept for callers written before `ProcessGroups`: every boot's QEMU is registered there
/// now, with every other child kmatrix starts, and `KmatrixMain` handles the signals.
public enum LiveMachines {
    /// A signal is stopping kmatrix: boots that end now were stopped, not finished.
    public static var interrupted: Bool { ProcessGroups.stopping }
    /// Children kmatrix is running right now (boots and every other process group).
    public static var count: Int { ProcessGroups.count }
    public static func stopAll() { ProcessGroups.stopAll() }
}
