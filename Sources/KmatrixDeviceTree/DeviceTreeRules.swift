/// What the checks know about devices, kept as data: adding a UART family or a bus is a
/// line here, not a new branch in the checks.
public enum DeviceTreeRules {
    /// A console device prefix and the UARTs that can back it.
    public struct ConsoleFamily: Sendable, Equatable {
        /// The `console=` name without its index (`ttyAMA`, `ttyS`).
        public var prefix: String
        /// For messages, before "UART" (`ARM PL011`, `i.MX`).
        public var name: String
        /// A node is of the family when one of its compatibles is in this list.
        public var compatibles: [String]
    }

    /// Which UARTs back which Linux console names: a fact of the kernel's serial drivers
    /// (each driver's `uart_driver.dev_name` and its `of_device_id` table, Linux 6.1), kept
    /// as a table so a board needs only its Targets file. A driver whose device name
    /// depends on a Kconfig option (omap-serial's ttyO or 8250_omap's ttyS; atmel's ttyS or
    /// ttyAT) is listed under each name.
    public static let consoleFamilies: [ConsoleFamily] = [
        // `arm,primecell` alone is not enough: SP804 timers and PL061 GPIOs carry it too.
        ConsoleFamily(prefix: "ttyAMA", name: "ARM PL011", compatibles: ["arm,pl011", "arm,sbsa-uart"]),
        ConsoleFamily(prefix: "ttyS", name: "8250/16550", compatibles: [
            // 8250_of, then the 8250 glue drivers (dw, tegra, mtk, pxa, omap, bcm2835aux, ...).
            "ns8250", "ns16450", "ns16550", "ns16550a", "ns16750", "ns16850",
            "nxp,lpc3220-uart", "ralink,rt2880-uart", "intel,xscale-uart",
            "altr,16550-FIFO32", "altr,16550-FIFO64", "altr,16550-FIFO128", "fsl,16550-FIFO64", "fsl,ns16550",
            "mrvl,mmp-uart", "mrvl,pxa-uart", "ti,da830-uart", "nuvoton,wpcm450-uart", "nuvoton,npcm750-uart",
            "snps,dw-apb-uart", "cavium,octeon-3860-uart", "marvell,armada-38x-uart", "renesas,rzn1-uart",
            "starfive,jh7100-uart", "nvidia,tegra20-uart", "mediatek,mt6577-uart",
            "brcm,bcm2835-aux-uart", "brcm,bcm6345-uart", "aspeed,ast2400-vuart", "aspeed,ast2500-vuart",
            "ti,omap2-uart", "ti,omap3-uart", "ti,omap4-uart", "ti,am3352-uart", "ti,am4372-uart", "ti,dra742-uart",
            "ti,am654-uart", "atmel,at91rm9200-usart-serial",
        ]),
        ConsoleFamily(prefix: "ttyO", name: "OMAP (omap-serial)", compatibles: ["ti,omap2-uart", "ti,omap3-uart", "ti,omap4-uart"]),
        ConsoleFamily(prefix: "ttymxc", name: "i.MX", compatibles: ["fsl,imx6q-uart", "fsl,imx53-uart", "fsl,imx1-uart", "fsl,imx21-uart"]),
        ConsoleFamily(prefix: "ttyLP", name: "Freescale low-power", compatibles: [
            "fsl,vf610-lpuart", "fsl,ls1021a-lpuart", "fsl,ls1028a-lpuart", "fsl,imx7ulp-lpuart", "fsl,imx8qxp-lpuart",
            "fsl,imxrt1050-lpuart",
        ]),
        ConsoleFamily(prefix: "ttySIF", name: "SiFive", compatibles: ["sifive,fu540-c000-uart0", "sifive,uart0"]),
        ConsoleFamily(prefix: "ttyPS", name: "Cadence/Xilinx", compatibles: [
            "xlnx,xuartps", "cdns,uart-r1p8", "cdns,uart-r1p12", "xlnx,zynqmp-uart",
        ]),
        ConsoleFamily(prefix: "ttyMSM", name: "Qualcomm MSM/GENI", compatibles: [
            "qcom,msm-uart", "qcom,msm-uartdm", "qcom,msm-uartdm-v1.1", "qcom,msm-uartdm-v1.2", "qcom,msm-uartdm-v1.3",
            "qcom,msm-uartdm-v1.4", "qcom,geni-debug-uart", "qcom,geni-uart",
        ]),
        ConsoleFamily(prefix: "ttySAC", name: "Samsung", compatibles: [
            "samsung,s3c2410-uart", "samsung,s3c2412-uart", "samsung,s3c2440-uart", "samsung,s3c6400-uart",
            "samsung,s5pv210-uart", "samsung,exynos4210-uart", "samsung,exynos5433-uart", "samsung,exynos850-uart",
            "apple,s5l-uart", "axis,artpec8-uart",
        ]),
        ConsoleFamily(prefix: "ttyAML", name: "Amlogic Meson", compatibles: [
            "amlogic,meson6-uart", "amlogic,meson8-uart", "amlogic,meson8b-uart", "amlogic,meson-gx-uart", "amlogic,meson-s4-uart",
        ]),
        ConsoleFamily(prefix: "ttySTM", name: "STM32", compatibles: ["st,stm32-uart", "st,stm32f7-uart", "st,stm32h7-uart"]),
        ConsoleFamily(prefix: "ttyMV", name: "Marvell Armada 3700", compatibles: ["marvell,armada-3700-uart", "marvell,armada-3700-uart-ext"]),
        ConsoleFamily(prefix: "ttyAT", name: "Atmel", compatibles: ["atmel,at91rm9200-usart-serial"]),
    ]

