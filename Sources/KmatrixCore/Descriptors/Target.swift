import Foundation

/// A board or virtual machine kmatrix can build for and boot: one `Targets/*.json` file.
public struct Target: Sendable, Equatable, Codable {
    public var name: String
    public var description: String
    public var kernel: KernelSpec
    public var deviceTree: DeviceTreeSpec
    public var console: ConsoleSpec
    public var userspace: UserspaceSpec
    public var rootDevices: [String: RootDeviceSpec]
    public var qemu: QemuSpec
    /// How a LAVA lab boots it (`kmatrix lava`); nil: as LAVA's qemu device type.
    public var lava: LavaSpec?
    /// Where the descriptor came from, for messages; not part of the JSON.
    public var file: String = ""

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, name, description, kernel, deviceTree, console, userspace, rootDevices, qemu, lava
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let schema = try c.value(.schema, default: 1)
        guard schema == 1 else { throw decoder.problem("schema \(schema) is not supported (this kmatrix reads schema 1)", at: CodingKeys.schema) }
        name = try c.decode(String.self, forKey: .name)
        guard isValidName(name) else { throw decoder.problem("'\(name)' is not a valid name (letters, digits, '_', '-')", at: CodingKeys.name) }
        description = try c.value(.description, default: "")
        kernel = try c.decode(KernelSpec.self, forKey: .kernel)
        deviceTree = try c.value(.deviceTree, default: DeviceTreeSpec())
        console = try c.decode(ConsoleSpec.self, forKey: .console)
        userspace = try c.decode(UserspaceSpec.self, forKey: .userspace)
        rootDevices = try c.decode([String: RootDeviceSpec].self, forKey: .rootDevices)
        guard !rootDevices.isEmpty else { throw decoder.problem("a target needs at least one root device", at: CodingKeys.rootDevices) }
        qemu = try c.decode(QemuSpec.self, forKey: .qemu)
        lava = try c.decodeIfPresent(LavaSpec.self, forKey: .lava)
        if deviceTree.source == .build, kernel.dtbs.isEmpty {
            throw decoder.problem("deviceTree.source is 'build' but kernel.dtbs is empty", at: CodingKeys.deviceTree)
        }
        if deviceTree.source == .none, qemu.replacesDTBMemory {
            throw FieldProblem(path: decoder.codingPath.map(fieldName) + ["qemu", "replacesDTBMemory"],
                               message: "is true, but the target boots without a device tree (deviceTree.source none)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(1, forKey: .schema)
        try c.encode(name, forKey: .name)
        try c.encode(description, forKey: .description)
        try c.encode(kernel, forKey: .kernel)
        try c.encode(deviceTree, forKey: .deviceTree)
        try c.encode(console, forKey: .console)
        try c.encode(userspace, forKey: .userspace)
        try c.encode(rootDevices, forKey: .rootDevices)
        try c.encode(qemu, forKey: .qemu)
        try c.encodeIfPresent(lava, forKey: .lava)
    }
}

func isValidName(_ name: String) -> Bool {
    !name.isEmpty && name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == "-" }
}

/// How the kernel is configured and built for this target.
public struct KernelSpec: Sendable, Equatable, Codable {
    /// The kernel's `ARCH=`.
    public var arch: String
    /// The image make target (`bzImage`, `zImage`, `Image`) and where it lands in the build tree.
    public var image: BuildProduct
    /// Device tree blobs built from the kernel tree, with the places they may land
    /// (the kernel moved arm DTBs from `dts/` to `dts/arm/` in 6.5).
    public var dtbs: [BuildProduct]
    /// Options this target always needs, whatever the profile.
    public var options: [KernelOption]
    /// Fragment files (relative to the descriptor) with more such options.
    public var fragments: [String]
    /// This board's own defconfig (`x86_64_defconfig`, `vexpress_defconfig`): what a
    /// profile whose base is `defconfig` starts from.
    public var defconfig: String
    /// Kconfig symbols renamed between kernel versions, new name to old
    /// (`CONFIG_ARCH_VIRT` was `CONFIG_SOC_VIRT` before 6.7): a request for the new name
    /// is met by either, so one target builds old and new kernels.
    public var formerNames: [String: String]

    enum CodingKeys: String, CodingKey, CaseIterable { case arch, image, dtbs, options, fragments, defconfig, formerNames }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        arch = try c.decode(String.self, forKey: .arch)
        image = try c.decode(BuildProduct.self, forKey: .image)
        dtbs = try c.value(.dtbs, default: [])
        options = try c.value(.options, default: [])
        fragments = try c.value(.fragments, default: [])
        defconfig = try c.value(.defconfig, default: "defconfig")
        formerNames = try c.value(.formerNames, default: [:])
        for (new, old) in formerNames.sorted(by: { $0.key < $1.key }) where !KernelOption.isValidName(new) || !KernelOption.isValidName(old) {
            throw decoder.problem("'\(new)': '\(old)' is not a pair of Kconfig symbols (CONFIG_...)", at: CodingKeys.formerNames)
        }
        guard Profile.isValidConfigTarget(defconfig) else {
            throw decoder.problem("'\(defconfig)' is not a config make target (letters, digits, '_', '.', '-', ending in 'config')", at: CodingKeys.defconfig)
        }
    }
}

public struct BuildProduct: Sendable, Equatable, Codable {
    /// What to pass to make.
    public var target: String
    /// Candidate paths relative to the build directory, first match wins.
    public var paths: [String]

    enum CodingKeys: String, CodingKey, CaseIterable { case target, paths }

