import Foundation
@testable import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

@Suite("Finding what to boot")
struct BootImagesTests {
    let project: Project
    init() throws { project = try Project.load(root: repositoryRoot) }

    func scratch() throws -> String {
        let path = NSTemporaryDirectory() + "kmatrix-images-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func anUnbuiltCellSaysWhatToRun() throws {
        let workspace = Workspace(root: try scratch())
        let cell = try #require(project.cells.first { $0.target.name == "arm-vexpress-a9" })
        #expect {
            try BootImages.forCell(cell, workspace: workspace)
        } throws: { error in
            guard let error = error as? KmatrixError else { return false }
            return error.kind == .hostFailure && error.message.contains("kmatrix build --cell \(cell.id)")
                && error.message.contains("vexpress-v2p-ca9.dtb") && error.message.contains("initramfs.cpio.gz")
        }
    }

    @Test func aBuiltCellIsFoundInItsBuildAndImagesFolders() throws {
        let workspace = Workspace(root: try scratch())
        let cell = try #require(project.cells.first { $0.target.name == "arm-vexpress-a9" })
        let build = workspace.kernelBuild(cell), images = workspace.images(cell)
        for path in ["\(build)/arch/arm/boot/zImage", "\(build)/arch/arm/boot/dts/arm/vexpress-v2p-ca9.dtb", "\(images)/initramfs.cpio.gz"] {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        }
        let found = try BootImages.forCell(cell, workspace: workspace)
        #expect(found.kernel == "\(build)/arch/arm/boot/zImage")
        #expect(found.dtb == "\(build)/arch/arm/boot/dts/arm/vexpress-v2p-ca9.dtb")
        #expect(found.initrd == "\(images)/initramfs.cpio.gz")
        let argv = found.invocation(target: cell.target, rootDevice: cell.rootDevice).command.argv
        #expect(argv.contains("-dtb") && argv.contains("\(images)/initramfs.cpio.gz"))
    }

    /// A TuxMake output directory as TuxMake lays it out: metadata.json, the image, dtbs.tar.xz.
    @Test(.needs(tools: ["tar", "xz"]))
    func tuxMakeOutputNamesTheKernelAndTheDTB() async throws {
        let directory = try scratch()
        let metadata = """
            {"build": {"target_arch": "arm", "targets": ["config", "kernel", "dtbs"]},
             "results": {"status": "PASS", "artifacts": {"kernel": ["zImage"], "dtbs": ["dtbs.tar.xz"], "config": ["config"]}}}
            """
        try metadata.write(toFile: "\(directory)/metadata.json", atomically: true, encoding: .utf8)
        try "kernel".write(toFile: "\(directory)/zImage", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "\(directory)/pack/dtbs/arm", withIntermediateDirectories: true)
        try "the dtb".write(toFile: "\(directory)/pack/dtbs/arm/vexpress-v2p-ca9.dtb", atomically: true, encoding: .utf8)
        try "other".write(toFile: "\(directory)/pack/dtbs/arm/other.dtb", atomically: true, encoding: .utf8)
        let tar = try await ProcessRunner.capture(Command(["tar", "-cJf", "\(directory)/dtbs.tar.xz", "-C", "\(directory)/pack", "dtbs"]))
        #expect(tar.termination.succeeded)

        let target = try #require(project.targets["arm-vexpress-a9"])
        let images = try await BootImages.fromTuxMake(directory, target: target, scratch: "\(directory)/scratch")
        #expect(images.kernel == "\(directory)/zImage")
        let dtb = try #require(images.dtb)
        #expect(try String(contentsOfFile: dtb, encoding: .utf8) == "the dtb")

        // The wrong architecture is bad input, named with the field.
        let arm64 = try #require(project.targets["arm64-virt"])
        await #expect {
            _ = try await BootImages.fromTuxMake(directory, target: arm64, scratch: "\(directory)/scratch2")
        } throws: { error in
            (error as? KmatrixError)?.message.contains("build.target_arch is 'arm'") == true
        }
    }

    @Test func gdbLineLoadsTheKernelsScripts() throws {
        let target = try #require(project.targets["arm64-virt"])
        let attach = GdbAttach(buildDirectory: "/b", target: target, hostArch: "x86_64")
        #expect(attach.command.contains("add-auto-load-safe-path /b"))
        #expect(attach.command.contains("target remote 127.0.0.1:1234"))
        #expect(attach.command.last == "/b/vmlinux")
        #expect(attach.notes.contains { $0.contains("CONFIG_GDB_SCRIPTS") })
    }
}
