import KmatrixCore
import Synchronization

/// Boots in flight. Their QEMUs are registered in `ProcessGroups` with every other child
/// kmatrix starts (that is what signals and the watchdog use); this only counts boots, so
/// a test can tell that a finished boot left nothing running whatever else runs beside it.
public enum LiveMachines {
    private static let boots = Atomic<Int>(0)

    /// A signal is stopping kmatrix: boots that end now were stopped, not finished.
    public static var interrupted: Bool { ProcessGroups.stopping }
    /// QEMU boots whose process group has not been torn down yet.
    public static var count: Int { boots.load(ordering: .acquiring) }
    static func started() { boots.add(1, ordering: .releasing) }
    static func ended() { boots.subtract(1, ordering: .releasing) }
}
