import Foundation
import Subprocess
import KmatrixCore

/// Whether KVM really runs Linux guests here. `/dev/kvm` existing proves nothing: on these
/// machines it exists, small guests run, and a Linux kernel hangs right after its real-mode
/// setup code. So the probe goes in two steps:
/// 1. a 201-byte multiboot image that enters 64-bit long mode and prints a line on COM1
///    (source: Scripts/kvm-probe.S) tells whether KVM runs guest code at all;
/// 2. a real x86_64 Linux kernel must print `Linux version` under KVM within the deadline,
///    and, when it does not, the same kernel under TCG shows the kernel itself is fine.
/// Only step 2 passing makes KVM usable; anything less means TCG.
public struct KvmProbe: Sendable, Codable, Equatable {
    public var usable: Bool
    public var reason: String
    public var seconds: Double

    public init(usable: Bool, reason: String, seconds: Double) {
        self.usable = usable
        self.reason = reason
        self.seconds = seconds
    }

    public static let marker = "KMATRIX-PROBE-OK"

    /// The probe is x86_64 code booted on QEMU's PC (a multiboot image and an x86_64 Linux
    /// on its first serial port): facts of the probe itself, kept here as one table.
    public static let machine = (architecture: "x86_64", qemu: "qemu-system-x86_64", console: "ttyS0")

    /// Assembled from Scripts/kvm-probe.S (`as` + `objcopy -O binary`); loaded at 1 MiB.
    public static let longModeImage: [UInt8] = [
        0x02, 0xb0, 0xad, 0x1b, 0x00, 0x00, 0x01, 0x00, 0xfe, 0x4f, 0x51, 0xe4,
        0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x10, 0x00, 0xfc, 0xbf, 0x00, 0x00,
        0x01, 0x00, 0x31, 0xc0, 0xb9, 0x00, 0x0c, 0x00, 0x00, 0xf3, 0xab, 0xc7,
        0x05, 0x00, 0x00, 0x01, 0x00, 0x03, 0x10, 0x01, 0x00, 0xc7, 0x05, 0x00,
        0x10, 0x01, 0x00, 0x03, 0x20, 0x01, 0x00, 0xc7, 0x05, 0x00, 0x20, 0x01,
        0x00, 0x83, 0x00, 0x00, 0x00, 0xb8, 0x00, 0x00, 0x01, 0x00, 0x0f, 0x22,
        0xd8, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb9, 0x80,
        0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30,
        0x0f, 0x01, 0x15, 0xb0, 0x00, 0x10, 0x00, 0x0f, 0x20, 0xc0, 0x0d, 0x01,
        0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x85, 0x00, 0x10, 0x00, 0x08,
        0x00, 0x66, 0xba, 0xf8, 0x03, 0x48, 0x8d, 0x35, 0x26, 0x00, 0x00, 0x00,
        0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xfa, 0xf4, 0xeb, 0xfc,
        0x0f, 0x1f, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00, 0x0f, 0x00, 0xa0, 0x00,
        0x10, 0x00, 0x4b, 0x4d, 0x41, 0x54, 0x52, 0x49, 0x58, 0x2d, 0x50, 0x52,
        0x4f, 0x42, 0x45, 0x2d, 0x4f, 0x4b, 0x0d, 0x0a, 0x00
    ]

