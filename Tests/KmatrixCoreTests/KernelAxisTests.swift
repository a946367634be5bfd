import Foundation
import KmatrixCore
import KmatrixTestSupport
import Testing

/// `sources.kernel` as an axis: several kernels by name, picked per cell entry; and each
/// board's own defconfig.
@Suite("Several kernels per matrix, each board's defconfig")
struct KernelAxisTests {
    static var secondKernel: [String: Any] { ["paths": ["/usr/src/linux-source-6.12.tar.xz"], "debianPackage": "linux-source-6.12"] }

    /// The shipped matrix with its one kernel named `6.1` and a second one, `6.12`.
    func twoKernels(_ scratch: ScratchProject, cellKernels: Any? = nil) throws {
        try scratch.editJSON("matrix.json") { matrix in
            var sources = matrix["sources"] as! [String: Any]
            sources["kernel"] = ["6.1": sources["kernel"]!, "6.12": Self.secondKernel]
            matrix["sources"] = sources
            if let cellKernels {
                var cells = matrix["cells"] as! [[String: Any]]
                cells[0]["kernel"] = cellKernels
                matrix["cells"] = cells
            }
        }
    }

    @Test func oneUnnamedKernelKeepsTheCellIds() throws {
        let project = try Project.load(root: repositoryRoot)
        #expect(project.matrix.sources.kernels.map(\.name) == [nil])
        #expect(project.cells.allSatisfy { $0.kernel.scope == "linux" && !$0.id.hasSuffix("6.1") })
    }

    @Test func namedKernelsAreAnAxisEndingTheCellId() throws {
        let scratch = try ScratchProject(); defer { scratch.remove() }
        try twoKernels(scratch)
        let project = try Project.load(root: scratch.root)
        // Numeric order: 6.1 before 6.12.
        #expect(project.matrix.sources.kernels.map(\.name) == ["6.1", "6.12"])
        #expect(project.cells.count == 8)
        #expect(project.cells.filter { $0.target.name == "arm64-virt" }.map(\.id)
                == ["arm64-virt/gcc/tiny/initramfs/6.1", "arm64-virt/gcc/tiny/initramfs/6.12"])
        #expect(Set(project.cells.map(\.kernel.scope)) == ["linux-6.1", "linux-6.12"])
    }

    @Test func aCellEntryPicksOneKernelOrAList() throws {
        let one = try ScratchProject(); defer { one.remove() }
        try twoKernels(one, cellKernels: "6.12")
        #expect(try Project.load(root: one.root).cells.map(\.kernel.name) == Array(repeating: "6.12", count: 4))
        let both = try ScratchProject(); defer { both.remove() }
        try twoKernels(both, cellKernels: ["6.12", "6.1"])
        #expect(try Project.load(root: both.root).cells.count == 8)
    }

    @Test func anUnknownKernelNameIsBadInputNamingTheField() throws {
        let scratch = try ScratchProject(); defer { scratch.remove() }
        try twoKernels(scratch, cellKernels: "6.13")
        let errors = scratch.loadErrors()
        #expect(errors.count == 1)
        #expect(errors.first?.contains("cells[0].kernel: unknown kernel '6.13'") == true && errors.first?.contains("known: 6.1, 6.12") == true, "\(errors)")
    }

    @Test func aKernelNameInAMatrixWithOneUnnamedKernelIsBadInput() throws {
        let scratch = try ScratchProject(); defer { scratch.remove() }
        try scratch.editJSON("matrix.json") { matrix in
            var cells = matrix["cells"] as! [[String: Any]]
            cells[0]["kernel"] = "6.1"
            matrix["cells"] = cells
        }
        #expect(scratch.loadErrors().first?.contains("cells[0].kernel: unknown kernel '6.1'") == true)
    }

    @Test func kernelNamesCannotLeaveTheirFolder() throws {
        for bad in ["../x", ".hidden", "a/b", "a b"] {
            let scratch = try ScratchProject(); defer { scratch.remove() }
            try scratch.editJSON("matrix.json") { matrix in
                var sources = matrix["sources"] as! [String: Any]
                sources["kernel"] = [bad: Self.secondKernel]
                matrix["sources"] = sources
            }
            #expect(scratch.loadErrors().first?.contains("sources.kernel: '\(bad)' is not a valid kernel name") == true, "\(bad)")
        }
    }

    @Test func anUnknownFieldInANamedKernelIsReported() throws {
        let scratch = try ScratchProject(); defer { scratch.remove() }
        try scratch.editJSON("matrix.json") { matrix in
            var sources = matrix["sources"] as! [String: Any]
            sources["kernel"] = ["6.12": ["paths": ["/x.tar.xz"], "sha": "no"]]
            matrix["sources"] = sources
        }
        #expect(scratch.loadErrors().first?.contains("sources.kernel.6.12.sha: unknown field 'sha'") == true, "\(scratch.loadErrors())")
    }

    @Test func everyShippedTargetNamesItsOwnDefconfig() throws {
        let targets = try Project.load(root: repositoryRoot).targets
        #expect(targets.mapValues(\.kernel.defconfig) == [
            "x86_64-pc": "x86_64_defconfig", "arm-vexpress-a9": "vexpress_defconfig",
            "arm64-virt": "defconfig", "riscv64-virt": "defconfig",
            "i386-pc": "i386_defconfig", "arm-virt": "multi_v7_defconfig", "arm-versatilepb": "versatile_defconfig",
            "arm-orangepi-pc": "sunxi_defconfig", "arm-sabrelite": "imx_v6_v7_defconfig", "mipsel-malta": "malta_defconfig",
            "ppc64le-pseries": "ppc64le_defconfig", "s390x-ccw": "defconfig",
        ])
    }

    @Test func aDefconfigThatIsNotAConfigTargetIsBadInput() throws {
        let scratch = try ScratchProject(); defer { scratch.remove() }
        try scratch.edit("Targets/x86_64-pc.json", replacing: "\"x86_64_defconfig\"", with: "\"-f /etc/passwd\"")
        #expect(scratch.loadErrors().first?.contains("Targets/x86_64-pc.json: kernel.defconfig: '-f /etc/passwd' is not a config make target") == true,
                "\(scratch.loadErrors())")
    }

    @Test func theShippedKernelsAndDefconfigMatricesLoad() throws {
        let kernels = try Project.load(root: repositoryRoot, matrixFile: "Matrices/kernels.json")
        #expect(kernels.cells.count == 8)
        #expect(Set(kernels.cells.compactMap(\.kernel.name)) == ["6.1", "6.12"])
        let defconfig = try Project.load(root: repositoryRoot, matrixFile: "Matrices/defconfig.json")
        #expect(defconfig.cells.count == 4)
        #expect(defconfig.cells.allSatisfy { $0.profile.base == "defconfig" })
    }
}
