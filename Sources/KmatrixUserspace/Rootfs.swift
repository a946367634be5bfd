import Foundation
import KmatrixCore

/// Kernel modules staged by `make modules_install INSTALL_MOD_PATH=<stage>`.
public struct StagedModules: Sendable, Equatable {
    /// `<stage>/lib/modules/<release>`.
    public var directory: String
    public var release: String

    public init(directory: String, release: String) {
        self.directory = directory
        self.release = release
    }

    /// Finds the single release under `<stage>/lib/modules`.
    public static func find(stage: String) throws(KmatrixError) -> StagedModules? {
        try find(libModules: "\(stage)/lib/modules")
    }

    /// Finds the single release in a `lib/modules` folder (a kernel build publishes its
    /// staged `lib/modules` as the entry's `modules`).
    public static func find(libModules root: String) throws(KmatrixError) -> StagedModules? {
        guard let releases = try? FileManager.default.contentsOfDirectory(atPath: root), !releases.isEmpty else { return nil }
        guard releases.count == 1, let release = releases.first else {
            throw .host("\(root) holds several releases (\(releases.sorted().joined(separator: ", "))): stage one kernel's modules")
        }
        return StagedModules(directory: "\(root)/\(release)", release: release)
    }
}

/// What goes into a cell's root filesystem.
public struct RootfsOptions: Sendable {
    public enum InitMode: String, Sendable, Codable, CaseIterable {
        /// `/init` prints the boot marker and reboots.
        case unattended
        /// `/init` starts busybox init, which starts a shell on the console.
        case interactive
    }

    /// The busybox `make install` tree (`bin sbin usr linuxrc`).
    public var busyboxInstall: String
    public var rootDevice: RootDeviceSpec.Kind
    /// The console device (`ttyS0`, `ttyAMA0`) the interactive shell runs on.
    public var console: String?
    /// Its character device numbers (the target's `console.node`): the rootfs carries
    /// `/dev/<console>` with them.
    public var consoleNode: ConsoleNode?
    public var initMode: InitMode
    /// A folder copied on top of everything else.
    public var overlay: String?
    /// A gen_init_cpio list whose entries are added on top (before the overlay).
    public var cpioList: String?
    public var modules: StagedModules?
    public var hostname: String
    /// Test scripts init runs after the marker (`GuestTests.swift`).
    public var tests: [GuestScript] = []

    public init(busyboxInstall: String, rootDevice: RootDeviceSpec.Kind, console: String? = nil, consoleNode: ConsoleNode? = nil,
                initMode: InitMode = .unattended, overlay: String? = nil, cpioList: String? = nil, modules: StagedModules? = nil,
                hostname: String = "kmatrix") {
        self.busyboxInstall = busyboxInstall
        self.rootDevice = rootDevice
        self.console = console
        self.consoleNode = consoleNode
        self.initMode = initMode
        self.overlay = overlay
        self.cpioList = cpioList
        self.modules = modules
        self.hostname = hostname
    }
}

