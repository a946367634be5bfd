import Foundation
import KmatrixCommands
import KmatrixCore
import KmatrixTestSupport
import Testing

private let dtcPath = ["/usr/bin/dtc", "/bin/dtc"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// `check-dtb` with the shared project options: `--target T` names the descriptor, and a
/// board added as one Targets file is checked like a shipped one.
@Suite("check-dtb", .needs(tools: ["dtc"]))
struct CheckDTBCommandTests {
    /// A project with the made-up board's file added, and the board's DTS compiled by dtc.
    func boardProject(dts: String = MadeUpBoard.dts) async throws -> (ScratchProject, String) {
        let project = try ScratchProject()
        try project.write("Targets/acme-imx6q.json", MadeUpBoard.json)
        try project.write("board.dts", dts)
        let dtc = try await TestProcess.run(try #require(dtcPath), ["-q", "-I", "dts", "-O", "dtb", "-o", "\(project.root)/board.dtb", "\(project.root)/board.dts"])
        #expect(dtc.status == 0, "dtc: \(dtc.output)")
        return (project, "\(project.root)/board.dtb")
    }

    @Test func targetOptionPicksTheDescriptor() async throws {
        let (project, dtb) = try await boardProject()
        defer { project.remove() }
        #expect(await KmatrixMain.run(["check-dtb", dtb, "--project", project.root, "--target", "acme-imx6q", "--json"]) == 0)
        // Another target's root compatible: the check fails (exit 1), it is not bad input.
        #expect(await KmatrixMain.run(["check-dtb", dtb, "--project", project.root, "--target", "arm-vexpress-a9"]) == 1)
    }

    @Test func selectionsOtherThanOneTargetAreBadInput() async throws {
        let (project, dtb) = try await boardProject()
        defer { project.remove() }
        #expect(await KmatrixMain.run(["check-dtb", dtb, "--project", project.root, "--target", "sparc"]) == 2)
        #expect(await KmatrixMain.run(["check-dtb", dtb, "--project", project.root, "--target", "acme-imx6q", "--target", "arm64-virt"]) == 2)
        #expect(await KmatrixMain.run(["check-dtb", dtb, "--project", project.root, "--cell", "x86_64-pc/gcc/tiny/initramfs"]) == 2)
    }
}
