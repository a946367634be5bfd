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
    /// Wait for gdb on :1234 before the first instruction (`-s -S`).
    public var gdb = false
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
            words += ["root=\(rootDevice.device ?? "/dev/ram0")", "rw"]
            if let fs = rootDevice.filesystem { words.append("rootfstype=\(fs)") }
            if rootDevice.kind == .disk { words.append("rootwait") }
            words.append("init=\(initPath)")
        }
        return (words + extraAppend).joined(separator: " ")
    }

    public var command: Command {
        let q = target.qemu
        var argv = [q.binary, "-M", q.machine]
        // The target's CPU model under KVM too: `-cpu host` aborts QEMU on nested hosts
        // whose MSRs it cannot set (seen here: MSR 0x10a).
        argv += ["-accel", accelerator.rawValue]
        if let cpu = q.cpu { argv += ["-cpu", cpu] }
        argv += ["-m", String(q.memoryMiB), "-smp", String(q.smp)]
        argv += ["-nodefaults", "-nographic", "-serial", serial, "-no-reboot"]
        argv += q.firmware?.args ?? []
        argv += q.args
        argv += ["-kernel", kernel]
        if let dtb { argv += ["-dtb", dtb] }
        if let initrd { argv += ["-initrd", initrd] }
        if let disk { argv += rootDevice.qemuArgs.map { $0.replacingOccurrences(of: "{disk}", with: disk) } }
        argv += ["-append", append]
        if gdb { argv += ["-s", "-S"] }
        return Command(argv)
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
