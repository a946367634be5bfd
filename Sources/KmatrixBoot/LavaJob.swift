import Foundation
import KmatrixCore
import KmatrixCrypto

/// A LAVA job definition (YAML) for one cell: the files its boot uses as artifact URLs, the
/// boot the target's descriptor describes, and a test that passes when the kmatrix marker
/// line appears. A target without a `lava` board section becomes LAVA's `qemu` device type
/// with the same machine, CPU, memory, QEMU arguments and kernel command line as
/// `kmatrix boot`; a board follows its `lava` section (deploy method, boot method,
/// bootloader commands, prompts).
public struct LavaJob: Sendable {
    public var cell: Cell
    public var images: BootImages
    /// Where the lab fetches the files (`https://host/path`); nil: `file://` URLs of the
    /// files here, which only a dispatcher on this machine can read.
    public var artifactBase: String?

    /// A deploy only downloads the images (a few MiB): five minutes leaves room for a
    /// slow artifact server. The boot's and the test's allowances come from the target.
    static let deploySeconds = 300

    public init(cell: Cell, images: BootImages, artifactBase: String? = nil) {
        self.cell = cell
        self.images = images
        self.artifactBase = artifactBase.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// One file the job deploys: the URL the lab fetches it from and its sha256, which
    /// LAVA checks after the download.
    struct Artifact {
        var url: String
        var sha256: String
    }

    func artifact(_ path: String) throws(KmatrixError) -> Artifact {
        let sha256: String
        do { sha256 = try SHA256.hex(fileAt: path) } catch {
            throw KmatrixError(.hostFailure, "cannot read \(path) to hash it for the LAVA job", underlying: error)
        }
        let name = (path as NSString).lastPathComponent
        let url = artifactBase.map { "\($0)/\(name)" } ?? URL(fileURLWithPath: path).absoluteString
        return Artifact(url: url, sha256: sha256)
    }

    /// The boot's QEMU invocation, whose kernel command line the job passes on.
    var invocation: QemuInvocation { images.invocation(target: cell.target, rootDevice: cell.rootDevice) }

    /// The YAML text of the job.
    public func render() throws(KmatrixError) -> String {
        guard cell.rootDevice.kind != .disk else {
            throw .badInput("\(cell.id): root device '\(cell.rootName)' is a disk; kmatrix lava renders kernel + DTB + initramfs/initrd boots only")
        }
        let target = cell.target
        let timeouts = BootTimeouts(target, rootDevice: cell.rootDevice)
        let bootSeconds = max(1, Int(timeouts.total.rounded(.up)))
        let kernel = try artifact(images.kernel)
        let dtb = try images.dtb.map { path throws(KmatrixError) in try artifact(path) }
        let ramdisk = try images.initrd.map { path throws(KmatrixError) in try artifact(path) }
        let testSeconds = bootSeconds + guestTestSeconds
        let jobMinutes = (Self.deploySeconds + bootSeconds + testSeconds + 59) / 60

        var out = """
            # kmatrix lava --cell \(cell.id)
            job_name: \(q("kmatrix \(cell.id)"))
            visibility: public
            priority: medium
            metadata:
              kmatrix.cell: \(q(cell.id))
              kmatrix.target: \(q(target.name))
            timeouts:
              job:
                minutes: \(jobMinutes)

            """
        let append = invocation.append
        if let board = target.lava, let boot = board.boot {
            out += "device_type: \(q(board.deviceType ?? ""))\n"
            out += "context:\n  extra_kernel_args: \(q(append))\n"
            out += "actions:\n- deploy:\n    to: \(q(board.deploy.to))\n    timeout:\n      seconds: \(Self.deploySeconds)\n"
            out += "    kernel:\n" + urlLines(kernel, indent: 6)
            if let type = board.deploy.kernelType { out += "      type: \(q(type))\n" }
            if let dtb { out += "    dtb:\n" + urlLines(dtb, indent: 6) }
            if let ramdisk { out += "    ramdisk:\n" + urlLines(ramdisk, indent: 6) }
            out += "- boot:\n    method: \(q(boot.method))\n    timeout:\n      seconds: \(bootSeconds)\n"
            if boot.namedCommands, let name = boot.commands.first {
                out += "    commands: \(q(name))\n"
            } else if !boot.commands.isEmpty {
                out += "    commands:\n" + boot.commands.map { "    - \(q($0))\n" }.joined()
            }
            if !boot.prompts.isEmpty { out += "    prompts:\n" + boot.prompts.map { "    - \(q($0))\n" }.joined() }
        } else {
            let qemu = target.qemu
            out += "device_type: qemu\n"
            out += "context:\n  arch: \(q(lavaArch))\n  machine: \(q(qemu.machine))\n"
            if let cpu = qemu.cpu { out += "  cpu: \(q(cpu))\n" }
            out += "  memory: \(qemu.memoryMiB)\n"
            let extra = (qemu.firmware?.args ?? []) + qemu.args + ["-smp", String(qemu.smp), "-no-reboot"]
            out += "  extra_options:\n" + extra.map { "  - \(q($0))\n" }.joined()
            out += "actions:\n- deploy:\n    to: tmpfs\n    timeout:\n      seconds: \(Self.deploySeconds)\n    images:\n"
            // LAVA puts each image's image_arg on QEMU's command line with {name} replaced by its path.
            out += "      kernel:\n" + urlLines(kernel, indent: 8)
            out += "        image_arg: \(q("-kernel {kernel} -append \"\(append)\""))\n"
            if let dtb { out += "      dtb:\n" + urlLines(dtb, indent: 8) + "        image_arg: '-dtb {dtb}'\n" }
            if let ramdisk { out += "      ramdisk:\n" + urlLines(ramdisk, indent: 8) + "        image_arg: '-initrd {ramdisk}'\n" }
            out += "- boot:\n    method: qemu\n    media: tmpfs\n    timeout:\n      seconds: \(bootSeconds)\n"
        }
        out += testAction(seconds: testSeconds)
        return out
    }

    /// What the guest's test scripts may take after the marker (as `kmatrix boot` allows
    /// them): each script's time limit, and 10 s; 0 for a cell without scripts.
    var guestTestSeconds: Int { cell.hasGuestScripts ? Int(cell.guestScriptSeconds.rounded(.up)) + 10 : 0 }

    /// LAVA's qemu `arch`: the descriptor's `lava.arch`, else what follows `qemu-system-`
    /// in the QEMU binary's name (LAVA picks the binary by the same name).
    var lavaArch: String {
        if let arch = cell.target.lava?.arch { return arch }
        let binary = (cell.target.qemu.binary as NSString).lastPathComponent
        let prefix = "qemu-system-"
        return binary.hasPrefix(prefix) ? String(binary.dropFirst(prefix.count)) : binary
    }

    /// A monitor test: it starts at the kernel's banner and records `KMATRIX-BOOT` as a
    /// pass when the marker line appears. The words after the marker end the monitor, and
    /// they include the target's `uname -m` when the descriptor names it: a marker of
    /// another machine then matches neither pattern nor end, and the monitor fails at EOF
    /// or its timeout instead of ending without a result. (LAVA tries the end before the
    /// pattern where both match at one place, so the pattern only looks ahead at them.)
    ///
    /// A cell with test scripts gets a second monitor (LAVA runs them one after the other)
    /// from the scripts' first line to their last, passing each script that exits 0: it keeps
    /// LAVA reading the console until the scripts end. Without it LAVA powers the guest off
    /// when the console stays quiet for a second after the marker, cutting the scripts short.
    func testAction(seconds: Int) -> String {
        let marker = BootMarker.prefix
        let split = marker.range(of: "-", options: .backwards)
        let name = split.map { String(marker[..<$0.lowerBound]) } ?? marker
        let result = split.map { String(marker[$0.upperBound...]) } ?? ""
        let after = " arch=" + (cell.target.userspace.unameMachine.map { NSRegularExpression.escapedPattern(for: $0) + " " } ?? "")
        let pattern = "(?P<test_case_id>\(NSRegularExpression.escapedPattern(for: name)))-(?P<result>\(NSRegularExpression.escapedPattern(for: result)))(?=\(after))"
        var out = """
            - test:
                timeout:
                  seconds: \(seconds)
                monitors:
                - name: kmatrix-boot
                  start: 'Linux version'
                  end: \(q(after))
                  pattern: \(q(pattern))
                  fixupdict:
                    \(q(result)): pass

            """
        if cell.hasGuestScripts {
            let end = NSRegularExpression.escapedPattern(for: GuestTestProtocol.testEnd)
            out += """
                - name: kmatrix-tests
                  start: \(q(GuestTestProtocol.runBegin))
                  end: \(q(GuestTestProtocol.runEnd))
                  pattern: \(q("\(end) \\S+ (?P<test_case_id>\\S+ \\S+) status=(?P<result>0) "))
                  fixupdict:
                    '0': pass

            """
        }
        return out
    }

    func urlLines(_ artifact: Artifact, indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        return "\(pad)url: \(q(artifact.url))\n\(pad)sha256sum: \(q(artifact.sha256))\n"
    }

    /// A YAML single-quoted scalar.
    func q(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
