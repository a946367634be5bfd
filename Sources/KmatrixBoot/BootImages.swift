import Foundation
import KmatrixCore

/// The files one boot needs, wherever they came from: a kmatrix cell, a kernel someone
/// else built, a TuxMake output directory.
public struct BootImages: Sendable, Equatable {
    public var kernel: String
    public var dtb: String?
    /// The initramfs or initrd image for `-initrd`.
    public var initrd: String?
    /// The filesystem image for a `disk` root device.
    public var disk: String?
    /// The kernel build directory (vmlinux, scripts/gdb) when there is one.
    public var buildDirectory: String?

    public init(kernel: String, dtb: String? = nil, initrd: String? = nil, disk: String? = nil, buildDirectory: String? = nil) {
        self.kernel = kernel
        self.dtb = dtb
        self.initrd = initrd
        self.disk = disk
        self.buildDirectory = buildDirectory
    }

    /// The QEMU invocation of these images on `target` with `rootDevice`.
    public func invocation(target: Target, rootDevice: RootDeviceSpec) -> QemuInvocation {
        QemuInvocation(target: target, rootDevice: rootDevice, kernel: kernel, dtb: dtb,
                       initrd: rootDevice.kind == .disk ? nil : initrd, disk: rootDevice.kind == .disk ? disk : nil)
    }

    /// The initramfs file name the userspace step publishes in a cell's images folder.
    public static let initramfsName = "initramfs.cpio.gz"

    /// The images kmatrix built for `cell`; a missing one is a host failure naming what to run.
    public static func forCell(_ cell: Cell, workspace: Workspace) throws(KmatrixError) -> BootImages {
        let build = workspace.kernelBuild(cell)
        let images = workspace.images(cell)
        // What `kmatrix build` publishes, when the build tree itself is gone.
        let published = "\(workspace.root)/artifacts/\(cell.id)/kernel"
        var missing: [String] = []
        let kernel = firstExisting(cell.target.kernel.image.paths.map { "\(build)/\($0)" }
            + ["\(published)/\(cell.target.kernel.image.fileName)", "\(images)/\(cell.target.kernel.image.fileName)"])
        if kernel == nil { missing.append("kernel image (\(cell.target.kernel.image.paths.map { "\(build)/\($0)" }.joined(separator: " or ")))") }
        var dtb: String?
        if cell.target.deviceTree.source == .build, let product = cell.target.kernel.dtbs.first {
            dtb = firstExisting(product.paths.map { "\(build)/\($0)" } + ["\(published)/dtbs/\(product.fileName)", "\(images)/\(product.fileName)"])
            if dtb == nil { missing.append("device tree \(product.fileName) (in \(build))") }
        }
        var initrd: String?, disk: String?
        let image = rootImage(cell, workspace: workspace)
        if image == nil {
            missing.append(cell.rootDevice.kind == .initramfs ? "initramfs \(images)/\(initramfsName)"
                           : "root filesystem image \(images)/rootfs.\(cell.rootDevice.filesystem ?? "ext2")")
        }
        if cell.rootDevice.kind == .disk { disk = image } else { initrd = image }
        guard missing.isEmpty, let kernel else {
            throw KmatrixError(.hostFailure, "\(cell.id) is not built: missing \(missing.joined(separator: ", ")); build it first (kmatrix build --cell \(cell.id))")
        }
        let buildDirectory = FileManager.default.fileExists(atPath: "\(build)/vmlinux") ? build : published
        return BootImages(kernel: kernel, dtb: dtb, initrd: initrd, disk: disk, buildDirectory: buildDirectory)
    }

    /// The cell's initramfs (or filesystem image for initrd and disk roots), if built.
    public static func rootImage(_ cell: Cell, workspace: Workspace) -> String? {
        let images = workspace.images(cell)
        switch cell.rootDevice.kind {
        case .initramfs:
            return firstExisting(["\(images)/\(initramfsName)"])
        case .initrd, .disk:
            let fs = cell.rootDevice.filesystem ?? "ext2"
            return firstExisting(["\(images)/rootfs.\(fs)", "\(images)/rootfs.img", "\(images)/\(cell.rootName).\(fs)"])
        }
    }

    static func firstExisting(_ paths: [String]) -> String? {
        paths.first { FileManager.default.fileExists(atPath: $0) }
    }

    // MARK: TuxMake

    /// The subset of TuxMake's `metadata.json` a boot needs: `results.artifacts` names the
    /// kernel image (`kernel: ["bzImage"]`) and the DTB tarball (`dtbs: ["dtbs.tar.xz"]`);
    /// `build.target_arch` says for which architecture.
    struct TuxMakeMetadata: Decodable {
        struct Build: Decodable { var target_arch: String? }
        struct Results: Decodable {
            var status: String?
            var artifacts: [String: [String]]?
        }
        var build: Build?
        var results: Results?
    }

