import Foundation
import KmatrixCore
import KmatrixDeviceTree
import KmatrixFDT
import KmatrixTestSupport
import Testing

@Suite("Device tree checks over DTBs compiled by dtc", .needs(tools: ["dtc"]))
struct DeviceTreeCheckTests {
    let vexpress: Target
    let riscv: Target

    init() throws {
        vexpress = try DTFixtures.target("arm-vexpress-a9")
        riscv = try DTFixtures.target("riscv64-virt")
    }

    func check(_ dts: String, target: Target? = nil, console: String? = nil,
               kernel: Set<String>? = DTFixtures.fullKernel) throws -> DeviceTreeReport {
        DeviceTreeCheck.run(dtb: try DTFixtures.compile(dts), target: target ?? vexpress, console: console, kernelCompatibles: kernel)
    }

    func errors(_ report: DeviceTreeReport, _ check: DeviceTreeFinding.Check) -> [DeviceTreeFinding] {
        report.errors.filter { $0.check == check }
    }

    @Test func goodTreePasses() throws {
        let report = try check(DTFixtures.vexpress())
        #expect(report.passed, "\(report.text)")
        #expect(report.rootCompatibles == ["arm,vexpress,v2p-ca9", "arm,vexpress"])
        // The console came from the alias serial0.
        #expect(report.findings.contains { $0.check == .console && $0.severity == .info && $0.node == DTFixtures.uart0Path })
        // The PL050 has no driver and the boot does not need it: a note, counted in one line.
        #expect(report.warnings.isEmpty, "\(report.text)")
        #expect(report.notNeededToBoot.map(\.node) == ["/bus@10000000/kmi@10006000"])
        #expect(report.text.contains("INFO [drivers] 1 device(s) with no built-in driver (not needed to boot): /bus@10000000/kmi@10006000"))
        #expect(report.findings.contains { $0.check == .memory && $0.reason.contains("256 MiB") })
    }

    @Test func truncatedBlobIsReportedWithLibfdtText() throws {
        let blob = try DTFixtures.bytes(DTFixtures.compile(DTFixtures.vexpress()))
        for length in [0, 3, 39, 40, blob.count / 2, blob.count - 1] {
            let report = DeviceTreeCheck.run(blob: Array(blob.prefix(length)), name: "cut", target: vexpress, kernelCompatibles: nil)
            let structure = errors(report, .structure)
            #expect(structure.count == 1, "length \(length): \(report.text)")
            #expect(structure.first?.reason.contains("FDT_ERR_TRUNCATED") == true, "length \(length): \(report.text)")
        }
    }

    @Test func corruptedBlobIsReportedWithLibfdtText() throws {
        var blob = try DTFixtures.bytes(DTFixtures.compile(DTFixtures.vexpress()))
        // The structure block's first token (FDT_BEGIN_NODE) becomes garbage.
        let structOffset = Int(blob[8]) << 24 | Int(blob[9]) << 16 | Int(blob[10]) << 8 | Int(blob[11])
        blob.replaceSubrange(structOffset..<(structOffset + 4), with: [0xde, 0xad, 0xbe, 0xef])
        let report = DeviceTreeCheck.run(blob: blob, name: "corrupt", target: vexpress, kernelCompatibles: nil)
        #expect(!report.passed)
        #expect(errors(report, .structure).first?.reason.contains("FDT_ERR_BADSTRUCTURE") == true, "\(report.text)")

        let text = DeviceTreeCheck.run(blob: Array("not a device tree at all, just some text".utf8), name: "text",
                                       target: vexpress, kernelCompatibles: nil)
        #expect(errors(text, .structure).first?.reason.contains("FDT_ERR_BADMAGIC") == true, "\(text.text)")
    }

    @Test func unreadableFileIsAFinding() {
        let report = DeviceTreeCheck.run(dtb: "/nonexistent/x.dtb", target: vexpress, kernelCompatibles: nil)
        #expect(!report.passed)
        #expect(errors(report, .structure).first?.reason.contains("cannot read") == true)
    }

    @Test func machineMismatchFails() throws {
        let report = try check(DTFixtures.riscv(memory: "0x0 0x80000000 0x0 0x10000000"), target: vexpress, kernel: nil)
        #expect(errors(report, .machine).first?.reason.contains("expects arm,vexpress,v2p-ca9") == true, "\(report.text)")
    }