    /// The host architecture as `uname -m` prints it.
    public static var hostArch: String {
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func qemuArguments(accelerator: Accelerator, kernel: String, append: String?) -> [String] {
        var arguments = ["-M", "pc", "-accel", accelerator.rawValue, "-m", append == nil ? "16" : "256",
                         "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", kernel]
        if let append { arguments += ["-append", append] }
        return arguments
    }

    /// Runs the probe. `linuxKernel` is an x86_64 kernel image (a built bzImage or a
    /// distribution's vmlinuz); without one KVM stays unproven and unused.
    public static func run(linuxKernel: String?, qemu: String = machine.qemu,
                           linuxDeadline: Duration = .seconds(5), scratch: String = NSTemporaryDirectory()) async -> KvmProbe {
        let start = ContinuousClock.now
        func result(_ usable: Bool, _ reason: String) -> KvmProbe {
            KvmProbe(usable: usable, reason: reason, seconds: (ContinuousClock.now - start).seconds)
        }
        guard hostArch == machine.architecture else { return result(false, "no KVM probe for host architecture \(hostArch); TCG is used") }
        guard FileManager.default.fileExists(atPath: "/dev/kvm") else { return result(false, "/dev/kvm does not exist") }
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { return result(false, "/dev/kvm is not readable and writable by this user") }
        guard let binary = ProcessRunner.which(qemu) else { return result(false, "\(qemu) is not installed") }

        let image = (scratch as NSString).appendingPathComponent("kmatrix-kvm-probe-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin")
        guard FileManager.default.createFile(atPath: image, contents: Data(longModeImage)) else {
            return result(false, "cannot write the probe image \(image)")
        }
        defer { try? FileManager.default.removeItem(atPath: image) }
        // The three boots run at once: the verdict needs them all only when KVM fails,
        // and a nested KVM guest alone can take seconds to start.
        let append = "console=\(machine.console) earlyprintk=serial,\(machine.console) panic=-1"
        // A nested KVM guest starts slowly on a loaded host (seen: 2.7 s idle, over 5 s
        // under builds), so the gate waits longer than the Linux boots it runs beside.
        async let gate = watchForMarker(binary: binary, arguments: qemuArguments(accelerator: .kvm, kernel: image, append: nil),
                                        marker: marker, timeout: linuxDeadline * 2)
        async let linux = linuxKernel == nil ? Watch.failed("no kernel")
            : watchForMarker(binary: binary, arguments: qemuArguments(accelerator: .kvm, kernel: linuxKernel!, append: append),
                             marker: "Linux version", timeout: linuxDeadline)
        async let control = linuxKernel == nil ? Watch.failed("no kernel")
            : watchForMarker(binary: binary, arguments: qemuArguments(accelerator: .tcg, kernel: linuxKernel!, append: append),
                             marker: "Linux version", timeout: linuxDeadline)
        guard case .seen(let gateTime) = await gate else {
            return result(false, "/dev/kvm exists but a KVM guest cannot even reach long mode: \(await gate.summary)")
        }
        guard let linuxKernel else {
            return result(false, "a KVM guest reached long mode in \(format(gateTime)), but no x86_64 Linux kernel was at hand to prove Linux boots under KVM (Scripts/bootstrap fetches one); TCG is used until one does")
        }
        let linuxWatch = await linux
        if case .seen(let linuxTime) = linuxWatch {
            return result(true, "Linux printed its banner under KVM in \(format(linuxTime))")
        }
        let controlText: String
        if case .seen(let tcgTime) = await control {
            controlText = "the same kernel under TCG printed it in \(format(tcgTime))"
        } else {
            controlText = "under TCG it did not either (\(await control.summary)), so the probe kernel may be unfit"
        }
        return result(false, "KVM runs guest code (long mode reached in \(format(gateTime))) but Linux hangs under it: \(linuxWatch.summary) with \((linuxKernel as NSString).lastPathComponent); \(controlText)")
    }

    static func format(_ duration: Duration) -> String { String(format: "%.2f s", duration.seconds) }

    /// How much of a probe guest's output is kept: enough for the marker and QEMU's last
    /// words; the probe image never exits, so its output must not pile up.
    static let tailLimit = 4096

    enum Watch: Sendable {
        case seen(Duration), exited(String), deadline(Duration), failed(String)

        var summary: String {
            switch self {
            case .seen(let time): "seen after \(KvmProbe.format(time))"
            case .exited(let output): "QEMU exited: \(output.split(separator: "\n").suffix(2).joined(separator: " "))"
            case .deadline(let time): "no output in \(KvmProbe.format(time))"
            case .failed(let why): why
            }
        }
    }

    /// Streams QEMU's output until `marker` shows, QEMU exits, or the deadline passes;
    /// QEMU's whole process group is gone when this returns.
    static func watchForMarker(binary: String, arguments: [String], marker: String, timeout: Duration) async -> Watch {
        let start = ContinuousClock.now
        let wanted = Array(marker.utf8)
        do {
            let outcome = try await ProcessRunner.withDeadline(timeout) { () async throws -> Watch in
                try await ProcessRunner.stream(Command([binary] + arguments), error: .combinedWithOutput) { execution -> Watch in
                    var tail: [UInt8] = []
                    for try await chunk in execution.standardOutput {
                        tail += chunk.withUnsafeBytes { Array($0) }
                        if tail.count > tailLimit { tail.removeFirst(tail.count - tailLimit) }
                        if tail.firstRange(of: wanted) != nil {
                            let seenAt = ContinuousClock.now - start
                            await execution.teardown(using: [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .milliseconds(500))])
                            return .seen(seenAt)
                        }
                    }
                    return .exited(String(decoding: tail, as: UTF8.self))
                }.0
            }
            return outcome ?? .deadline(timeout)
        } catch {
            return .failed("cannot run \(binary): \(error)")
        }
    }
}
