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
        // The PL050 has no driver: a warning, not an error.
        #expect(report.warnings.map(\.node) == ["/bus@10000000/kmi@10006000"])
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
        #expect(drivers.first?.reason == "interrupt controller with no built-in driver")
    }

    @Test func timerWhoseClockProviderHasNoDriverFailsWithTheChain() throws {
        let kernel = DTFixtures.fullKernel.subtracting(["arm,sp810", "arm,vexpress-osc"])
        let report = try check(DTFixtures.vexpress(), kernel: kernel)
        let chains = errors(report, .drivers).map(\.chainText)
        let timer = "/bus@10000000/timer@10011000 (arm,sp804, arm,primecell)"
        #expect(chains.contains("\(timer) -> clocks -> /bus@10000000/sysctl@10001000 (arm,sp810, arm,primecell)"), "\(report.text)")
        #expect(chains.contains("\(timer) -> clocks -> /bus@10000000/oscclk2 (arm,vexpress-osc)"), "\(report.text)")
        // The console UART's clock is the same oscillator.
        #expect(chains.contains("\(DTFixtures.uart0Path) (arm,pl011, arm,primecell) -> clocks -> /bus@10000000/oscclk2 (arm,vexpress-osc)"))
        // arm,primecell alone is no driver for the SP804.
        let noTimerDriver = try check(DTFixtures.vexpress(), kernel: DTFixtures.fullKernel.subtracting(["arm,sp804"]).union(["arm,primecell"]))
        #expect(errors(noTimerDriver, .drivers).map(\.node) == ["/bus@10000000/timer@10011000"], "\(noTimerDriver.text)")
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
        let report = try check(DTFixtures.vexpress(), kernel: DTFixtures.fullKernel.subtracting(["arm,sp810"]))
        let data = try JSONEncoder().encode(report)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(object?["passed"] as? Bool == false)
        let decoded = try JSONDecoder().decode(DeviceTreeReport.self, from: data)
        #expect(decoded == report)
    }
}

@Suite("Untrusted blobs never crash the checker")
struct DeviceTreeFuzzTests {
    @Test func randomBytes() throws {
        let target = try DTFixtures.target("arm-vexpress-a9")
        for seed in UInt64(0)..<400 {
            var random = SeededGenerator(seed: seed)
            let length = Int.random(in: 0..<1024, using: &random)
            var blob = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Half of them start like a DTB, so libfdt gets past the magic.
            if seed % 2 == 0, blob.count >= 40 {
                blob.replaceSubrange(0..<8, with: [0xd0, 0x0d, 0xfe, 0xed, 0, 0, UInt8(length >> 8), UInt8(length & 0xff)])
                blob.replaceSubrange(20..<24, with: [0, 0, 0, 17])
            }
            let report = DeviceTreeCheck.run(blob: blob, name: "seed \(seed)", target: target, kernelCompatibles: DTFixtures.fullKernel)
            #expect(!report.passed, "seed \(seed) passed as a DTB")
        }
    }