/// The rootfs skeleton of seed 003 around a busybox install, as a `RootfsTree`.
public enum Rootfs {
    public static let directories: [(String, UInt32)] = [
        ("bin", 0o755), ("sbin", 0o755), ("usr", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
        ("etc", 0o755), ("etc/init.d", 0o755), ("dev", 0o755), ("dev/pts", 0o755), ("proc", 0o555), ("sys", 0o555),
        ("tmp", 0o1777), ("root", 0o700), ("home", 0o755), ("mnt", 0o755), ("lib", 0o755), ("run", 0o755),
        ("var", 0o755), ("var/log", 0o755),
    ]

    /// Device nodes written as archive entries (no mknod): what the kernel and busybox
    /// need before devtmpfs or mdev populate /dev. The console's own node comes from the
    /// target (`consoleNode(_:)`).
    public static let deviceNodes: [RootfsEntry] = [
        RootfsEntry("dev/console", .characterDevice(major: 5, minor: 1), mode: 0o600),
        RootfsEntry("dev/null", .characterDevice(major: 1, minor: 3), mode: 0o666),
        RootfsEntry("dev/zero", .characterDevice(major: 1, minor: 5), mode: 0o666),
        RootfsEntry("dev/random", .characterDevice(major: 1, minor: 8), mode: 0o666),
        RootfsEntry("dev/urandom", .characterDevice(major: 1, minor: 9), mode: 0o666),
        RootfsEntry("dev/kmsg", .characterDevice(major: 1, minor: 11), mode: 0o644),
        RootfsEntry("dev/tty", .characterDevice(major: 5, minor: 0), mode: 0o666),
        RootfsEntry("dev/tty0", .characterDevice(major: 4, minor: 0), mode: 0o620),
        RootfsEntry("dev/tty1", .characterDevice(major: 4, minor: 1), mode: 0o620),
    ]

    /// `/dev/<console>` with the numbers the target gives, when it gives them.
    public static func consoleNode(_ options: RootfsOptions) -> RootfsEntry? {
        guard let console = options.console, let node = options.consoleNode else { return nil }
        return RootfsEntry("dev/\(console)", .characterDevice(major: node.major, minor: node.minor), mode: 0o620)
    }

    public static func assemble(_ options: RootfsOptions) throws(KmatrixError) -> RootfsTree {
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: "\(options.busyboxInstall)/bin/busybox") else {
            throw .host("\(options.busyboxInstall) holds no bin/busybox: build busybox first")
        }
        var tree = RootfsTree()
        for (path, mode) in directories { tree.directory(path, mode: mode) }
        try tree.addTree(from: options.busyboxInstall)
        for node in deviceNodes { tree.add(node) }
        if let console = consoleNode(options) { tree.add(console) }

        tree.file("etc/fstab", fstab(options.rootDevice))
        tree.file("etc/inittab", inittab(console: options.console))
        tree.file("etc/init.d/rcS", rcS, mode: 0o755)
        tree.file("etc/init.d/load-modules", loadModules, mode: 0o755)
        tree.file("etc/profile", profile)
        tree.file("etc/hostname", options.hostname + "\n")
        tree.file("etc/passwd", "root::0:0:root:/root:/bin/sh\n")
        tree.file("etc/group", "root:x:0:\n")
        let unattended = options.tests.isEmpty ? unattendedInit : unattendedInitWithTests
        tree.file("init", options.initMode == .unattended ? unattended : interactiveInit, mode: 0o755)
        addGuestTests(options.tests, to: &tree)

        if let modules = options.modules {
            try addModules(modules, to: &tree)
        }
        if let list = options.cpioList {
            for entry in try CpioList.parse(file: list).entries { tree.add(entry) }
        }
        if let overlay = options.overlay {
            try tree.addTree(from: overlay)
        }
        return tree
    }

    static func addModules(_ modules: StagedModules, to tree: inout RootfsTree) throws(KmatrixError) {
        let prefix = "lib/modules/\(modules.release)"
        try tree.addTree(from: modules.directory, under: prefix)
        // The build links lib/modules/<release>/{build,source} to the kernel trees: not for the guest.
        for link in ["build", "source"] {
            if case .symlink = tree["\(prefix)/\(link)"]?.kind { tree.remove("\(prefix)/\(link)") }
        }
        // Load order: modules.order (the kernel's link order) when present, else sorted.
        var paths: [String] = []
        if let order = try? String(contentsOfFile: "\(modules.directory)/modules.order", encoding: .utf8) {
            for line in order.split(separator: "\n") {
                let path = line.hasPrefix("kernel/") ? String(line) : "kernel/\(line)"
                if tree["\(prefix)/\(path)"] != nil { paths.append(path) }
            }
        }
        if paths.isEmpty {
            paths = tree.entries.map(\.path).filter { $0.hasPrefix(prefix + "/") && $0.contains(".ko") }
                .map { String($0.dropFirst(prefix.count + 1)) }.sorted()
        }
        let lines = paths.map { path -> String in
            let file = (path as NSString).lastPathComponent
            let name = String(file[..<(file.range(of: ".ko")?.lowerBound ?? file.endIndex)])
            return "\(name) \(path)"
        }
        tree.file("\(prefix)/kmatrix.modules", lines.map { $0 + "\n" }.joined())
    }

