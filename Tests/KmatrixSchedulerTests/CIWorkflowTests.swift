import Foundation
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// `kmatrix ci github|gitlab`: the job matrices, their limits, the committed examples, and
/// the published schemas (check-jsonschema's vendored GitHub workflow and GitLab CI schemas).
@Suite("CI workflows")
struct CIWorkflowTests {
    static func fakeCells(_ count: Int) -> [String] {
        (1...count).map { "board-\($0)/gcc/tiny/initramfs" }
    }

    /// Validates `text` against one of check-jsonschema's built-in schemas.
    func validate(_ text: String, schema: String) throws {
        let file = NSTemporaryDirectory() + "kmatrix-ci-\(UUID().uuidString).yml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let check = try TestPython.run(TestPython.tool("check-jsonschema"), ["--builtin-schema", schema, file])
        #expect(check.status == 0, "\(schema): \(check.output)\n\(text.prefix(3000))")
    }

    static let checkJsonschema = Needs.Item("check-jsonschema in the test tools' venv (Scripts/test installs it)") {
        FileManager.default.isExecutableFile(atPath: TestPython.tool("check-jsonschema"))
    }

    @Test func githubPutsAtMost256CellsInOneMatrixAndMergesAfterAll() {
        let workflow = CIWorkflow(cells: Self.fakeCells(600)).github
        #expect(workflow.contains("\n  cells-1:\n") && workflow.contains("\n  cells-3:\n") && !workflow.contains("cells-4"))
        let perJob = workflow.components(separatedBy: "\n  cells-").dropFirst().map { $0.components(separatedBy: "          - cell: ").count - 1 }
        #expect(perJob == [256, 256, 88])
        #expect(workflow.contains("needs: [cells-1, cells-2, cells-3]"))
        #expect(workflow.contains("- cell: 'board-600/gcc/tiny/initramfs'\n            result: 'board-600.gcc.tiny.initramfs'"))
        // 256 exactly is still one job.
        #expect(CIWorkflow(cells: Self.fakeCells(256)).github.contains("needs: [cells]"))
    }

    @Test func gitlabPutsAtMost200CellsInOneJobAndAChildPipelineAboveThat() {
        let small = CIWorkflow(cells: Self.fakeCells(200)).gitlab
        #expect(small.contains("\ncells:\n") && !small.contains("trigger:"))
        var big = CIWorkflow(cells: Self.fakeCells(450), projectArguments: ["--matrix", "Matrices/big.json"])
        big.selectedAll = true
        #expect(big.gitlab.contains("trigger:") && big.gitlab.contains("ci gitlab --child --matrix Matrices/big.json > kmatrix-cells.yml"))
        let child = big.gitlabCells
        let perJob = child.components(separatedBy: "\ncells-").dropFirst().map { $0.components(separatedBy: "      - KMATRIX_CELL: ").count - 1 }
        #expect(perJob == [200, 200, 50])
        #expect(child.contains("--matrix Matrices/big.json --cell \"$KMATRIX_CELL\""))
        // A selection is named again for the child, so it holds the same cells.
        let selected = CIWorkflow(cells: Self.fakeCells(201)).gitlab
        #expect(selected.contains("--cell board-201/gcc/tiny/initramfs > kmatrix-cells.yml"))
    }

    @Test func resultNamesAreDistinctAndHoldNoSlash() {
        let names = ["a/b-c/d", "a-b/c/d", "a_b/c/d", "a/b_c/d"].map(CIWorkflow.resultName)
        #expect(Set(names).count == 4)
        #expect(!names.contains { $0.contains("/") })
    }

    @Test(.needs(all: [checkJsonschema]))
    func splitWorkflowsValidateAgainstThePublishedSchemas() throws {
        try validate(CIWorkflow(cells: Self.fakeCells(300), runner: "kernel-lab").github, schema: "vendor.github-workflows")
        let big = CIWorkflow(cells: Self.fakeCells(450), runner: "kvm")
        try validate(big.gitlab, schema: "vendor.gitlab-ci")
        try validate(big.gitlabCells, schema: "vendor.gitlab-ci")
    }

    @Test(.needs(all: [.kmatrixBinary, checkJsonschema]))
    func theCommittedExamplesAreWhatTheCommandPrintsAndValidate() throws {
        for (system, file, schema) in [("github", "ci/github-workflow.yml", "vendor.github-workflows"),
                                       ("gitlab", "ci/gitlab-ci.yml", "vendor.gitlab-ci")] {
            let printed = try TestPython.run(try #require(TestCache.kmatrixBinary), ["ci", system, "--project", repositoryRoot])
            #expect(printed.status == 0, "\(printed.output)")
            let committed = try String(contentsOfFile: "\(repositoryRoot)/\(file)", encoding: .utf8)
            #expect(printed.output == committed, "\(file) is not what `kmatrix ci \(system)` prints: regenerate it")
            try validate(printed.output, schema: schema)
        }
    }
}