    @Test func stdoutPathToMissingNodeFails() throws {
        let report = try check(DTFixtures.vexpress(chosen: #"stdout-path = "/bus@10000000/uart@deadbeef:115200n8";"#))
        let console = errors(report, .console)
        #expect(console.count == 1, "\(report.text)")
        #expect(console.first?.reason.contains("names no node") == true)
        #expect(console.first?.node == "/chosen")
    }

    @Test func stdoutPathThroughAliasWithOptionsResolves() throws {
        let report = try check(DTFixtures.vexpress(chosen: #"stdout-path = "serial0:115200n8";"#))
        #expect(report.passed, "\(report.text)")
        #expect(report.findings.contains { $0.check == .console && $0.node == DTFixtures.uart0Path && $0.reason.contains("stdout-path") })
    }

    @Test func consoleOfTheWrongFamilyFails() throws {
        // console=ttyAMA0, but stdout-path names the 16550.
        let report = try check(DTFixtures.vexpress(chosen: #"stdout-path = &uart1;"#))
        let console = errors(report, .console)
        #expect(console.count == 1, "\(report.text)")
        #expect(console.first?.node == "/bus@10000000/serial@1000a000")
        #expect(console.first?.reason.contains("not a ARM PL011 UART") == true)
        // And the other way round: ttyS0 on the alias serial0, a PL011.
        let ttyS = try check(DTFixtures.vexpress(), console: "ttyS0")
        #expect(errors(ttyS, .console).first?.reason.contains("not a 8250/16550 UART") == true, "\(ttyS.text)")
        // ttyS1 is the 16550 (alias serial1): fine.
        #expect(try check(DTFixtures.vexpress(), console: "ttyS1").passed)
    }

    @Test func disabledConsoleFails() throws {
        let report = try check(DTFixtures.vexpress(uart0: #"status = "disabled";"#))
        let console = errors(report, .console)
        #expect(console.count == 1, "\(report.text)")
        #expect(console.first?.node == DTFixtures.uart0Path)
        #expect(console.first?.reason.contains("disabled") == true)
    }

    @Test func consoleWithNoNodeFails() throws {
        let report = try check(DTFixtures.vexpress(), console: "ttyAMA3")
        #expect(errors(report, .console).first?.reason.contains("resolves to no node") == true, "\(report.text)")
    }

    @Test func interruptControllerWithoutDriverFails() throws {
        let report = try check(DTFixtures.vexpress(gicCompatible: "acme,imaginary-gic"))
        let drivers = errors(report, .drivers)
        #expect(drivers.count == 1, "\(report.text)")
        #expect(drivers.first?.node == "/interrupt-controller@1e001000")
        #expect(drivers.first?.compatibles == ["acme,imaginary-gic"])
        #expect(drivers.first?.reason == "root interrupt controller with no built-in driver")
    }

    @Test func aGPIOInterruptControllerNothingNeedsIsANote() throws {
        // An interrupt controller no boot chain reaches (a GPIO block) without a driver:
        // a note, never an error; the board boots without it.
        let dts = DTFixtures.vexpress().replacingOccurrences(of: "timer@1e000600 {", with: """
            gpio@1e00a000 { compatible = "acme,gpio"; reg = <0x1e00a000 0x100>; gpio-controller; #gpio-cells = <2>;
                            interrupt-controller; #interrupt-cells = <2>; interrupts = <0 9 4>; };
            timer@1e000600 {
            """)
        let report = try check(dts)
        #expect(report.passed, "\(report.text)")
        #expect(report.findings.contains { $0.node == "/gpio@1e00a000" && $0.severity == .info })
    }

    @Test func timerWhoseClockProviderHasNoDriverFailsWithTheChain() throws {
        let kernel = DTFixtures.fullKernel.subtracting(["arm,sp810", "arm,vexpress-osc"])
        let report = try check(DTFixtures.vexpress(), kernel: kernel)
        let chains = errors(report, .drivers).map(\.chainText)
        let timer = "/bus@10000000/timer@10011000 (arm,sp804, arm,primecell)"
        // The console UART's clock is the oscillator: an error, with the chain.
        #expect(chains.contains("\(DTFixtures.uart0Path) (arm,pl011, arm,primecell) -> clocks -> /bus@10000000/oscclk2 (arm,vexpress-osc)"),
                "\(report.text)")
        // The SP804's chain is broken too, but the TWD is a usable timer: a note.
        #expect(report.findings.contains { $0.severity == .info && $0.chainText == "\(timer) -> clocks -> /bus@10000000/sysctl@10001000 (arm,sp810, arm,primecell)" },
                "\(report.text)")
        // Without the TWD's driver no timer is usable: the SP804's chain is the error.
        let noTWD = try check(DTFixtures.vexpress(), kernel: kernel.subtracting(["arm,cortex-a9-twd-timer"]))
        let timerChains = errors(noTWD, .drivers).map(\.chainText)
        #expect(timerChains.contains("\(timer) -> clocks -> /bus@10000000/sysctl@10001000 (arm,sp810, arm,primecell)"), "\(noTWD.text)")
        #expect(timerChains.contains("/timer@1e000600 (arm,cortex-a9-twd-timer)"), "\(noTWD.text)")
        // arm,primecell alone is no driver for the SP804 (with the TWD gone as well).
        let noTimerDriver = try check(DTFixtures.vexpress(),
                                      kernel: DTFixtures.fullKernel.subtracting(["arm,sp804", "arm,cortex-a9-twd-timer"]).union(["arm,primecell"]))
        #expect(errors(noTimerDriver, .drivers).map(\.node) == ["/timer@1e000600", "/bus@10000000/timer@10011000"], "\(noTimerDriver.text)")
    }

    @Test func aPrimeCellIsDrivenByItsAMBATableNotItsEarlyconEntry() throws {
        // The kernel's symbols decide: an earlycon entry for arm,pl011 is no PL011 driver.
        let dtb = try DTFixtures.compile(DTFixtures.vexpress())
        let withDriver = KernelDrivers(compatibles: DTFixtures.fullKernel, symbols: ["pl011_ids", "sp804_of_init"])
        #expect(DeviceTreeCheck.run(dtb: dtb, target: vexpress, drivers: withDriver).passed)
        let earlyconOnly = KernelDrivers(compatibles: DTFixtures.fullKernel, symbols: ["sp804_of_init"])
        let report = DeviceTreeCheck.run(dtb: dtb, target: vexpress, drivers: earlyconOnly)
        #expect(errors(report, .drivers).map(\.node) == [DTFixtures.uart0Path], "\(report.text)")
        #expect(errors(report, .drivers).first?.reason == "console UART with no built-in driver")
    }

    @Test func anUnreadableKernelIsAnErrorNotASkip() throws {
        let report = DeviceTreeCheck.run(dtb: try DTFixtures.compile(DTFixtures.vexpress()), target: vexpress, drivers: nil,
                                         kernel: "/nonexistent/vmlinux", kernelProblem: "cannot read the kernel /nonexistent/vmlinux")
        #expect(!report.passed)
        #expect(errors(report, .drivers).first?.reason.contains("cannot read the kernel /nonexistent/vmlinux") == true, "\(report.text)")
    }

    @Test func consolePinsResetsAndPowerDomainsAreFollowed() throws {
        // A console UART under a bus with its own driver, with pins, a reset and a power domain.
        let dts = DTFixtures.vexpress().replacingOccurrences(of: "kmi@10006000 {", with: """
            pinctrl@10007000 { compatible = "acme,pinctrl"; reg = <0x10007000 0x100>;
                               uart2_pins: uart2-pins { pins = "PA0", "PA1"; }; };
            rst: reset@10008000 { compatible = "acme,reset"; reg = <0x10008000 0x100>; #reset-cells = <1>; };
            pd: power@1000b000 { compatible = "acme,power"; reg = <0x1000b000 0x100>; #power-domain-cells = <0>; };
            acmebus@10020000 { compatible = "acme,bus"; #address-cells = <1>; #size-cells = <1>; ranges;
                uart2: serial@10021000 { compatible = "ns16550a"; reg = <0x10021000 0x100>; interrupts = <0 7 4>;
                                         pinctrl-names = "default"; pinctrl-0 = <&uart2_pins>; resets = <&rst 3>; power-domains = <&pd>; };
            };
            kmi@10006000 {
            """).replacingOccurrences(of: "serial1 = &uart1;", with: "serial1 = &uart1; serial2 = &uart2;")
        let all = DTFixtures.fullKernel.union(["acme,pinctrl", "acme,reset", "acme,power", "acme,bus"])
        let good = try check(dts, console: "ttyS2", kernel: all)
        #expect(good.passed, "\(good.text)")
        let uart2 = "/bus@10000000/acmebus@10020000/serial@10021000 (ns16550a)"
        for (missing, link) in [("acme,pinctrl", "pinctrl-0 -> /bus@10000000/pinctrl@10007000 (acme,pinctrl)"),
                                ("acme,reset", "resets -> /bus@10000000/reset@10008000 (acme,reset)"),
                                ("acme,power", "power-domains -> /bus@10000000/power@1000b000 (acme,power)"),
                                ("acme,bus", "parent bus -> /bus@10000000/acmebus@10020000 (acme,bus)")] {
            let report = try check(dts, console: "ttyS2", kernel: all.subtracting([missing]))
            #expect(errors(report, .drivers).map(\.chainText) == ["\(uart2) -> \(link)"], "\(missing): \(report.text)")
        }
    }

    @Test func aClockProvidersOwnParentIsAWarning() throws {
        // The console's clock controller lists an RTC oscillator as a parent (as the H3's CCU
        // does): without the RTC's driver the clocks derived from it are orphans, and the
        // board still boots when the UART's clock derives from another. A warning, not an error.
        let dts = DTFixtures.vexpress().replacingOccurrences(of: "osc: oscclk2 { compatible = \"arm,vexpress-osc\"; #clock-cells = <0>; };", with: """
            rtc: rtc@1000c000 { compatible = "acme,rtc"; reg = <0x1000c000 0x100>; #clock-cells = <1>; };
            osc: oscclk2 { compatible = "arm,vexpress-osc"; #clock-cells = <0>; clocks = <&rtc 0>; };
            """)
        let report = try check(dts)
        #expect(report.passed, "\(report.text)")
        #expect(report.warnings.contains { $0.node == "/bus@10000000/rtc@1000c000" && $0.reason.contains("parent clock") }, "\(report.text)")
        // The same RTC named by the console itself is an error.
        let direct = try check(dts.replacingOccurrences(of: "clocks = <&osc>, <&osc>;", with: "clocks = <&rtc 1>, <&osc>;"))
        #expect(errors(direct, .drivers).map(\.node) == ["/bus@10000000/rtc@1000c000"], "\(direct.text)")
    }

    @Test func missingPhandleIsAnError() throws {
        let dts = DTFixtures.vexpress().replacingOccurrences(of: "clocks = <&osc>, <&osc>;", with: "clocks = <0x4242>;")
        let report = try check(dts)
        #expect(errors(report, .drivers).contains { $0.node == DTFixtures.uart0Path && $0.reason.contains("phandle 0x4242") }, "\(report.text)")
    }

    @Test func noKernelSkipsDriverChecks() throws {
        let report = try check(DTFixtures.vexpress(gicCompatible: "acme,imaginary-gic"), kernel: nil)
        #expect(report.passed)
        #expect(report.findings.contains { $0.check == .drivers && $0.reason.contains("skipped") })
    }

    @Test func memoryLargerThanRAM() throws {
        // riscv virt: QEMU passes the tree as it is, so 1 GiB in a 256 MiB machine is an error.
        let riscvReport = try check(DTFixtures.riscv(memory: "0x0 0x80000000 0x0 0x40000000"), target: riscv, console: "ttyS0", kernel: nil)
        let memory = errors(riscvReport, .memory)
        #expect(memory.count == 1, "\(riscvReport.text)")
        #expect(memory.first?.reason.contains("claims 1024 MiB") == true)
        #expect(try check(DTFixtures.riscv(memory: "0x0 0x80000000 0x0 0x10000000"), target: riscv, console: "ttyS0", kernel: nil).passed)
        // vexpress: QEMU's ARM loader rewrites /memory, so the same claim is a warning.
        let arm = try check(DTFixtures.vexpress(memory: "0x60000000 0x40000000"))
        #expect(arm.passed, "\(arm.text)")
        #expect(arm.warnings.contains { $0.check == .memory && $0.reason.contains("replaces /memory") })
        // No memory node at all on riscv: the kernel finds no RAM.
        let none = try check(DTFixtures.riscv(memory: "0x0 0x80000000 0x0 0x10000000").replacingOccurrences(of: #"device_type = "memory"; "#, with: "")
                                .replacingOccurrences(of: "memory@80000000", with: "ram@80000000"),
                             target: riscv, console: "ttyS0", kernel: nil)
        #expect(errors(none, .memory).first?.reason.contains("no memory node") == true, "\(none.text)")
    }

    @Test func reportEncodesAsJSON() throws {
        let report = try check(DTFixtures.vexpress(), kernel: DTFixtures.fullKernel.subtracting(["arm,vexpress-osc"]))
        let data = try JSONEncoder().encode(report)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(object?["passed"] as? Bool == false)
        let decoded = try JSONDecoder().decode(DeviceTreeReport.self, from: data)
        #expect(decoded == report)
    }
}
