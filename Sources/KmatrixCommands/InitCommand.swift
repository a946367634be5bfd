import ArgumentParser
import Foundation
import KmatrixCore

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a matrix at the top of a kernel tree that builds and boots that tree.",
        discussion: """
            Writes kmatrix.json (--file matrix.json for the other name) in DIR (default: the \
            current folder), which must hold the kernel's Makefile, Kconfig and arch/ and must \
            not be configured in place. The kernel source is DIR itself; busybox, the profiles \
            and the tests are the shipped matrix's; the cells are the shipped targets whose \
            cross compiler is installed. Nothing is asked and nothing is overwritten; the next \
            `kmatrix run` in DIR builds and boots those cells.
            """)

    @Argument(help: "The kernel tree (default: the current folder).")
    var tree: String = "."

    @Option(help: "The file to write: kmatrix.json or matrix.json.")
    var file: String = "kmatrix.json"

    func run() async throws {
        guard ProjectOptions.matrixNames.contains(file) else {
            throw KmatrixError.badInput("--file \(file): kmatrix looks for \(ProjectOptions.matrixNames.joined(separator: " or ")) in a project folder; use one of those")
        }
        let tree = absolutePath(self.tree, relativeTo: FileManager.default.currentDirectoryPath)
        try KernelTreeMatrix.checkTree(tree, file: file, matrixNames: ProjectOptions.matrixNames)
        guard let data = try DataDirectory.locate() else {
            throw KmatrixError.host("the shipped descriptors are not found: set \(DataDirectory.environmentVariable) to the folder holding Targets/, Toolchains/ and matrix.json")
        }
        let shipped = try Project.load(root: data, dataDirectory: data)
        let plan = try KernelTreeMatrix.pick(shipped) { ProcessRunner.which($0) != nil }
        guard !plan.targets.isEmpty else {
            let packages = Array(Set(plan.skipped.flatMap(\.packages))).sorted()
            throw KmatrixError.host("no cross compiler of a shipped target is installed (\(plan.skipped.map { "\($0.target): \($0.reason)" }.joined(separator: "; "))); apt-get install \(packages.joined(separator: " "))")
        }
        let path = (tree as NSString).appendingPathComponent(file)
        let text = try plan.render(shippedMatrix: (data as NSString).appendingPathComponent(shipped.matrix.file), tree: tree)
        // O_EXCL: a file that appeared since the check is not overwritten either.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            if errno == EEXIST { throw KmatrixError.badInput("\(path) exists; kmatrix init does not overwrite it") }
            throw KmatrixError.host("cannot write \(path): \(reason)")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try handle.write(contentsOf: text)
        try handle.close()
        // What was written must load: the same check every command makes.
        let project = try Project.load(root: tree, matrixFile: path, dataDirectory: data)
        print("wrote \(path): kernel source \(tree), \(project.cells.count) cell\(project.cells.count == 1 ? "" : "s"):")
        for cell in project.cells { print("  \(cell.id)") }
        for skipped in plan.skipped {
            print("left out \(skipped.target): \(skipped.reason)" + (skipped.packages.isEmpty ? "" : " (apt-get install \(skipped.packages.joined(separator: " ")))"))
        }
        print("next: kmatrix run (in \(tree))")
    }
}
