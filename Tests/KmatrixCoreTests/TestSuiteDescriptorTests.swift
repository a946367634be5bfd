import Foundation
import KmatrixCore
import KmatrixTestSupport
import Testing

/// matrix.json's `tests`: suites decoded strictly, named by profiles and cell entries.
@Suite("Test suites in the matrix")
struct TestSuiteDescriptorTests {
    func expectError(_ project: ScratchProject, field: String, _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        BadInputTests().expectError(project, file: "matrix.json", field: field, words, sourceLocation: sourceLocation)
    }

    @Test func shippedCellsRunKUnitAndShellSuites() throws {
        let project = try Project.load(root: repositoryRoot)
        for cell in project.cells {
            #expect(cell.tests.map(\.name) == ["kunit-basic", "shell-basic"])
            #expect(cell.hasGuestScripts)
            #expect(cell.tests[1].scriptNames == ["cpuinfo.sh", "tmpfs.sh", "pipeline.sh"])
            #expect(cell.tests[1].scriptPaths.allSatisfy { $0.hasPrefix("\(repositoryRoot)/guest-tests/") })
        }
        #expect(project.matrix.tests["kunit-basic"]?.kunit.contains(KernelOption(name: "CONFIG_KUNIT", value: "y")) == true)
    }

    @Test func unknownSuiteNamedByACellEntry() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.editJSON("matrix.json") { matrix in
            var cells = matrix["cells"] as! [[String: Any]]
            cells[0]["tests"] = ["shell-basics"]
            matrix["cells"] = cells
        }
        expectError(p, field: "cells[0].tests", ["unknown test suite 'shell-basics'", "did you mean 'shell-basic'?"])
    }

    @Test func unknownSuiteNamedByAProfile() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "\"tests\": [\"kunit-basic\", \"shell-basic\"]", with: "\"tests\": [\"kunit\"]")
        expectError(p, field: "profiles.tiny.tests", ["unknown test suite 'kunit'"])
    }

    @Test func unknownFieldOfASuite() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "\"timeoutSeconds\": 30", with: "\"timeout\": 30")
        expectError(p, field: "tests.shell-basic.timeout", ["unknown field 'timeout'", "timeoutSeconds"])
    }

    @Test func missingScript() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "guest-tests/tmpfs.sh", with: "guest-tests/nope.sh")
        expectError(p, field: "tests.shell-basic.scripts[1]", ["script 'guest-tests/nope.sh' does not exist"])
    }

    @Test func emptySuiteAndBadKUnitOption() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.editJSON("matrix.json") { matrix in
            var tests = matrix["tests"] as! [String: Any]
            tests["empty"] = [String: Any]()
            matrix["tests"] = tests
        }
        expectError(p, field: "tests.empty", ["needs 'kunit' options or 'scripts'"])
        let q = try ScratchProject(); defer { q.remove() }
        try q.edit("matrix.json", replacing: "\"CONFIG_KUNIT=y\"", with: "\"KUNIT=y\"")
        expectError(q, field: "tests.kunit-basic.kunit", ["KUNIT"])
    }
}
