import Foundation
import KmatrixCore

/// The accelerator a boot uses: TCG everywhere, KVM only where a probe proved it works.
public enum Accelerator: String, Sendable, Codable {
    case tcg, kvm
}

/// The QEMU command line of one boot, derived from the target descriptor: binary,
/// machine, cpu, memory, firmware, kernel, DTB, initramfs or disk, append string.
public struct QemuInvocation: Sendable {
    public var target: Target
    public var rootDevice: RootDeviceSpec
    public var kernel: String
    public var dtb: String?
    /// The initramfs (cpio) or initrd (filesystem image) for `-initrd`.
    public var initrd: String?
    /// The filesystem image attached for a `disk` root device.
    public var disk: String?
    public var accelerator: Accelerator = .tcg
    public var earlycon = false
    /// `/init` prints the boot marker and reboots; the interactive init starts a shell.
    public var initPath = "/init"
    /// Wait for gdb before the first instruction (`-gdb tcp:127.0.0.1:PORT -S`). Never
    /// QEMU's `-s`: that listens on every interface, and the gdb stub reaches the monitor.
    public var gdb = false
    public var gdbPort = QemuInvocation.defaultGdbPort
    public static let defaultGdbPort = 1234
    /// Where the gdb stub listens: loopback only.
    public var gdbAddress: String { "127.0.0.1:\(gdbPort)" }
    /// Attach the disk with `snapshot=on`, so guest writes go to a temporary overlay and
    /// never reach the (cached, shared) image. Off only when the caller gave QEMU a
    /// private copy whose changes are wanted (`kmatrix shell --keep-changes`).
    public var diskSnapshot = true
    /// QEMU's `-serial` backend: `stdio` for watched boots; `mon:stdio` for an attached
    /// terminal, so Ctrl-A X quits and Ctrl-A C reaches the monitor.
    public var serial = "stdio"
    public var extraAppend: [String] = []

    public init(target: Target, rootDevice: RootDeviceSpec, kernel: String, dtb: String? = nil,
                initrd: String? = nil, disk: String? = nil) {
        self.target = target
        self.rootDevice = rootDevice
        self.kernel = kernel
        self.dtb = dtb
        self.initrd = initrd
        self.disk = disk
    }

    /// The kernel command line.
    public var append: String {
        var words = ["console=\(target.console.device)"]
        if earlycon, let value = target.console.earlycon { words.append("earlycon=\(value)") }
        words.append("panic=-1")
        switch rootDevice.kind {
        case .initramfs:
            words.append("rdinit=\(initPath)")
        case .initrd, .disk:
            words += ["root=\(rootDevice.device ?? "")", "rw"]  // decoding requires a device for these kinds
            if let fs = rootDevice.filesystem { words.append("rootfstype=\(fs)") }
            if rootDevice.kind == .disk { words.append("rootwait") }
            words.append("init=\(initPath)")
        }
        return (words + target.qemu.append + extraAppend).joined(separator: " ")
    }

    public var command: Command {
        let q = target.qemu
        var argv = [q.binary, "-M", q.machine]
        // The target's CPU model under KVM too: `-cpu host` aborts QEMU on nested hosts
        // whose MSRs it cannot set (seen here: MSR 0x10a).
        argv += ["-accel", accelerator.rawValue]
        if let cpu = q.cpu { argv += ["-cpu", cpu] }
        argv += ["-m", String(q.memoryMiB), "-smp", String(q.smp)]
        argv += ["-nodefaults", "-nographic"]
        argv += Array(repeating: ["-serial", "null"], count: q.consoleSerialPort).flatMap { $0 }
        argv += ["-serial", serial, "-no-reboot"]
        argv += q.firmware?.args ?? []
        argv += q.args
        argv += ["-kernel", kernel]
        if let dtb { argv += ["-dtb", dtb] }
        if let initrd { argv += ["-initrd", initrd] }
        if let disk { argv += diskArguments(disk) }
        argv += ["-append", append]
        if gdb { argv += ["-gdb", "tcp:\(gdbAddress)", "-S"] }
        return Command(argv)
    }

    /// The root device's QEMU arguments with `{disk}` filled in. QEMU's option syntax
    /// splits at commas (a literal one is written twice), and the `-drive` that names the
    /// disk gets `snapshot=on` unless `diskSnapshot` is off.
    func diskArguments(_ disk: String) -> [String] {
        let escaped = disk.replacingOccurrences(of: ",", with: ",,")
        let templates = rootDevice.qemuArgs
        return templates.indices.map { index in
            let template = templates[index]
            guard template.contains("{disk}") else { return template }
            var value = template.replacingOccurrences(of: "{disk}", with: escaped)
            let isDrive = index > 0 && templates[index - 1] == "-drive"
            if isDrive, diskSnapshot, !template.split(separator: ",").contains(where: { $0.hasPrefix("snapshot=") }) {
                value += ",snapshot=on"
            }
            return value
        }
    }

    /// The command that makes QEMU write the DTB it would pass and exit (`-M virt,dumpdtb=`).
    public func dumpDTBCommand(to path: String) -> Command {
        var invocation = self
        invocation.gdb = false
        var argv = invocation.command.argv
        if let index = argv.firstIndex(of: "-M") { argv[index + 1] += ",dumpdtb=\(path)" }
        return Command(argv)
    }
}
