import Foundation
import KmatrixCommands
import KmatrixCore
import KmatrixTestSupport
import Testing

@Suite("Command line exit statuses")
struct CommandLineTests {
    @Test func badDescriptorExitsTwo() async throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/arm64-virt.json", replacing: "\"machine\": \"virt\"", with: "\"machin\": \"virt\"")
        #expect(await KmatrixMain.run(["list", "--project", p.root]) == 2)
    }

    @Test func unknownSelectionExitsTwo() async throws {
        #expect(await KmatrixMain.run(["plan", "--project", repositoryRoot, "--target", "sparc"]) == 2)
        #expect(await KmatrixMain.run(["list", "--project", repositoryRoot, "--cell", "x86_64-pc/gcc/tiny/sd"]) == 2)
    }

    @Test func unknownFlagExitsTwo() async {
        #expect(await KmatrixMain.run(["list", "--no-such-flag"]) == 2)
    }

    @Test func selectionByTargetAndToolchain() throws {
        let project = try Project.load(root: repositoryRoot)
        #expect(try project.select(targets: ["arm64-virt"]).map(\.id) == ["arm64-virt/gcc/tiny/initramfs"])
        #expect(try project.select(toolchains: ["gcc"]).count == 4)
        #expect(throws: KmatrixError.self) { try project.select(toolchains: ["llvm"]) }
    }
}
