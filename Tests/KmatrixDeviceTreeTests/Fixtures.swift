import Foundation
import KmatrixCore
import KmatrixDeviceTree
import KmatrixTestSupport

/// Test helpers: compile DTS with the real dtc (an oracle independent of libfdt's reader),
/// load the shipped target descriptors, and a deterministic random source.
enum DTFixtures {
    static func tool(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static let hasDTC = tool("dtc") != nil
    static let hasCC = tool("cc") != nil

    struct ToolFailure: Error, CustomStringConvertible { var description: String }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "kmatrix-dt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs a tool to completion; throws with its stderr when it fails. Stderr goes to a
    /// file, not a pipe: Foundation's pipe reads trap on EINTR when children exit.
    static func run(_ argv: [String]) throws {
        let log = try temporaryDirectory() + "/stderr"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? errors.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool(argv[0]) ?? argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()  // dtc, cc and a QEMU dumpdtb: under a second
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw ToolFailure(description: "\(argv.joined(separator: " ")): \(message)")
        }
    }

    /// A DTB compiled from source by dtc, written to a file.
    static func compile(_ dts: String) throws -> String {
        let directory = try temporaryDirectory()
        try dts.write(toFile: "\(directory)/tree.dts", atomically: true, encoding: .utf8)
        try run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "\(directory)/tree.dtb", "\(directory)/tree.dts"])
        return "\(directory)/tree.dtb"
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func target(_ name: String) throws -> Target {
        let project = try Project.load(root: repositoryRoot)
        guard let target = project.targets[name] else { throw ToolFailure(description: "no target \(name)") }
        return target
    }

    /// What a vexpress kernel with every needed driver offers.
    static let fullKernel: Set<String> = [
        "arm,cortex-a9-gic", "arm,cortex-a9-twd-timer", "fixed-clock", "arm,vexpress-osc", "arm,sp810",
        "arm,pl011", "arm,sp804", "ns16550a", "simple-bus",
    ]

    static let uart0Path = "/bus@10000000/uart@10009000"

    /// A small vexpress-like tree: GIC, TWD and SP804 timers, SP810 and an oscillator as
    /// clock providers, a PL011 and a 16550. The parameters break one thing at a time.
    static func vexpress(chosen: String = "", uart0: String = "", gicCompatible: String = "arm,cortex-a9-gic",
                         memory: String = "0x60000000 0x10000000") -> String {
        """
        /dts-v1/;
        / {
            #address-cells = <1>;
            #size-cells = <1>;
            compatible = "arm,vexpress,v2p-ca9", "arm,vexpress";
            interrupt-parent = <&gic>;
            chosen { \(chosen) };
            aliases { serial0 = &uart0; serial1 = &uart1; };
            memory@60000000 { device_type = "memory"; reg = <\(memory)>; };
            gic: interrupt-controller@1e001000 {
                compatible = "\(gicCompatible)";
                #interrupt-cells = <3>;
                interrupt-controller;
                reg = <0x1e001000 0x1000>;
            };
            timer@1e000600 { compatible = "arm,cortex-a9-twd-timer"; reg = <0x1e000600 0x20>; interrupts = <1 13 0xf04>; };
            cpus {
                #address-cells = <1>;
                #size-cells = <0>;
                cpu@0 { device_type = "cpu"; compatible = "arm,cortex-a9"; reg = <0>; };
            };
            bus@10000000 {
                compatible = "simple-bus";
                #address-cells = <1>;
                #size-cells = <1>;
                ranges;
                refclk: refclk32khz { compatible = "fixed-clock"; #clock-cells = <0>; clock-frequency = <32768>; };
                osc: oscclk2 { compatible = "arm,vexpress-osc"; #clock-cells = <0>; };
                sysctl: sysctl@10001000 {
                    compatible = "arm,sp810", "arm,primecell";
                    reg = <0x10001000 0x1000>;
                    #clock-cells = <1>;
                    clocks = <&refclk>, <&osc>;
                };
                uart0: uart@10009000 {
                    compatible = "arm,pl011", "arm,primecell";
                    reg = <0x10009000 0x1000>;
                    interrupts = <0 5 4>;
                    clocks = <&osc>, <&osc>;
                    \(uart0)
                };
                uart1: serial@1000a000 { compatible = "ns16550a"; reg = <0x1000a000 0x100>; interrupts = <0 6 4>; };
                timer@10011000 {
                    compatible = "arm,sp804", "arm,primecell";
                    reg = <0x10011000 0x1000>;
                    interrupts = <0 2 4>;
                    clocks = <&sysctl 0>, <&sysctl 1>, <&osc>;
                };
                kmi@10006000 { compatible = "arm,pl050", "arm,primecell"; reg = <0x10006000 0x1000>; interrupts = <0 12 4>; };
            };
        };
        """
    }

    /// A riscv64 virt-like tree for the memory checks (QEMU does not rewrite riscv memory).
    static func riscv(memory: String) -> String {
        """
        /dts-v1/;
        / {
            #address-cells = <2>;
            #size-cells = <2>;
            compatible = "riscv-virtio";
            chosen { stdout-path = "/soc/serial@10000000"; };
            memory@80000000 { device_type = "memory"; reg = <\(memory)>; };
            soc {
                compatible = "simple-bus";
                #address-cells = <2>;
                #size-cells = <2>;
                ranges;
                serial@10000000 { compatible = "ns16550a"; reg = <0x0 0x10000000 0x0 0x100>; };
            };
        };
        """
    }
}

/// SplitMix64: reproducible bytes for the fuzz loops.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
