import Foundation
import KmatrixCommands
import KmatrixCore
import KmatrixTestSupport
import Testing

/// `kmatrix init` on a made-up kernel tree: the files kbuild has at its top, no source.
@Suite("kmatrix init")
struct InitCommandTests {
    func makeTree() throws -> String {
        let tree = NSTemporaryDirectory() + "kmatrix-tree-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: "\(tree)/arch/riscv", withIntermediateDirectories: true)
        for file in ["Makefile", "Kconfig"] {
            try "# made up\n".write(toFile: "\(tree)/\(file)", atomically: true, encoding: .utf8)
        }
        return tree
    }

    @Test func picksTheTargetsWhoseCompilerIsInstalled() throws {
        let shipped = try Project.load(root: repositoryRoot, dataDirectory: repositoryRoot)
        var asked: [String] = []
        let plan = try KernelTreeMatrix.pick(shipped) { compiler in
            asked.append(compiler)
            return ["aarch64-linux-gnu-gcc", "riscv64-linux-gnu-gcc"].contains(compiler)
        }
        #expect(plan.targets == ["arm64-virt", "riscv64-virt"])
        #expect(plan.toolchain == "gcc")
        // Each compiler name comes from Toolchains/gcc.json's crossCompile for the target's ABI.
        #expect(asked.sorted() == ["aarch64-linux-gnu-gcc", "arm-linux-gnueabihf-gcc", "riscv64-linux-gnu-gcc", "x86_64-linux-gnu-gcc"])
        let armhf = try #require(plan.skipped.first { $0.target == "arm-vexpress-a9" })
        #expect(armhf.reason == "arm-linux-gnueabihf-gcc is not installed")
        #expect(armhf.packages.contains("gcc-arm-linux-gnueabihf"))
    }

    @Test func theWrittenMatrixBuildsTheTree() throws {
        let tree = try makeTree(); defer { try? FileManager.default.removeItem(atPath: tree) }
        let shipped = try Project.load(root: repositoryRoot, dataDirectory: repositoryRoot)
        let plan = try KernelTreeMatrix.pick(shipped) { $0 == "riscv64-linux-gnu-gcc" }
        try KernelTreeMatrix.checkTree(tree, file: "kmatrix.json", matrixNames: ["matrix.json", "kmatrix.json"])
        try plan.render(shippedMatrix: "\(repositoryRoot)/matrix.json", tree: tree).write(to: URL(fileURLWithPath: "\(tree)/kmatrix.json"))
        let project = try Project.load(root: tree, matrixFile: "\(tree)/kmatrix.json", dataDirectory: repositoryRoot)
        #expect(project.cells.map(\.id) == ["riscv64-virt/gcc/tiny/initramfs"])
        #expect(project.matrix.sources.kernel.paths == [tree])
        // The guest test scripts are the shipped ones, named where they are.
        #expect(project.cells[0].tests.flatMap(\.suite.scripts).allSatisfy { $0.hasPrefix("\(repositoryRoot)/guest-tests/") })
        #expect(project.matrix.sources.busybox == shipped.matrix.sources.busybox)
    }

    @Test(.needs(tools: ["x86_64-linux-gnu-gcc"])) func initWritesKmatrixJSONAndRefusesToOverwrite() async throws {
        let tree = try makeTree(); defer { try? FileManager.default.removeItem(atPath: tree) }
        #expect(await KmatrixMain.run(["init", tree]) == 0)
        let written = try String(contentsOfFile: "\(tree)/kmatrix.json", encoding: .utf8)
        #expect(written.contains("\"paths\" : [\n        \"\(tree)\""))
        #expect(await KmatrixMain.run(["init", tree]) == 2)
        #expect(try String(contentsOfFile: "\(tree)/kmatrix.json", encoding: .utf8) == written)
        #expect(await KmatrixMain.run(["init", tree, "--file", "matrix.json"]) == 2)
        #expect(!FileManager.default.fileExists(atPath: "\(tree)/matrix.json"))
        #expect(await KmatrixMain.run(["init", tree, "--file", "other.json"]) == 2)
    }

    @Test func refusesATreeConfiguredInPlace() throws {
        let tree = try makeTree(); defer { try? FileManager.default.removeItem(atPath: tree) }
        try "CONFIG_X=y\n".write(toFile: "\(tree)/.config", atomically: true, encoding: .utf8)
        #expect { try KernelTreeMatrix.checkTree(tree, file: "kmatrix.json", matrixNames: ["matrix.json"]) } throws: { error in
            (error as? KmatrixError)?.kind == .badInput && "\(error)".contains("make mrproper")
        }
    }

    @Test func refusesAFolderThatIsNoKernelTree() throws {
        let tree = try makeTree(); defer { try? FileManager.default.removeItem(atPath: tree) }
        try FileManager.default.removeItem(atPath: "\(tree)/Kconfig")
        try FileManager.default.removeItem(atPath: "\(tree)/arch")
        #expect { try KernelTreeMatrix.checkTree(tree, file: "kmatrix.json", matrixNames: ["matrix.json"]) } throws: { error in
            "\(error)".contains("it has no Kconfig, arch/")
        }
    }
}