    @Test(.needs(tools: ["dtc"]))
    func mutatedValidBlobs() throws {
        let target = try DTFixtures.target("arm-vexpress-a9")
        let valid = try DTFixtures.bytes(DTFixtures.compile(DTFixtures.vexpress(chosen: #"stdout-path = "serial0:115200n8";"#)))
        var rejected = 0
        for seed in UInt64(0)..<1000 {
            var random = SeededGenerator(seed: seed)
            var blob = valid
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let at = Int.random(in: 0..<blob.count, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 4 where blob.count >= 40:
                    // A header field (totalsize, block offsets and sizes, versions) gets a random value.
                    let field = 4 * Int.random(in: 1..<10, using: &random)
                    let value = UInt32.random(in: 0...UInt32(blob.count + 64), using: &random)
                    blob.replaceSubrange(field..<(field + 4), with: withUnsafeBytes(of: value.bigEndian, Array.init))
                case 0: blob[at] = UInt8.random(in: 0...255, using: &random)
                case 1: blob[at] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                case 2: blob = Array(blob.prefix(max(at, 1)))
                default: blob[at] = [0x00, 0xff, 0x03, 0x09][Int.random(in: 0..<4, using: &random)]
                }
            }
            let report = DeviceTreeCheck.run(blob: blob, name: "mutant \(seed)", target: target, kernelCompatibles: DTFixtures.fullKernel)
            #expect(!report.findings.isEmpty)
            if !report.passed { rejected += 1 }
        }
        // Most mutants break something the checks see; all of them were survived.
        #expect(rejected > 500)
    }
}

@Suite("The DTBs QEMU generates for the virt machines")
struct QemuGeneratedTreeTests {
    func dump(_ argv: [String]) throws -> String {
        let path = try DTFixtures.temporaryDirectory() + "/virt.dtb"
        var argv = argv
        argv[2] += ",dumpdtb=\(path)"
        try DTFixtures.run(argv + ["-m", "256", "-nographic", "-nodefaults"])
        return path
    }

    @Test(.needs(tools: ["qemu-system-aarch64"]))
    func arm64VirtPasses() throws {
        let dtb = try dump(["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"])
        let kernel: Set<String> = ["arm,cortex-a15-gic", "arm,armv8-timer", "arm,pl011", "fixed-clock"]
        let report = DeviceTreeCheck.run(dtb: dtb, target: try DTFixtures.target("arm64-virt"), kernelCompatibles: kernel)
        #expect(report.passed, "\(report.text)")
        #expect(report.findings.contains { $0.check == .console && $0.node == "/pl011@9000000" && $0.severity == .info })
        // Without the GIC driver it would not boot.
        let broken = DeviceTreeCheck.run(dtb: dtb, target: try DTFixtures.target("arm64-virt"),
                                         kernelCompatibles: kernel.subtracting(["arm,cortex-a15-gic"]))
        #expect(broken.errors.map(\.node) == ["/intc@8000000"], "\(broken.text)")
    }

    @Test(.needs(tools: ["qemu-system-riscv64"]))
    func riscv64VirtPasses() throws {
        let dtb = try dump(["qemu-system-riscv64", "-M", "virt", "-bios", "default"])
        let kernel: Set<String> = ["riscv,cpu-intc", "sifive,plic-1.0.0", "ns16550a"]
        let report = DeviceTreeCheck.run(dtb: dtb, target: try DTFixtures.target("riscv64-virt"), kernelCompatibles: kernel)
        #expect(report.passed, "\(report.text)")
        #expect(report.rootCompatibles == ["riscv-virtio"])
        #expect(report.findings.contains { $0.check == .console && $0.node == "/soc/serial@10000000" && $0.severity == .info })
        // The per-hart interrupt controller under /cpus is checked too.
        let broken = DeviceTreeCheck.run(dtb: dtb, target: try DTFixtures.target("riscv64-virt"),
                                         kernelCompatibles: kernel.subtracting(["riscv,cpu-intc"]))
        #expect(broken.errors.map(\.node) == ["/cpus/cpu@0/interrupt-controller"], "\(broken.text)")
    }
}

@Suite("Compatibles read from a built object", .needs(tools: ["cc"]))
struct KernelCompatiblesTests {
    @Test func readsOfDeviceIdFieldsNotPlainStrings() throws {
        let directory = try DTFixtures.temporaryDirectory()
        let source = """
            struct of_device_id { char name[32]; char type[32]; char compatible[128]; const void *data; };
            const struct of_device_id table[] = { { .compatible = "arm,sp804" }, { .compatible = "acme,uart-2" }, { } };
            struct earlycon_id { char name[15]; char name_term; char compatible[128]; int (*setup)(void); };
            const struct earlycon_id early = { .name = "pl011", .compatible = "arm,pl011" };
            const char *const quirk = "arm,only-a-string-literal";
            """
        try source.write(toFile: "\(directory)/t.c", atomically: true, encoding: .utf8)
        try DTFixtures.run(["cc", "-c", "-O0", "-o", "\(directory)/t.o", "\(directory)/t.c"])
        let found = try KernelCompatibles.load(vmlinux: "\(directory)/t.o")
        #expect(found.isSuperset(of: ["arm,sp804", "acme,uart-2", "arm,pl011"]), "\(found.sorted())")
        #expect(!found.contains("arm,only-a-string-literal"))
        #expect(!found.contains("pl011"))
    }

    @Test func notAnELFIsBadInput() throws {
        let directory = try DTFixtures.temporaryDirectory()
        try "hello".write(toFile: "\(directory)/vmlinux", atomically: true, encoding: .utf8)
        #expect(throws: KmatrixError.self) { try KernelCompatibles.load(vmlinux: directory) }
        #expect(throws: KmatrixError.self) { try KernelCompatibles.load(vmlinux: "\(directory)/missing") }
    }
}

/// The cells of the shipped matrix with a device tree, as the fixture run built them in the
/// shared test cache: each DTB, the one from the build or the one QEMU generates, passes
/// against its own vmlinux.
@Suite("DTBs of the kernels built in the shared test cache")
struct BuiltCellTests {
    struct BuiltCell: Sendable, CustomStringConvertible {
        var cell: Cell
        var description: String { cell.id }
    }

    static let cells: [BuiltCell] = (TestCache.project?.cells ?? []).filter { $0.target.deviceTree.source != .none }.map(BuiltCell.init)

    @Test(.needs(tools: Set(cells.map(\.cell.target.qemu.binary)).sorted(),
                 .fixture("every built kernel with a device tree (made by kmatrix run)") {
                     !cells.isEmpty && cells.allSatisfy { TestCache.shared.builtKernel($0.cell) != nil }
                 }),
          arguments: cells)
    func builtCellPasses(_ built: BuiltCell) throws {
        let cell = built.cell
        let buildDirectory = try #require(TestCache.shared.builtKernel(cell), "\(cell.id) has no built kernel")
        let compatibles = try KernelCompatibles.load(vmlinux: buildDirectory)
        let dtb: String
        switch cell.target.deviceTree.source {
        case .build:
            dtb = try #require(DeviceTreeCheck.builtDTB(for: cell.target, in: buildDirectory))
        default:
            let q = cell.target.qemu
            dtb = try DTFixtures.temporaryDirectory() + "/qemu.dtb"
            var argv = [q.binary, "-M", "\(q.machine),dumpdtb=\(dtb)", "-m", String(q.memoryMiB), "-nographic", "-nodefaults"]
            if let cpu = q.cpu { argv += ["-cpu", cpu] }
            argv += q.firmware?.args ?? []
            try DTFixtures.run(argv)
        }
        let report = DeviceTreeCheck.run(dtb: dtb, target: cell.target, kernelCompatibles: compatibles, kernel: buildDirectory)
        #expect(report.passed, "\(report.text)")
    }
}

@Suite("The libfdt wrapper agrees with dtc", .needs(tools: ["dtc"]))
struct FlattenedDeviceTreeTests {
    @Test func pathsPhandlesAndPropertiesRoundTrip() throws {
        let path = try DTFixtures.compile(DTFixtures.vexpress())
        let fdt = try FlattenedDeviceTree(bytes: DTFixtures.bytes(path))
        let tree = try DeviceTree(fdt)
        #expect(tree.nodes.count == 16)  // root, chosen, aliases, memory, gic, twd, cpus, cpu@0, bus and its 7 devices
        for node in tree.nodes {
            let offset = try #require(fdt.offset(ofPath: node.path), "\(node.path)")
            #expect(try fdt.path(of: offset) == node.path)
        }
        // libfdt resolves aliases for paths without a leading '/'.
        let uart = try #require(fdt.offset(ofPath: "serial0"))
        #expect(try fdt.path(of: uart) == DTFixtures.uart0Path)
        let sysctl = try #require(tree.index(ofPath: "/bus@10000000/sysctl@10001000"))
        let phandle = try #require(tree.nodes[sysctl].phandle)
        #expect(try fdt.offset(ofPhandle: phandle).map { try fdt.path(of: $0) } == "/bus@10000000/sysctl@10001000")
        #expect(tree.nodes[sysctl].cells("clocks")?.count == 2)
        #expect(tree.resolve("serial1") == tree.index(ofPath: "/bus@10000000/serial@1000a000"))
        #expect(tree.index(ofPath: "/bus/uart") == tree.index(ofPath: DTFixtures.uart0Path))
    }

    @Test func errorsCarryLibfdtText() {
        #expect(throws: FDTError("fdt_check_header", code: FDTError.truncatedCode)) {
            try FlattenedDeviceTree(bytes: [0xd0, 0x0d, 0xfe, 0xed])
        }
        #expect(FDTError("x", code: -9).message == "FDT_ERR_BADMAGIC")
    }
}

@Suite("Report rendering")
struct DeviceTreeReportTests {
    @Test func identicalWarningsPrintOnceAndErrorsComeFirst() {
        let warning = { (node: String) in
            DeviceTreeFinding(.warning, .drivers, node: node, compatibles: ["virtio,mmio"], reason: "no built-in driver (not needed to boot)")
        }
        let error = DeviceTreeFinding(.error, .drivers, node: "/b", compatibles: ["arm,sp810"], reason: "needed by the timer; no built-in driver",
                                      chain: [.init(via: nil, node: "/a", compatibles: ["arm,sp804"]),
                                              .init(via: "clocks", node: "/b", compatibles: ["arm,sp810"])])
        let report = DeviceTreeReport(dtb: "x.dtb", target: "t", console: "ttyAMA0",
                                      findings: [warning("/v@1"), warning("/v@2"), warning("/v@3"), error])
        let lines = report.text.split(separator: "\n").map(String.init)
        #expect(lines.contains("  ERROR [drivers] /a (arm,sp804) -> clocks -> /b (arm,sp810): needed by the timer; no built-in driver"))
        #expect(lines.contains("  WARNING [drivers] /v@1 (virtio,mmio): no built-in driver (not needed to boot) (and 2 more node(s) with the same compatible)"))
        #expect(lines.firstIndex { $0.contains("ERROR") }! < lines.firstIndex { $0.contains("WARNING") }!)
        #expect(lines.last == "FAIL: 1 error(s), 3 warning(s)")
    }
}