    public static func consoleFamily(prefix: String) -> ConsoleFamily? {
        consoleFamilies.first { $0.prefix == prefix }
    }

    /// Buses whose children the kernel's core code populates (`of_default_bus_match_table`,
    /// the AMBA bus): such a node needs no driver of its own.
    public static let busCompatibles: Set<String> = ["simple-bus", "simple-mfd", "isa", "arm,amba-bus"]

    /// Buses that a driver of another node populates (`for_each_compatible_node`), not a
    /// driver of their own: the bus is driven when one of those drivers is in the kernel.
    /// Versatile Express's config buses are populated by the syscfg bridge that the
    /// `arm,vexpress-sysreg` MFD creates (drivers/bus/vexpress-config.c, Linux 6.1).
    public static let populatedBy: [String: [String]] = [
        "arm,vexpress,config-bus": ["arm,vexpress-sysreg"],
    ]

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

    /// The finding for an enabled device outside every chain the boot needs that has no
    /// built-in driver. A tiny config leaves most of a board out on purpose, so it is a
    /// note (`info`), and reports count these in one line per DTB instead of listing 15-40.
    public static let notNeededToBoot = (severity: DeviceTreeFinding.Severity.info, reason: "no built-in driver (not needed to boot)")

    /// Phandle-list properties whose providers a node needs, with the provider's cell-count property.
    public static let providerProperties: [(property: String, cells: String)] = [
        ("clocks", "#clock-cells"),
        ("interrupts-extended", "#interrupt-cells"),
        ("resets", "#reset-cells"),
        ("power-domains", "#power-domain-cells"),
    ]

    /// PrimeCell compatibles and the names of their Linux drivers' `amba_id` tables (Linux
    /// 6.1): AMBA drivers bind by the peripheral ID the device reports, so the kernel holds
    /// no compatible for them and the check looks for the table in vmlinux's symbols.
    public static let ambaIDTables: [String: [String]] = [
        "arm,pl010": ["pl010_ids"],
        "arm,pl011": ["pl011_ids"],
        "arm,pl022": ["pl022_ids"],
        "arm,pl031": ["pl031_ids"],
        "arm,pl041": ["aaci_ids"],
        "arm,pl050": ["amba_kmi_idtable"],
        "arm,pl061": ["pl061_ids"],
        "arm,pl080": ["pl08x_ids"],
        "arm,pl081": ["pl08x_ids"],
        "arm,pl110": ["clcdfb_id_table", "pl111_id_table"],
        "arm,pl111": ["clcdfb_id_table", "pl111_id_table"],
        "arm,pl180": ["mmci_ids"],
        "arm,pl18x": ["mmci_ids"],
        "arm,pl330": ["pl330_ids"],
        "arm,sp805": ["sp805_wdt_ids"],
    ]
}
