import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixKernel

struct BuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Configure, verify and build the kernel of every selected cell, one cell after another.",
        discussion: """
            Each cell's config is checked option by option against what the descriptors ask \
            for; a cell whose config lost an option fails as config-dropped-options and is not \
            compiled. Artifacts (image, vmlinux, System.map, config, DTBs, modules, logs and \
            kernel.json) go to <cache>/artifacts/<cell>/kernel, or <output>/<cell> with --output.
            """)

    @OptionGroup var options: ProjectOptions
    @Option(help: "make -j value (default: the number of cores).") var jobs: Int?
    @Option(help: "Folder for the artifacts, one subfolder per cell (default: <cache>/artifacts/<cell>/kernel).")
    var output: String?

    func run() async throws {
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        let workspace = options.workspace
        let jobs = self.jobs ?? ProcessInfo.processInfo.activeProcessorCount
        guard jobs > 0 else { throw KmatrixError.badInput("--jobs \(jobs): must be at least 1") }
        let source = try SourceResolver.resolve(project.matrix.sources.kernel, what: "kernel", workspace: workspace, file: project.matrix.file)
        if source.kind == .tarball, !SourceTree.isComplete(workspace.unpacked("linux", sha256: source.sha256)) {
            say("unpacking \(source.path) into \(workspace.unpacked("linux", sha256: source.sha256)) (once, for every cell)")
        }
        let tree = try await SourceTree.prepare(source, workspace: workspace)
        let ccache = ProcessRunner.which("ccache")

        var rows: [[String]] = []
        var exitCode: Int32 = 0
        for cell in cells {
            let outputDirectory = output.map { "\(absolutePath($0, relativeTo: FileManager.default.currentDirectoryPath))/\(cell.id)" }
                ?? "\(workspace.root)/artifacts/\(cell.id)/kernel"
            say("== \(cell.id)")
            let plan = KernelPlan(cell: cell, sourceTree: tree, buildDirectory: workspace.kernelBuild(cell), jobs: jobs, ccache: ccache)
            let record: KernelBuildRecord
            do {
                record = try await Self.build(plan, project: project, source: source, outputDirectory: outputDirectory)
            } catch {
                // One cell's missing compiler must not hide what the other cells do.
                guard error.kind == .hostFailure else { throw error }
                say("  host failure: \(error.description)")
                rows.append([cell.id, "host-failure", "-", "-", "-"])
                exitCode = 3
                continue
            }
            let passed = record.succeeded || record.failure?.kind.rawValue == cell.expect?.rawValue
            if !passed { exitCode = max(exitCode, 1) }
            if let failure = record.failure {
                say(failure.description.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
                if passed { say("  (expected: the matrix marks this cell '\(cell.expect?.rawValue ?? "")')") }
            } else {
                say("  built in \(String(format: "%.0f", record.buildSeconds)) s (CPU \(String(format: "%.0f", record.buildCPUSeconds)) s), image \(record.imageBytes.map(byteCount) ?? "?"), \(record.warnings) warning(s)")
            }
            say("  artifacts: \(outputDirectory)")
            rows.append([cell.id, record.succeeded ? "built" : (record.failure?.kind.rawValue ?? "failed") + (passed ? " (expected)" : ""),
                         record.succeeded ? String(format: "%.0f s", record.buildSeconds) : "-",
                         record.imageBytes.map(byteCount) ?? "-", outputDirectory])
        }
        say()
        say(table(["cell", "result", "build", "image", "artifacts"], rows))
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    /// Configure, verify, build one cell: the two steps the scheduler runs separately.
    static func build(_ plan: KernelPlan, project: Project, source: ResolvedSource, outputDirectory: String) async throws(KmatrixError) -> KernelBuildRecord {
        let inputs = try await KernelConfigInputs.resolve(cell: plan.cell, project: project, source: source)
        say("  config: \(inputs.base) + \(inputs.requested.count) options, \(inputs.toolchain.compiler) \(inputs.toolchain.version)")
        let configuration = try await KernelBuild.configure(plan, inputs: inputs)
        if configuration.succeeded {
            say("  config verified: all \(configuration.requestedCount) requested options present (\(String(format: "%.1f", configuration.seconds)) s)")
            say("  building with make\(plan.jobs.map { " -j\($0)" } ?? "")\(plan.ccache != nil ? " and ccache" : ""), log \(plan.buildDirectory)/build.log")
        }
        return try await KernelBuild.build(plan, inputs: KernelBuildInputs(config: inputs, configuration: configuration, target: plan.cell.target),
                                           configuration: configuration, source: source, outputDirectory: outputDirectory)
    }
}

/// Prints a line now, also when stdout is a file or a pipe: a build runs for minutes.
private func say(_ line: String = "") {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

private func byteCount(_ bytes: UInt64) -> String {
    bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1048576) : String(format: "%.0f KiB", Double(bytes) / 1024)
}