    public init(target: String, paths: [String]) {
        self.target = target
        self.paths = paths
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        target = try c.decode(String.self, forKey: .target)
        paths = try c.decode([String].self, forKey: .paths)
        guard !paths.isEmpty else { throw decoder.problem("needs at least one path", at: CodingKeys.paths) }
    }

    /// The file name the product is published under.
    public var fileName: String { (paths[0] as NSString).lastPathComponent }
}

public struct DeviceTreeSpec: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable, CaseIterable {
        /// No device tree (x86 boots from ACPI/legacy tables).
        case none
        /// A DTB from the kernel build, named in `kernel.dtbs`.
        case build
        /// QEMU generates the DTB for the machine (`-M virt,dumpdtb=FILE` shows it).
        case qemu
    }

    public var source: Source = .none
    /// The root node's `compatible` must contain this string.
    public var rootCompatible: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case source, rootCompatible }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let raw = try c.value(.source, default: "none")
        guard let source = Source(rawValue: raw) else {
            throw decoder.problem("'\(raw)' is not a device tree source; valid: \(Source.allCases.map(\.rawValue).joined(separator: ", "))", at: CodingKeys.source)
        }
        self.source = source
        rootCompatible = try c.decodeIfPresent(String.self, forKey: .rootCompatible)
    }
}

/// The userspace ABI the target's busybox is built for.
public struct UserspaceSpec: Sendable, Equatable, Codable {
    /// The Debian architecture name (`amd64`, `armhf`, `arm64`, `riscv64`); toolchains are keyed by it.
    public var debianArch: String
    /// ELF `e_machine` name a correct userspace binary carries (`x86_64`, `arm`, `aarch64`, `riscv`).
    public var elfMachine: String
    /// ELF class: 32 or 64.
    public var elfClass: Int
    /// Kernel options the ABI needs (hard-float armhf needs VFP, lp64d needs the FPU).
    public var kernelOptions: [KernelOption]
    /// What `uname -m` prints in the guest (`armv7l`, `aarch64`): the boot marker's `arch`
    /// must say it. nil: not checked.
    public var unameMachine: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case debianArch, elfMachine, elfClass, kernelOptions, unameMachine }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        debianArch = try c.decode(String.self, forKey: .debianArch)
        elfMachine = try c.decode(String.self, forKey: .elfMachine)
        elfClass = try c.decode(Int.self, forKey: .elfClass)
        guard elfClass == 32 || elfClass == 64 else { throw decoder.problem("must be 32 or 64", at: CodingKeys.elfClass) }
        kernelOptions = try c.value(.kernelOptions, default: [])
        unameMachine = try c.decodeIfPresent(String.self, forKey: .unameMachine)
    }
}

/// One way of giving the guest its root filesystem.
public struct RootDeviceSpec: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A gzip'd cpio newc archive unpacked into rootfs; `rdinit=/init`.
        case initramfs
        /// A filesystem image loaded as initrd into `/dev/ram0`; `root=/dev/ram0`.
        case initrd
        /// A filesystem image on an emulated disk (SD card, virtio); `root=<device>`.
        case disk
    }

    public var kind: Kind
    /// The guest's root device for `root=` (`/dev/ram0`, `/dev/mmcblk0`, `/dev/vda`).
    public var device: String?
    /// Filesystem of the image for `initrd` and `disk` (`ext2` or `ext4`).
    public var filesystem: String?
    /// QEMU arguments that attach the image; `{disk}` stands for its path.
    public var qemuArgs: [String]
    /// Kernel options this way of booting needs (block device, filesystem, driver).
    public var kernelOptions: [KernelOption]
    /// Console silence this root device may legitimately cause (a disk behind `rootwait`
    /// waits, idle, for its device): replaces the target's `qemu.silenceSeconds` and its idle allowance.
    public var silenceSeconds: Int?

    enum CodingKeys: String, CodingKey, CaseIterable { case kind, device, filesystem, qemuArgs, kernelOptions, silenceSeconds }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let raw = try c.decode(String.self, forKey: .kind)
        guard let kind = Kind(rawValue: raw) else {
            throw decoder.problem("'\(raw)' is not a root device kind; valid: \(Kind.allCases.map(\.rawValue).joined(separator: ", "))", at: CodingKeys.kind)
        }
        self.kind = kind
        device = try c.decodeIfPresent(String.self, forKey: .device)
        filesystem = try c.decodeIfPresent(String.self, forKey: .filesystem)
        qemuArgs = try c.value(.qemuArgs, default: [])
        kernelOptions = try c.value(.kernelOptions, default: [])
        silenceSeconds = try c.decodeIfPresent(Int.self, forKey: .silenceSeconds)
        if let silenceSeconds, silenceSeconds <= 0 { throw decoder.problem("must be positive", at: CodingKeys.silenceSeconds) }
        if kind != .initramfs {
            guard device != nil else { throw decoder.problem("a '\(raw)' root device needs 'device' (the root= value)", at: CodingKeys.device) }
            let fs = filesystem ?? ""
            guard ["ext2", "ext3", "ext4"].contains(fs) else {
                throw decoder.problem("a '\(raw)' root device needs 'filesystem': ext2, ext3 or ext4", at: CodingKeys.filesystem)
            }
        }
        if kind == .disk, !qemuArgs.contains(where: { $0.contains("{disk}") }) {
            throw decoder.problem("a disk root device needs qemuArgs that attach '{disk}'", at: CodingKeys.qemuArgs)
        }
    }
}
