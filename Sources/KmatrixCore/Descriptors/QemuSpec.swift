import Foundation

/// How QEMU runs the target: one `qemu` object of a `Targets/*.json` file.
public struct QemuSpec: Sendable, Equatable, Codable {
    public var binary: String
    /// The Debian package that ships `binary`.
    public var package: String
    public var machine: String
    public var cpu: String?
    public var memoryMiB: Int
    public var smp: Int
    public var firmware: FirmwareSpec?
    /// Arguments added to every boot of this target (`-audiodev none,id=snd0`).
    public var args: [String]
    /// The host architecture (`uname -m`) on which KVM can run this target, if any.
    public var kvmHostArch: String?
    /// How long a boot may take before it is a timeout.
    public var bootTimeoutSeconds: Int
    /// How long the console may stay silent, once it has spoken, before the boot is a hang.
    public var silenceSeconds: Int
    /// How long a silent guest whose QEMU uses (almost) no CPU may sit before it is a hang,
    /// shorter than `silenceSeconds`; 0 turns that check off for the target.
    public var idleSeconds: Double
    /// Whether QEMU's loader replaces the `/memory` node of the DTB it passes with the RAM
    /// it gives (its ARM loader does, hw/arm/boot.c: on QEMU 7.2 a vexpress-a9 kernel DTB
    /// claiming 1 GiB is dumped with 256 MiB). Then a DTB that claims more RAM than
    /// `memoryMiB` boots fine under QEMU, and the device-tree check only warns.
    public var replacesDTBMemory: Bool
    /// Kernel command-line words every boot of this machine needs, after kmatrix's own
    /// (riscv's `riscv_isa_fallback`: QEMU 7.2 describes the CPU by `riscv,isa` only, which
    /// 6.6+ kernels read only with it, or they run userspace without its FPU).
    public var append: [String]
    /// Which of the machine's serial ports (QEMU's `-serial` order, from 0) is the console;
    /// the ports before it are given `null`. SABRE Lite's console is its second UART
    /// (`ttymxc1`), so its `-serial stdio` comes after one `-serial null`.
    public var consoleSerialPort: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case binary, package, machine, cpu, memoryMiB, smp, firmware, args, kvmHostArch, bootTimeoutSeconds, silenceSeconds
        case idleSeconds, replacesDTBMemory, append, consoleSerialPort
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        binary = try c.decode(String.self, forKey: .binary)
        package = try c.decode(String.self, forKey: .package)
        machine = try c.decode(String.self, forKey: .machine)
        cpu = try c.decodeIfPresent(String.self, forKey: .cpu)
        memoryMiB = try c.value(.memoryMiB, default: 256)
        guard memoryMiB >= 16 else { throw decoder.problem("\(memoryMiB) MiB is too little for a kernel", at: CodingKeys.memoryMiB) }
        smp = try c.value(.smp, default: 1)
        firmware = try c.decodeIfPresent(FirmwareSpec.self, forKey: .firmware)
        args = try c.value(.args, default: [])
        kvmHostArch = try c.decodeIfPresent(String.self, forKey: .kvmHostArch)
        bootTimeoutSeconds = try c.value(.bootTimeoutSeconds, default: 120)
        silenceSeconds = try c.value(.silenceSeconds, default: 20)
        guard bootTimeoutSeconds > 0, silenceSeconds > 0 else {
            throw decoder.problem("timeouts must be positive", at: CodingKeys.bootTimeoutSeconds)
        }
        idleSeconds = try c.value(.idleSeconds, default: 3.0)
        guard idleSeconds >= 0 else { throw decoder.problem("must be 0 (off) or positive", at: CodingKeys.idleSeconds) }
        replacesDTBMemory = try c.value(.replacesDTBMemory, default: false)
        append = try c.value(.append, default: [])
        for word in append where word.isEmpty || word.contains(where: { $0.isWhitespace || $0 == "\"" }) {
            throw decoder.problem("'\(word)' is not one kernel command-line word (no spaces or quotes)", at: CodingKeys.append)
        }
        consoleSerialPort = try c.value(.consoleSerialPort, default: 0)
        guard (0...3).contains(consoleSerialPort) else {
            throw decoder.problem("\(consoleSerialPort) is not a serial port QEMU gives a machine (0 to 3)", at: CodingKeys.consoleSerialPort)
        }
    }
}

public struct FirmwareSpec: Sendable, Equatable, Codable {
    /// QEMU arguments that select it (`-bios default`).
    public var args: [String]
    /// Files that must exist for those arguments to work (any one of them).
    public var files: [String]
    /// The Debian package that ships them.
    public var package: String
    /// A line the firmware prints on the console, timed as the firmware phase of a boot.
    public var banner: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case args, files, package, banner }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        args = try c.value(.args, default: [])
        files = try c.value(.files, default: [])
        package = try c.decode(String.self, forKey: .package)
        banner = try c.decodeIfPresent(String.self, forKey: .banner)
    }
}
