import Foundation
import KmatrixCore
import KmatrixKernel
import KmatrixTestSupport
import Testing

/// A KUnit suite's options join the cell's requested options, so they are merged and
/// verified (and dropped ones reported) like every other.
@Suite("KUnit suites in the kernel config")
struct KUnitOptionsTests {
    @Test func kunitOptionsAreRequestedWithTheirSuiteAsOrigin() throws {
        let project = try Project.load(root: repositoryRoot)
        let cell = try #require(project.cells.first { $0.target.name == "arm64-virt" })
        let source = ResolvedSource(kind: .tarball, path: "/usr/src/linux.tar.xz", sha256: String(repeating: "a", count: 64), bytes: 1)
        let gcc = ToolchainIdentity(name: "gcc", compiler: "aarch64-linux-gnu-gcc", version: "12.2.0")
        let inputs = try KernelConfigInputs.assemble(cell: cell, project: project, source: source, toolchain: gcc)
        let kunit = try #require(inputs.requested.first { $0.option.name == "CONFIG_LIST_KUNIT_TEST" })
        #expect(kunit.origin == "test suite kunit-basic (matrix.json)")
        #expect(inputs.fragmentText.contains("\nCONFIG_KUNIT=y\n"))

        var without = cell
        without.tests = []
        let plain = try KernelConfigInputs.assemble(cell: without, project: project, source: source, toolchain: gcc)
        #expect(!plain.requested.contains { $0.option.name.contains("KUNIT") })
        #expect(plain.fingerprint != inputs.fingerprint)
    }
}