    /// Kernel and DTB of a TuxMake output directory. The DTB is taken from a `dtbs/`
    /// folder when there is one, else extracted (with `tar`) from `dtbs.tar.xz` into `scratch`.
    public static func fromTuxMake(_ directory: String, target: Target, scratch: String) async throws(KmatrixError) -> BootImages {
        let metadataPath = "\(directory)/metadata.json"
        guard let data = FileManager.default.contents(atPath: metadataPath) else {
            throw .badInput("\(metadataPath) does not exist: --tuxmake needs a TuxMake output directory")
        }
        let metadata: TuxMakeMetadata
        do { metadata = try JSONDecoder().decode(TuxMakeMetadata.self, from: data) } catch {
            throw KmatrixError(.badInput, "\(metadataPath) is not TuxMake metadata", underlying: error)
        }
        if let arch = metadata.build?.target_arch, arch != target.kernel.arch {
            throw .badInput("\(metadataPath): build.target_arch is '\(arch)' but target \(target.name) needs ARCH=\(target.kernel.arch)")
        }
        guard let kernelName = metadata.results?.artifacts?["kernel"]?.first(where: { !$0.hasPrefix("vmlinux") }) ?? metadata.results?.artifacts?["kernel"]?.first else {
            throw .badInput("\(metadataPath): results.artifacts.kernel names no kernel image (was the kernel target built? results.status is \(metadata.results?.status ?? "missing"))")
        }
        let kernel = "\(directory)/\(kernelName)"
        guard FileManager.default.fileExists(atPath: kernel) else { throw .badInput("\(metadataPath) names the kernel \(kernelName) but \(kernel) does not exist") }

        var dtb: String?
        if target.deviceTree.source == .build, let wanted = target.kernel.dtbs.first?.fileName {
            if let found = findFile(named: wanted, under: "\(directory)/dtbs") {
                dtb = found
            } else if let tarball = (metadata.results?.artifacts?["dtbs"] ?? ["dtbs.tar.xz"]).map({ "\(directory)/\($0)" })
                        .first(where: { $0.hasSuffix(".tar.xz") && FileManager.default.fileExists(atPath: $0) }) {
                dtb = try await extract(wanted, from: tarball, into: scratch)
            }
            guard dtb != nil else {
                throw .badInput("\(directory) has no \(wanted) (neither in dtbs/ nor in dtbs.tar.xz): \(target.name) needs it; pass --dtb")
            }
        }
        return BootImages(kernel: kernel, dtb: dtb)
    }

    static func findFile(named name: String, under directory: String) -> String? {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return nil }
        for case let relative as String in enumerator where (relative as NSString).lastPathComponent == name {
            return "\(directory)/\(relative)"
        }
        return nil
    }

    static func extract(_ name: String, from tarball: String, into scratch: String) async throws(KmatrixError) -> String? {
        let listing = try await ProcessRunner.capture(Command(["tar", "-tJf", tarball]), timeout: .seconds(120))
        guard listing.termination.succeeded else { throw .host("tar -tJf \(tarball): \(listing.termination): \(listing.standardError)") }
        guard let member = listing.standardOutput.split(separator: "\n").map(String.init)
                .first(where: { ($0 as NSString).lastPathComponent == name }) else { return nil }
        do { try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true) } catch {
            throw .host("cannot create \(scratch)", underlying: error)
        }
        let unpack = try await ProcessRunner.capture(Command(["tar", "-xJf", tarball, "-C", scratch, member]), timeout: .seconds(120))
        guard unpack.termination.succeeded else { throw .host("tar -xJf \(tarball) \(member): \(unpack.termination): \(unpack.standardError)") }
        return "\(scratch)/\(member)"
    }
}

/// How to attach gdb to a QEMU halted with `-gdb tcp:127.0.0.1:PORT -S` (seed 004 workflow).
public struct GdbAttach: Sendable, Equatable {
    public var command: [String]
    /// What is missing for a comfortable session (debug info, the lx-* scripts).
    public var notes: [String]

    /// `vmlinux` with the kernel's gdb scripts (`vmlinux-gdb.py`, from `CONFIG_GDB_SCRIPTS`)
    /// loaded through gdb's auto-load path.
    public init(buildDirectory: String, target: Target, hostArch: String = KvmProbe.hostArch, port: Int = QemuInvocation.defaultGdbPort) {
        let vmlinux = "\(buildDirectory)/vmlinux"
        let sameArch = target.qemu.kvmHostArch == hostArch
        let gdb = sameArch ? "gdb" : (ProcessRunner.which("gdb-multiarch") != nil || ProcessRunner.which("gdb") == nil ? "gdb-multiarch" : "gdb")
        command = [gdb, "-q", "-iex", "add-auto-load-safe-path \(buildDirectory)", "-ex", "target remote 127.0.0.1:\(port)", vmlinux]
        var notes: [String] = []
        if !FileManager.default.fileExists(atPath: vmlinux) { notes.append("\(vmlinux) does not exist (is the kernel built?)") }
        if !FileManager.default.fileExists(atPath: "\(buildDirectory)/vmlinux-gdb.py") {
            notes.append("no vmlinux-gdb.py in \(buildDirectory): the lx-* commands need CONFIG_GDB_SCRIPTS=y (and CONFIG_DEBUG_INFO for source lines)")
        }
        if ProcessRunner.which(gdb) == nil { notes.append("\(gdb) is not installed (apt-get install \(gdb))") }
        self.notes = notes
    }
}
