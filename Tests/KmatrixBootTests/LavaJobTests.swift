import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixCrypto
import KmatrixTestSupport
import Testing

@Suite("LAVA jobs")
struct LavaJobTests {
    /// The made-up board with a `lava` section: a lab board booted by U-Boot over tftp.
    static func board(lava: String) throws -> Target {
        let json = MadeUpBoard.json.replacingOccurrences(of: #""qemu": {"#, with: #""lava": \#(lava), "qemu": {"#)
        return try decodeDescriptor(Target.self, from: Data(json.utf8), file: "Targets/acme-imx6q.json")
    }

    static let uBoot = """
        { "deviceType": "acme-imx6q-board", "deploy": { "to": "tftp", "kernelType": "zimage" },
          "boot": { "method": "u-boot", "commands": "ramdisk", "prompts": ["/ #"] } }
        """

    /// A cell of the default matrix with its target swapped for `target`, and small files
    /// standing in for its images (the job hashes them; their contents do not matter).
    static func cell(on target: Target) throws -> (Cell, BootImages) {
        let project = try Project.load(root: repositoryRoot)
        var cell = try #require(project.cells.first { $0.rootDevice.kind == .initramfs })
        cell.target = target
        let folder = NSTemporaryDirectory() + "kmatrix-lava-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["zImage", "imx6q-acme.dtb", "initramfs.cpio.gz"] {
            try Data(name.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"))
        }
        return (cell, BootImages(kernel: "\(folder)/zImage", dtb: "\(folder)/imx6q-acme.dtb", initrd: "\(folder)/initramfs.cpio.gz"))
    }

    @Test func aBoardsLavaSectionIsDecodedStrictly() throws {
        let board = try Self.board(lava: Self.uBoot)
        let lava = try #require(board.lava)
        #expect(lava.deviceType == "acme-imx6q-board" && lava.deploy.to == "tftp" && lava.deploy.kernelType == "zimage")
        #expect(lava.boot?.method == "u-boot" && lava.boot?.commands == ["ramdisk"] && lava.boot?.namedCommands == true)
        #expect(lava.boot?.prompts == ["/ #"])
        #expect(try MadeUpBoard.target().lava == nil)

        for (lavaJSON, field, words) in [
            (#"{ "deviceType": "x", "boot": { "method": "u-boot", "comands": "ramdisk" } }"#, "lava.boot", "comands"),
            (#"{ "devicetype": "x" }"#, "lava", "devicetype"),
            (#"{ "boot": { "method": "u-boot" } }"#, "lava.deviceType", "device type"),
            (#"{ "deviceType": "x" }"#, "lava.deviceType", "boot method"),
            (#"{ "deviceType": "x", "boot": { "method": "u boot" } }"#, "lava.boot.method", "u boot"),
        ] {
            #expect {
                try Self.board(lava: lavaJSON)
            } throws: { error in
                guard let error = error as? DescriptorError else { return false }
                return error.file == "Targets/acme-imx6q.json" && error.field.hasPrefix(field) && error.description.contains(words)
            }
        }
    }

    @Test func aQemuTargetsJobTakesItsValuesFromTheDescriptor() throws {
        let (cell, images) = try Self.cell(on: try MadeUpBoard.target())
        let yaml = try LavaJob(cell: cell, images: images, artifactBase: "https://lab.example/a/").render()
        #expect(yaml.contains("device_type: qemu\n"))
        #expect(yaml.contains("  arch: 'acme'\n  machine: 'acme-imx6q'\n  cpu: 'cortex-a9'\n  memory: 512\n"))
        #expect(yaml.contains("url: 'https://lab.example/a/zImage'"))
        #expect(yaml.contains("url: 'https://lab.example/a/imx6q-acme.dtb'"))
        #expect(yaml.contains("url: 'https://lab.example/a/initramfs.cpio.gz'"))
        #expect(yaml.contains("image_arg: '-kernel {kernel} -append \"console=\(MadeUpBoard.console) panic=-1 rdinit=/init\"'"))
        #expect(yaml.contains("pattern: '(?P<test_case_id>KMATRIX-BOOT)-(?P<result>OK)(?= arch=)'\n"))
        #expect(yaml.contains("end: ' arch='\n"))
        #expect(yaml.contains("seconds: 120\n"), "the boot allowance is the target's default bootTimeoutSeconds")
    }

    @Test(.needs(all: [LavaSchema.needed]))
    func aBoardJobFollowsItsLavaSectionAndValidates() throws {
        let (cell, images) = try Self.cell(on: try Self.board(lava: Self.uBoot))
        let yaml = try LavaJob(cell: cell, images: images, artifactBase: "https://lab.example/a").render()
        #expect(yaml.contains("device_type: 'acme-imx6q-board'\n"))
        #expect(yaml.contains("    to: 'tftp'\n") && yaml.contains("      type: 'zimage'\n"))
        #expect(yaml.contains("    method: 'u-boot'\n") && yaml.contains("    commands: 'ramdisk'\n") && yaml.contains("    - '/ #'\n"))
        #expect(yaml.contains("extra_kernel_args: 'console=\(MadeUpBoard.console) panic=-1 rdinit=/init'"))
        let check = try LavaSchema.validate(yaml)
        #expect(check.status == 0, "\(check.output)\n\(yaml)")
    }

    @Test(.needs(all: [LavaSchema.needed]))
    func theValidatorRejectsABrokenJob() throws {
        let (cell, images) = try Self.cell(on: try MadeUpBoard.target())
        let yaml = try LavaJob(cell: cell, images: images).render()
        #expect(try LavaSchema.validate(yaml).status == 0)
        for (broken, why) in [(yaml.replacingOccurrences(of: "    media: tmpfs\n", with: "    media: sdcard\n"), "media"),
                              (yaml.replacingOccurrences(of: "- name: kmatrix-boot", with: "- name: 'kmatrix boot'"), "name"),
                              (yaml.replacingOccurrences(of: "visibility: public", with: "visibility: everyone"), "visibility")] {
            #expect(broken != yaml)
            let check = try LavaSchema.validate(broken)
            #expect(check.status != 0, "a job with a broken \(why) passed LAVA's schema")
            #expect(check.output.contains(why), "\(check.output)")
        }
    }

    @Test func aDiskRootIsRefusedWithItsName() throws {
        let project = try Project.load(root: repositoryRoot, matrixFile: "Matrices/root-devices.json")
        let cell = try #require(project.cells.first { $0.rootDevice.kind == .disk })
        #expect {
            try LavaJob(cell: cell, images: BootImages(kernel: "/nonexistent", disk: "/nonexistent")).render()
        } throws: { error in
            (error as? KmatrixError).map { $0.kind == .badInput && $0.message.contains(cell.id) && $0.message.contains("disk") } ?? false
        }
    }

    /// The default matrix's cells, as `kmatrix lava` prints them from the shared cache:
    /// each job names the files the cell boots (by name and sha256) and passes LAVA's schema.
    static let defaultCells: [Cell] = TestCache.project?.cells ?? []
    static let builtCells = Needs.Item.fixture("the default matrix's built kernels and images (made by kmatrix run)") {
        !defaultCells.isEmpty && defaultCells.allSatisfy { (try? BootImages.forCell($0, workspace: TestCache.shared.workspace)) != nil }
    }

    @Test(.needs(all: [.kmatrixBinary, builtCells, LavaSchema.needed]))
    func theDefaultCellsJobsValidateAgainstLavasSchema() async throws {
        let binary = try #require(TestCache.kmatrixBinary)
        #expect(Self.defaultCells.count == 4)
        for cell in Self.defaultCells {
            let base = "https://lab.example/kmatrix/\(cell.id)"
            let printed = try await TestProcess.run(binary, ["lava", "--project", repositoryRoot, "--cell", cell.id, "--artifact-url", base])
            #expect(printed.status == 0, "\(printed.output)")
            let images = try BootImages.forCell(cell, workspace: TestCache.shared.workspace)
            for path in [images.kernel, images.dtb, images.initrd].compactMap({ $0 }) {
                let sha256 = try SHA256.hex(fileAt: path)
                let expected = "url: '\(base)/\((path as NSString).lastPathComponent)'\n" + String(repeating: " ", count: 8) + "sha256sum: '\(sha256)'"
                #expect(printed.output.contains(expected), "\(cell.id): \(path) is not in the job as \(expected)")
            }
            #expect(printed.output.contains("  machine: '\(cell.target.qemu.machine)'\n"))
            let check = try LavaSchema.validate(printed.output)
            #expect(check.status == 0, "\(cell.id): LAVA's schema rejects the job: \(check.output)\n\(printed.output)")
            print("kmatrix lava --cell \(cell.id): valid LAVA job (\(printed.output.split(separator: "\n").count) lines)")
        }
    }

    @Test(.needs(.kmatrixBinary)) func aBadArtifactURLIsRefused() async throws {
        let binary = try #require(TestCache.kmatrixBinary)
        let printed = try await TestProcess.run(binary, ["lava", "--project", repositoryRoot, "--cell", "x86_64-pc/gcc/tiny/initramfs", "--artifact-url", "lab files"])
        #expect(printed.status == 2 && printed.output.contains("--artifact-url 'lab files' is not a URL"), "\(printed.output)")
    }

    /// lava-run (Debian's lava-dispatcher, which Scripts/test installs) boots one default
    /// cell from the job `kmatrix lava` prints, with a device configuration made from the
    /// job's context as LAVA's qemu device type makes it; the same job with another
    /// machine's `uname -m` in its pattern must not pass.
    static let lavaRunCell = "arm64-virt/gcc/tiny/initramfs"
    static let dispatcherFolder = LavaDispatcher.dispatcherFolder

    /// lava-run's result lines as case: result, and its job log.
    static func lavaRun(_ job: String, in folder: String, name: String) async throws -> (results: [String: String], output: String) {
        let run = try await LavaDispatcher.run(job, in: folder, name: name)
        return (run.results, run.log)
    }

    @Test(.needs(tools: ["lava-run"], all: [.kmatrixBinary, builtCells, LavaSchema.needed, dispatcherFolder]))
    func lavaRunBootsACellAndPassesOnTheMarker() async throws {
        let binary = try #require(TestCache.kmatrixBinary)
        let cell = try #require(Self.defaultCells.first { $0.id == Self.lavaRunCell })
        let arch = try #require(cell.target.userspace.unameMachine)
        let printed = try await TestProcess.run(binary, ["lava", "--project", repositoryRoot, "--cell", cell.id])
        try #require(printed.status == 0, "\(printed.output)")
        let folder = NSTemporaryDirectory() + "kmatrix-lava-run-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }

        let good = try await Self.lavaRun(printed.output, in: folder, name: "good")
        #expect(good.results["kmatrix_boot"] == "pass" && good.results["job"] == "pass", "\(good.results)\n\(good.output.suffix(3000))")
        print("lava-run \(cell.id): \(good.results.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")

        let otherMachine = printed.output.replacingOccurrences(of: "arch=\(arch) ", with: "arch=not-\(arch) ")
        #expect(otherMachine != printed.output)
        let bad = try await Self.lavaRun(otherMachine, in: folder, name: "other-machine")
        #expect(bad.results["kmatrix_boot"] == nil && bad.results["job"] == "fail", "\(bad.results)")
    }
}
