/// What the checks know about devices, kept as data: adding a UART family or a bus is a
/// line here, not a new branch in the checks.
public enum DeviceTreeRules {
    /// A console device prefix and the UARTs that can back it.
    public struct ConsoleFamily: Sendable, Equatable {
        /// The `console=` name without its index (`ttyAMA`, `ttyS`).
        public var prefix: String
        public var name: String
        /// A node is of the family when one of its compatibles is in this list.
        public var compatibles: [String]
    }

    public static let consoleFamilies: [ConsoleFamily] = [
        // `arm,primecell` alone is not enough: SP804 timers and PL061 GPIOs carry it too.
        ConsoleFamily(prefix: "ttyAMA", name: "ARM PL011", compatibles: ["arm,pl011", "arm,sbsa-uart"]),
        ConsoleFamily(prefix: "ttyS", name: "8250/16550", compatibles: [
            "ns8250", "ns16450", "ns16550", "ns16550a", "ns16750", "ns16850",
            "snps,dw-apb-uart", "intel,xscale-uart", "nvidia,tegra20-uart", "nxp,lpc3220-uart",
            "ralink,rt2880-uart", "altr,16550-FIFO32", "altr,16550-FIFO64", "altr,16550-FIFO128",
            "fsl,16550-FIFO64", "fsl,ns16550", "ti,da830-uart", "aspeed,ast2400-vuart",
            "mrvl,mmp-uart", "mrvl,pxa-uart", "brcm,bcm2835-aux-uart", "ti,am654-uart",
        ]),
    ]

    public static func consoleFamily(prefix: String) -> ConsoleFamily? {
        consoleFamilies.first { $0.prefix == prefix }
    }

    /// Buses whose children the kernel's core code populates (`of_default_bus_match_table`,
    /// the AMBA bus): such a node needs no driver of its own.
    public static let busCompatibles: Set<String> = ["simple-bus", "simple-mfd", "isa", "arm,amba-bus"]

    /// Generic compatibles that say what kind of bus device a node is, not which driver
    /// binds it: finding one of these in the kernel proves nothing about the device.
    public static let genericCompatibles: Set<String> = ["arm,primecell"]

    /// Node paths (and their subtrees) that describe, not devices: no driver checks there.
    /// Interrupt controllers below `/cpus` (RISC-V's per-hart intc) are still checked.
    public static let nonDevicePaths: [String] = ["/chosen", "/aliases", "/cpus", "/__symbols__", "/__overrides__"]

    /// A node is a timer the boot depends on when its name is `timer` or a compatible
    /// says timer (`arm,armv7-timer`, `arm,cortex-a9-twd-timer`). SP804s are named `timer@`.
    public static func isTimer(_ node: DeviceTree.Node) -> Bool {
        node.baseName == "timer" || node.compatibles.contains { $0.contains("timer") && !$0.contains("watchdog") }
    }

    /// Phandle-list properties whose providers a node needs, with the provider's cell-count property.
    public static let providerProperties: [(property: String, cells: String)] = [
        ("clocks", "#clock-cells"),
        ("interrupts-extended", "#interrupt-cells"),
    ]

    /// QEMU binaries whose loader replaces the DTB's `/memory` with the RAM it gives
    /// (hw/arm/boot.c; measured on QEMU 7.2 with `-M vexpress-a9,dumpdtb=` and a kernel DTB
    /// claiming 1 GiB: the dumped tree says 256 MiB).
    public static let qemuRewritesMemory: Set<String> = ["qemu-system-arm", "qemu-system-aarch64"]
}