    static func fstab(_ kind: RootDeviceSpec.Kind) -> String {
        var text = """
            # kmatrix: pseudo filesystems
            proc      /proc     proc      defaults  0 0
            sysfs     /sys      sysfs     defaults  0 0
            tmpfs     /tmp      tmpfs     defaults  0 0
            tmpfs     /run      tmpfs     defaults  0 0

            """
        // An initramfs is never given devtmpfs by the kernel (DEVTMPFS_MOUNT acts on the
        // mounted root device only); disk and initrd roots have it already.
        if kind == .initramfs { text += "devtmpfs  /dev      devtmpfs  defaults  0 0\n" }
        return text
    }

    static func inittab(console: String?) -> String {
        """
        # kmatrix: busybox init
        ::sysinit:/etc/init.d/rcS
        \(console ?? "")::respawn:-/bin/sh
        ::ctrlaltdel:/sbin/reboot
        ::shutdown:/bin/umount -a -r

        """
    }

    static let rcS = """
        #!/bin/sh
        # kmatrix: system start (seed 003)
        /bin/mount -a
        mkdir -p /dev/pts
        mount -t devpts devpts /dev/pts
        [ -w /proc/sys/kernel/hotplug ] && echo /sbin/mdev > /proc/sys/kernel/hotplug
        mdev -s
        /etc/init.d/load-modules >/dev/null
        hostname -F /etc/hostname

        """

    /// Prints `<loaded>/<total>` on stdout; failures go to the console.
    static let loadModules = """
        #!/bin/sh
        # kmatrix: loads the modules listed in kmatrix.modules, in order
        dir=/lib/modules/$(uname -r)
        list=$dir/kmatrix.modules
        if [ ! -f "$list" ]; then
            if [ -n "$(ls /lib/modules 2>/dev/null)" ]; then echo "kmatrix: no modules for $(uname -r) in /lib/modules" >&2; fi
            echo 0/0
            exit 0
        fi
        loaded=0
        total=0
        while read -r name path; do
            total=$((total + 1))
            if [ -f "$dir/modules.dep" ] && modprobe "$name" 2>/dev/null; then
                loaded=$((loaded + 1))
            elif grep -q "^$name " /proc/modules 2>/dev/null || insmod "$dir/$path"; then
                loaded=$((loaded + 1))
            else
                echo "kmatrix: cannot load $name ($path)" >&2
            fi
        done < "$list"
        echo "$loaded/$total"

        """

    static let unattendedInit = """
        #!/bin/sh
        # kmatrix: unattended init. Prints the boot marker, then reboots: with
        # panic=-1 and -no-reboot QEMU exits by itself.
        export PATH=/bin:/sbin:/usr/bin:/usr/sbin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev 2>/dev/null
        modules=""
        if [ -d /lib/modules ]; then modules=" modules=$(/etc/init.d/load-modules)"; fi
        echo "\(BootMarker.prefix) arch=$(uname -m) release=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)$modules"
        sync
        reboot -f
        # reboot -f returned: exiting makes the kernel panic, which ends the run too.
        exit 1

        """

    static let interactiveInit = """
        #!/bin/sh
        # kmatrix: interactive init. busybox init runs /etc/inittab: rcS, then a shell on the console.
        exec /sbin/init

        """

    static let profile = """
        # kmatrix: /etc/profile
        export PATH=/bin:/sbin:/usr/bin:/usr/sbin
        export HOME=/root
        export PS1='[\\u@\\h \\W]# '

        """
}

extension RootfsTree {
    mutating func remove(_ path: String) {
        let normalized = Self.normalize(path)
        var copy = RootfsTree()
        for entry in entries where entry.path != normalized { copy.add(entry) }
        self = copy
    }
}
