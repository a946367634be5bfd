import Foundation
import KmatrixCore
import KmatrixTestSupport
import KmatrixUserspace
import Testing

@Suite("rootfs and images")
struct RootfsTests {
    /// A stand-in for a busybox install: the layout `make install` leaves.
    func fakeBusybox(_ dir: String) throws -> String {
        let install = "\(dir)/install"
        let fm = FileManager.default
        for sub in ["bin", "sbin", "usr/bin", "usr/sbin"] { try fm.createDirectory(atPath: "\(install)/\(sub)", withIntermediateDirectories: true) }
        try "#!/bin/false\n".write(toFile: "\(install)/bin/busybox", atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(install)/bin/busybox")
        try fm.createSymbolicLink(atPath: "\(install)/bin/sh", withDestinationPath: "busybox")
        try fm.createSymbolicLink(atPath: "\(install)/sbin/mdev", withDestinationPath: "../bin/busybox")
        try fm.createSymbolicLink(atPath: "\(install)/linuxrc", withDestinationPath: "bin/busybox")
        return install
    }

    func fakeModules(_ dir: String) throws -> StagedModules {
        let release = "6.1.0-kmatrix"
        let root = "\(dir)/stage/lib/modules/\(release)"
        try FileManager.default.createDirectory(atPath: "\(root)/kernel/drivers/block", withIntermediateDirectories: true)
        try "x".write(toFile: "\(root)/kernel/drivers/block/loop.ko", atomically: true, encoding: .utf8)
        try "drivers/block/loop.ko\n".write(toFile: "\(root)/modules.order", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(root)/build", withDestinationPath: "/nonexistent/kernel/build")
        return try #require(try StagedModules.find(stage: "\(dir)/stage"))
    }

    /// A kernel build publishes its staged `lib/modules` as the entry's `modules` folder:
    /// found from there too (the rootfs step once looked for `lib/modules` beside it and
    /// shipped no modules).
    @Test func modulesAreFoundInAPublishedLibModulesFolder() throws {
        let dir = try scratchFolder("modules")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let staged = try fakeModules(dir)
        try FileManager.default.moveItem(atPath: "\(dir)/stage/lib/modules", toPath: "\(dir)/published-modules")
        let found = try #require(try StagedModules.find(libModules: "\(dir)/published-modules"))
        #expect(found.release == staged.release)
        #expect(found.directory == "\(dir)/published-modules/\(staged.release)")
        #expect(try StagedModules.find(libModules: "\(dir)/nothing") == nil)
    }

    @Test func unattendedInitramfsHasSkeletonNodesMarkerAndModules() throws {
        let dir = try scratchFolder("rootfs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/overlay/etc", withIntermediateDirectories: true)
        try "overlaid\n".write(toFile: "\(dir)/overlay/etc/profile", atomically: true, encoding: .utf8)
        let options = RootfsOptions(busyboxInstall: try fakeBusybox(dir), rootDevice: .initramfs, console: "ttyAMA0",
                                    consoleNode: ConsoleNode(major: 204, minor: 64), overlay: "\(dir)/overlay", modules: try fakeModules(dir))
        let tree = try Rootfs.assemble(options)
        _ = try InitramfsWriter.write(tree, to: "\(dir)/initramfs.cpio.gz")
        let members = try NewcReader.parse(try gunzip("\(dir)/initramfs.cpio.gz"))
        let byName = Dictionary(members.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        #expect(members.allSatisfy { $0.uid == 0 && $0.gid == 0 && $0.mtime == 0 })
        let console = try #require(byName["dev/console"])
        #expect(console.fileType == 0o020000 && console.rdevMajor == 5 && console.rdevMinor == 1 && console.permissions == 0o600)
        #expect(byName["dev/null"]?.rdevMinor == 3)
        // The console's node is the one the options give, and no other board's console is there.
        let uart = try #require(byName["dev/ttyAMA0"])
        #expect(uart.fileType == 0o020000 && uart.rdevMajor == 204 && uart.rdevMinor == 64)
        #expect(byName["dev/ttyS0"] == nil)
        #expect(byName["tmp"]?.permissions == 0o1777)
        #expect(byName["bin/sh"].map { String(decoding: $0.data, as: UTF8.self) } == "busybox")
        let initText = String(decoding: try #require(byName["init"]).data, as: UTF8.self)
        #expect(byName["init"]?.permissions == 0o755)
        #expect(initText.contains("echo \"\(BootMarker.prefix) arch=$(uname -m) release=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"))
        #expect(initText.contains("reboot -f"))
        let rcS = String(decoding: try #require(byName["etc/init.d/rcS"]).data, as: UTF8.self)
        for line in ["mount -a", "mount -t devpts devpts /dev/pts", "/sbin/mdev > /proc/sys/kernel/hotplug", "mdev -s"] {
            #expect(rcS.contains(line))
        }
        #expect(String(decoding: try #require(byName["etc/fstab"]).data, as: UTF8.self).contains("devtmpfs  /dev"))
        #expect(String(decoding: try #require(byName["etc/inittab"]).data, as: UTF8.self).contains("ttyAMA0::respawn:-/bin/sh"))
        #expect(String(decoding: try #require(byName["etc/profile"]).data, as: UTF8.self) == "overlaid\n", "the overlay wins")
        // Modules: in lib/modules/<release>, listed for the init, without the build symlink.
        #expect(byName["lib/modules/6.1.0-kmatrix/kernel/drivers/block/loop.ko"] != nil)
        #expect(byName["lib/modules/6.1.0-kmatrix/build"] == nil)
        #expect(byName["lib/modules/6.1.0-kmatrix/kmatrix.modules"].map { String(decoding: $0.data, as: UTF8.self) } == "loop kernel/drivers/block/loop.ko\n")
        // Directories before their contents.
        let names = members.map(\.name)
        for (i, name) in names.enumerated() where name.contains("/") {
            #expect(names.firstIndex(of: (name as NSString).deletingLastPathComponent).map { $0 < i } == true, "parent of \(name) first")
        }
    }

    @Test func interactiveInitStartsBusyboxInitAndDiskRootsSkipDevtmpfsInFstab() throws {
        let dir = try scratchFolder("rootfs-i")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tree = try Rootfs.assemble(RootfsOptions(busyboxInstall: try fakeBusybox(dir), rootDevice: .disk, initMode: .interactive))
        guard case .contents(let initBytes) = try #require(tree["init"]).kind else { Issue.record("init is not generated"); return }
        #expect(String(decoding: initBytes, as: UTF8.self).contains("exec /sbin/init"))
        guard case .contents(let fstab) = try #require(tree["etc/fstab"]).kind else { Issue.record("no fstab"); return }
        #expect(!String(decoding: fstab, as: UTF8.self).contains("devtmpfs"))
    }

    @Test func missingBusyboxInstallIsAHostError() throws {
        let error = #expect(throws: KmatrixError.self) {
            _ = try Rootfs.assemble(RootfsOptions(busyboxInstall: "/nonexistent/install", rootDevice: .initramfs))
        }
        #expect(error?.kind == .hostFailure)
        #expect(error?.message.contains("build busybox first") == true)
    }

    @Test(.needs(.file("/sbin/mke2fs", from: "e2fsprogs"), .file("/sbin/debugfs", from: "e2fsprogs")), arguments: ["ext2", "ext4"])
    func filesystemImageCarriesDeviceNodesWithoutRootAndIsReproducible(filesystem: String) async throws {
        let dir = try scratchFolder("image")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tree = try Rootfs.assemble(RootfsOptions(busyboxInstall: try fakeBusybox(dir), rootDevice: .disk))
        let one = try await FilesystemImage.make(tree, filesystem: filesystem, output: "\(dir)/one.img", directory: "\(dir)/rootfs", logPath: "\(dir)/log")
        let two = try await FilesystemImage.make(tree, filesystem: filesystem, output: "\(dir)/two.img", directory: "\(dir)/rootfs2", logPath: "\(dir)/log")
        #expect(one.specialFiles == Rootfs.deviceNodes.count)
        #expect(try Data(contentsOf: URL(fileURLWithPath: one.path)) == Data(contentsOf: URL(fileURLWithPath: two.path)))

        // Read the image back with debugfs, an independent reader.
        let out = "\(dir)/stat"
        try await runTool(["/sbin/debugfs", "-R", "stat /dev/console", one.path], stdout: out)
        let stat = try String(contentsOfFile: out, encoding: .utf8)
        #expect(stat.contains("Type: character special"))
        #expect(stat.contains("Mode:  0600"))
        #expect(stat.contains("User:     0   Group:     0"))
        #expect(stat.contains("Device major/minor number: 05:01") || stat.contains("Device major/minor number: 005:001"), "\(stat)")
        try await runTool(["/sbin/debugfs", "-R", "cat /init", one.path], stdout: out)
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains(BootMarker.prefix))
        try await runTool(["/sbin/debugfs", "-R", "stat /tmp", one.path], stdout: out)
        #expect(try String(contentsOfFile: out, encoding: .utf8).contains("Mode:  01777"))
        // fsck finds nothing to fix.
        #expect(try await runTool(["/sbin/e2fsck", "-fn", one.path], stdout: "\(dir)/fsck") == 0)
    }

    /// The real busybox rootfs (the shared test cache's amd64 install) packed by kmatrix and
    /// by `find | cpio -o -H newc | gzip -9` (GNU cpio as a second oracle): the same names,
    /// types and sizes; timings printed.
    @Test(.needs(tools: ["cpio", "gzip", "find"], .busyboxInstall("amd64")))
    func packsLikeFindCpioGzip() async throws {
        let dir = try scratchFolder("pack")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let busybox = try #require(TestCache.shared.busyboxInstall(debianArch: "amd64"))
        let tree = try Rootfs.assemble(RootfsOptions(busyboxInstall: busybox, rootDevice: .initramfs))
        let special = try FilesystemImage.materialize(tree, into: "\(dir)/rootfs")
        #expect(special.count == Rootfs.deviceNodes.count)

        let clock = ContinuousClock()
        var record: InitramfsRecord?
        let ours = try clock.measure { record = try InitramfsWriter.write(tree, to: "\(dir)/kmatrix.cpio.gz") }
        var status: Int32 = -1
        let theirs = try await clock.measure {
            status = try await runTool(["sh", "-c", "cd \"$1\" && find . | cpio -o -H newc --quiet | gzip -9 > \"$2\"", "pack", "\(dir)/rootfs", "\(dir)/gnu.cpio.gz"])
        }
        #expect(status == 0)
        print("pack \(record?.entries ?? 0) entries: kmatrix \(ours) (\(record?.archiveBytes ?? 0) bytes), find|cpio|gzip -9 \(theirs)")

        let a = try NewcReader.parse(try gunzip("\(dir)/kmatrix.cpio.gz"))
        let b = try NewcReader.parse(try gunzip("\(dir)/gnu.cpio.gz")).filter { $0.name != "." }
        // GNU cpio saw the folder without the device nodes (they exist only as entries).
        let nodes = Set(Rootfs.deviceNodes.map(\.path))
        func summary(_ m: [NewcMember]) -> [String: String] {
            Dictionary(uniqueKeysWithValues: m.filter { !nodes.contains($0.name) }.map { ($0.name, "\($0.mode) \($0.data.count)") })
        }
        #expect(summary(a) == summary(b))
    }

    @Test func elfReaderRejectsNonELF() {
        #expect(throws: KmatrixError.self) { _ = try ELFHeader.parse(Array(repeating: 0, count: 64)) }
    }

    /// A big-endian ELF64 header with no program headers: the machine number is named by
    /// the table, and a number the table lacks keeps its number.
    @Test(arguments: [(UInt16(21), "ppc64"), (UInt16(22), "s390"), (UInt16(243), "riscv"), (UInt16(9999), "machine-9999")])
    func elfMachineNames(number: UInt16, name: String) throws {
        var header = [UInt8](repeating: 0, count: 64)
        header.replaceSubrange(0..<6, with: [0x7f, 0x45, 0x4c, 0x46, 2, 2])
        header[17] = 2  // ET_EXEC
        header[18] = UInt8(number >> 8)
        header[19] = UInt8(number & 0xff)
        let elf = try ELFHeader.parse(header)
        #expect(elf.machine == name && elf.machineNumber == number && elf.elfClass == 64 && !elf.littleEndian && elf.isStatic)
    }
}
