import Foundation
import KmatrixCore
import KmatrixDeviceTree
import KmatrixTestSupport
import Testing

/// A board kmatrix has no code for: the DTB console check finds its `ttymxc1` through the
/// i.MX UART family and the tree's stdout-path, from the Targets file alone.
@Suite("A new board's DTB console", .needs(tools: ["dtc"]))
struct NewBoardConsoleTests {
    func check(_ dts: String = MadeUpBoard.dts, target: Target? = nil, kernel: Set<String> = MadeUpBoard.kernelCompatibles) throws -> DeviceTreeReport {
        DeviceTreeCheck.run(dtb: try DTFixtures.compile(dts), target: try target ?? MadeUpBoard.target(), kernelCompatibles: kernel)
    }

    @Test func consoleIsFoundThroughTheIMXFamily() throws {
        let report = try check()
        #expect(report.passed, "\(report.text)")
        #expect(report.console == MadeUpBoard.console)
        #expect(report.findings.contains {
            $0.check == .console && $0.severity == .info && $0.node == MadeUpBoard.consolePath && $0.reason.contains("stdout-path 'serial1:115200n8'")
        }, "\(report.text)")
        #expect(report.findings.contains { $0.check == .memory && $0.reason.contains("matches the 512 MiB") }, "\(report.text)")
    }

    @Test func missingIMXDriverIsAnError() throws {
        let report = try check(kernel: MadeUpBoard.kernelCompatibles.subtracting(["fsl,imx6q-uart", "fsl,imx21-uart"]))
        let drivers = report.errors.filter { $0.check == .drivers }
        #expect(drivers.map(\.node) == [MadeUpBoard.consolePath], "\(report.text)")
        #expect(drivers.first?.reason == "console UART with no built-in driver")
    }

    @Test func aUARTOfAnotherFamilyIsNotTheConsole() throws {
        let dts = MadeUpBoard.dts.replacingOccurrences(
            of: #"uart2: serial@21e8000 { compatible = "fsl,imx6q-uart", "fsl,imx21-uart";"#,
            with: #"uart2: serial@21e8000 { compatible = "ns16550a";"#)
        #expect(dts != MadeUpBoard.dts)
        let report = try check(dts, kernel: MadeUpBoard.kernelCompatibles.union(["ns16550a"]))
        let console = report.errors.filter { $0.check == .console }
        #expect(console.map(\.node) == [MadeUpBoard.consolePath], "\(report.text)")
        #expect(console.first?.reason.contains("not a i.MX UART as ttymxc needs") == true, "\(report.text)")
    }

    /// hvc0 (pseries) or ttysclp0 (s390x) have no UART node: the target says so and the
    /// check does not look for one.
    @Test func consoleWithoutADeviceTreeNodeIsNotChecked() throws {
        let json = MadeUpBoard.json.replacingOccurrences(
            of: #""device": "ttymxc1", "earlycon": "ec_imx6q,0x021e8000", "node": { "major": 207, "minor": 17 }"#,
            with: #""device": "hvc0", "deviceTree": false"#)
        #expect(json != MadeUpBoard.json)
        let target = try decodeDescriptor(Target.self, from: Data(json.utf8), file: "Targets/hvc.json")
        let report = try check(target: target)
        #expect(report.passed, "\(report.text)")
        #expect(report.findings.contains { $0.check == .console && $0.reason.contains("hvc0 has no device-tree node") }, "\(report.text)")
        // The same name without the flag is looked for in the tree.
        let unflagged = json.replacingOccurrences(of: #", "deviceTree": false"#, with: "")
        let looked = try check(target: try decodeDescriptor(Target.self, from: Data(unflagged.utf8), file: "Targets/hvc.json"))
        #expect(looked.findings.contains { $0.check == .console && $0.reason.contains("no UART family known for hvc") }, "\(looked.text)")
    }
}
