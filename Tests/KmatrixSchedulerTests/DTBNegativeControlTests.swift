import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// The device-tree check must agree with the boot. Each control is a shipped DTB board with
/// one option its boot needs turned off: the check errs, naming the node and the chain that
/// leads to it, and the boot (`--boot-anyway`) fails. Each builds one tiny kernel. (Turning
/// off an interrupt controller is not among them: every DTB board's platform option selects
/// its GIC or VIC. vexpress-a9 without its console's oscillator clock, CLK_VEXPRESS_OSC,
/// was a fourth control in an earlier run of this test: check error on .../mcc/oscclk2, boot failed.)
// One control at a time: three kernel builds at once beside the other tests (each run with
// its own two job slots) pushed the machine to a load of 17 and made tests with deadlines fail.
@Suite("The DTB check agrees with the boot: negative controls", .serialized)
struct DTBNegativeControlTests {
    struct Control: Sendable, CustomStringConvertible {
        /// The shipped board the control is made from.
        var board: String
        /// The options turned off (removed from the board's list and set `=n`).
        var off: [String]
        /// The node the check must name in an error, and the chain text (`a -> via -> b`) it must print.
        var node: String
        var chain: String
        var description: String { "\(board) without \(off[0])" }
    }

    static let vexpressUART = "/bus@40000000/motherboard-bus@40000000/iofpga@7,00000000/uart@9000 (arm,pl011, arm,primecell)"
    static let controls: [Control] = [
        // The console UART's driver: the check finds no pl011_ids in vmlinux's symbols.
        Control(board: "arm-vexpress-a9", off: ["CONFIG_SERIAL_AMBA_PL011", "CONFIG_SERIAL_AMBA_PL011_CONSOLE"],
                node: "/bus@40000000/motherboard-bus@40000000/iofpga@7,00000000/uart@9000",
                chain: "\(vexpressUART): console UART with no built-in driver"),
        // The i.MX UART driver, on the console that is QEMU's second serial port.
        Control(board: "arm-sabrelite", off: ["CONFIG_SERIAL_IMX", "CONFIG_SERIAL_IMX_CONSOLE"],
                node: "/soc/bus@2100000/serial@21e8000",
                chain: "/soc/bus@2100000/serial@21e8000 (fsl,imx6q-uart, fsl,imx21-uart): console UART with no built-in driver"),
        // A SoC's clock controller: the H3's CCU clocks the console UART.
        Control(board: "arm-orangepi-pc", off: ["CONFIG_SUN8I_H3_CCU"],
                node: "/soc/clock@1c20000",
                chain: "/soc/serial@1c28000 (snps,dw-apb-uart) -> clocks -> /soc/clock@1c20000 (allwinner,sun8i-h3-ccu)"),
    ]

    /// A project holding one target, the board with `off` turned off, and a matrix of its
    /// one tiny cell (no guest tests: the boot is what is compared).
    static func project(for control: Control) throws -> (root: String, cell: String) {
        let root = NSTemporaryDirectory() + "kmatrix-dtb-control-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/Targets", withIntermediateDirectories: true)
        let name = "\(control.board)-without-\(control.off[0].dropFirst("CONFIG_".count).lowercased().replacingOccurrences(of: "_", with: "-"))"
        let shipped = try Data(contentsOf: URL(fileURLWithPath: "\(repositoryRoot)/Targets/\(control.board).json"))
        var target = try #require(try JSONSerialization.jsonObject(with: shipped) as? [String: Any])
        var kernel = try #require(target["kernel"] as? [String: Any])
        let options = try #require(kernel["options"] as? [String])
        kernel["options"] = options.filter { option in !control.off.contains { option.hasPrefix("\($0)=") } } + control.off.map { "\($0)=n" }
        target["kernel"] = kernel
        target["name"] = name
        try JSONSerialization.data(withJSONObject: target, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: "\(root)/Targets/\(name).json"))
        let matrixData = try Data(contentsOf: URL(fileURLWithPath: "\(repositoryRoot)/matrix.json"))
        var matrix = try #require(try JSONSerialization.jsonObject(with: matrixData) as? [String: Any])
        var profiles = try #require(matrix["profiles"] as? [String: Any])
        var tiny = try #require(profiles["tiny"] as? [String: Any])
        tiny.removeValue(forKey: "tests")
        profiles = ["tiny": tiny]
        matrix["profiles"] = profiles
        matrix.removeValue(forKey: "tests")
        matrix["cells"] = [["target": [name], "toolchain": "gcc", "profile": "tiny", "rootfs": "initramfs"]]
        try JSONSerialization.data(withJSONObject: matrix, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: "\(root)/matrix.json"))
        return (root, "\(name)/gcc/tiny/initramfs")
    }

    @Test(.needs(tools: ["make", "arm-linux-gnueabihf-gcc", "qemu-system-arm"], .kmatrixBinary, .unpackedKernel, .busyboxInstall("armhf")),
          .timeLimit(.minutes(30)), arguments: controls)
    func theCheckErrsAndTheBootFails(_ control: Control) async throws {
        let (root, cell) = try Self.project(for: control)
        let fixture = try FixtureCommands()
        // Three kernel build trees go with the fixture's cache: removed off the cooperative
        // pool when the test gets to its end (a synchronous delete there held up the other
        // suites' boot watchers), in the defer only if it did not.
        var removed = false
        defer { if !removed { fixture.remove(); try? FileManager.default.removeItem(atPath: root) } }
        let (status, output) = try await fixture.run(["run", "--cell", cell, "--boot-anyway", "--plain"], project: root)
        #expect(status != 0, "\(output)")
        let results = try RunResults.load(from: "\(fixture.cache)/runs/latest")
        let config = try #require(results.steps.first { $0.kind == .kernelConfig && $0.scope == cell })
        try #require(config.status == .passed, "the control's config: \(config.summary)")
        let result = try #require(results.cells.first { $0.id == cell })
        let dtb = try #require(result.dtb, "\(output)")
        #expect(!dtb.passed)
        #expect(dtb.findings.contains { $0.severity == "error" && $0.node == control.node }, "\(dtb.findings.map { "\($0.severity) \($0.node): \($0.reason)" })")
        let check = try #require(results.steps.first { $0.kind == .dtbCheck && $0.scope == cell })
        let log = try String(contentsOfFile: try #require(check.log), encoding: .utf8)
        #expect(log.contains("ERROR [drivers] \(control.chain)"), "\(log)")
        // The boot, let through, fails: the check was right to stop it.
        let boot = try #require(result.boot, "\(output)")
        #expect(boot.outcome != "pass", "\(control): booted although the check erred")
        print("dtb control: \(control): check \(dtb.errors) error(s), boot \(boot.outcome) after \(String(format: "%.1f", boot.seconds)) s")
        await Blocking.run { fixture.remove(); try? FileManager.default.removeItem(atPath: root) }
        removed = true
    }
}
