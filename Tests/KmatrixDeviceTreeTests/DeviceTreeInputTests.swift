import Foundation
import KmatrixCore
import KmatrixDeviceTree
import KmatrixFDT
import KmatrixTestSupport
import Testing


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
        let drivers = try KernelCompatibles.drivers(vmlinux: "\(directory)/t.o")
        #expect(!drivers.fromEveryString)
        #expect(drivers.symbols?.isSuperset(of: ["table", "early", "quirk"]) == true, "\(drivers.symbols?.sorted() ?? [])")
    }

    @Test func noFieldShapedStringIsAWarningNotASilentFallback() throws {
        let directory = try DTFixtures.temporaryDirectory()
        try #"const char *const names[] = { "arm,cortex-a9-gic", "arm,pl011" };"#.write(toFile: "\(directory)/t.c", atomically: true, encoding: .utf8)
        try DTFixtures.run(["cc", "-c", "-O0", "-o", "\(directory)/t.o", "\(directory)/t.c"])
        let drivers = try KernelCompatibles.drivers(vmlinux: "\(directory)/t.o")
        #expect(drivers.fromEveryString)
        #expect(drivers.compatibles.contains("arm,cortex-a9-gic"))
        let report = DeviceTreeCheck.run(dtb: try DTFixtures.compile(DTFixtures.vexpress()), target: try DTFixtures.target("arm-vexpress-a9"),
                                         drivers: drivers)
        #expect(report.warnings.contains { $0.check == .drivers && $0.reason.contains("every printable string") }, "\(report.text)")
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
        let drivers = try KernelCompatibles.drivers(vmlinux: buildDirectory)
        #expect(drivers.symbols != nil && !drivers.fromEveryString)
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
        let report = DeviceTreeCheck.run(dtb: dtb, target: cell.target, drivers: drivers, kernel: buildDirectory)
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
