import Foundation
import KmatrixCore
import KmatrixTestSupport
import Testing

@Suite("Shipped descriptors")
struct ShippedDescriptorTests {
    @Test func everyShippedDescriptorDecodes() throws {
        let project = try Project.load(root: repositoryRoot)
        #expect(project.targets.keys.sorted() == [
            "arm-orangepi-pc", "arm-sabrelite", "arm-versatilepb", "arm-vexpress-a9", "arm-virt", "arm64-virt", "i386-pc",
            "mipsel-malta", "ppc64le-pseries", "riscv64-virt", "s390x-ccw", "x86_64-pc",
        ])
        #expect(project.toolchains.keys.sorted() == ["gcc", "llvm"])
        #expect(project.cells.map(\.id) == [
            "x86_64-pc/gcc/tiny/initramfs", "arm-vexpress-a9/gcc/tiny/initramfs",
            "arm64-virt/gcc/tiny/initramfs", "riscv64-virt/gcc/tiny/initramfs",
        ])
    }

    @Test func theBoardsMatrixHasEveryShippedTarget() throws {
        // Matrices/boards.json is docs/boards.md's run: every board, one tiny cell each.
        let project = try Project.load(root: repositoryRoot, matrixFile: "\(repositoryRoot)/Matrices/boards.json")
        #expect(Set(project.cells.map(\.target.name)) == Set(project.targets.keys))
        #expect(Set(project.cells.map(\.target.kernel.arch)).count >= 7)
        for cell in project.cells {
            // Each board's busybox ABI is one the gcc toolchain builds.
            #expect(cell.toolchain.architectures[cell.target.userspace.debianArch] != nil, "\(cell.id)")
        }
    }

    @Test func targetsCarryTheFieldNotesRecipes() throws {
        let targets = try Project.load(root: repositoryRoot).targets
        let x86 = try #require(targets["x86_64-pc"])
        #expect(x86.kernel.image.paths == ["arch/x86/boot/bzImage"])
        #expect(x86.console.device == "ttyS0")
        #expect(x86.console.node == ConsoleNode(major: 4, minor: 64))
        #expect(x86.console.deviceTree)
        #expect(!x86.qemu.replacesDTBMemory)
        #expect(x86.deviceTree.source == .none)

        let vexpress = try #require(targets["arm-vexpress-a9"])
        #expect(vexpress.kernel.arch == "arm")
        #expect(vexpress.kernel.image.target == "zImage")
        #expect(vexpress.kernel.dtbs.first?.paths == ["arch/arm/boot/dts/vexpress-v2p-ca9.dtb", "arch/arm/boot/dts/arm/vexpress-v2p-ca9.dtb"])
        #expect(vexpress.deviceTree.rootCompatible == "arm,vexpress,v2p-ca9")
        #expect(vexpress.console.device == "ttyAMA0")
        #expect(vexpress.console.node == ConsoleNode(major: 204, minor: 64))
        #expect(vexpress.qemu.replacesDTBMemory)
        #expect(vexpress.rootDevices["sd"]?.device == "/dev/mmcblk0")
        // The clock drivers without which the SP804 timers hang the boot.
        #expect(vexpress.kernel.options.contains(KernelOption(name: "CONFIG_CLK_SP810", value: "y")))
        #expect(vexpress.userspace.kernelOptions.contains(KernelOption(name: "CONFIG_VFP", value: "y")))

        let arm64 = try #require(targets["arm64-virt"])
        #expect(arm64.deviceTree.source == .qemu)
        #expect(arm64.qemu.cpu == "cortex-a57")
        #expect(arm64.console.node == ConsoleNode(major: 204, minor: 64))
        #expect(arm64.qemu.replacesDTBMemory)
        #expect(arm64.rootDevices["virtio"]?.device == "/dev/vda")

        let riscv = try #require(targets["riscv64-virt"])
        #expect(riscv.qemu.firmware?.args == ["-bios", "default"])
        #expect(riscv.console.node == ConsoleNode(major: 4, minor: 64))
        #expect(!riscv.qemu.replacesDTBMemory, "QEMU passes riscv's generated DTB as it is")
        #expect(riscv.userspace.kernelOptions.contains(KernelOption(name: "CONFIG_FPU", value: "y")))
    }

    @Test func toolchainsNameTheirCompilers() throws {
        let toolchains = try Project.load(root: repositoryRoot).toolchains
        let gcc = try #require(toolchains["gcc"])
        #expect(gcc.architectures["armhf"]?.crossCompile == "arm-linux-gnueabihf-")
        #expect(gcc.compilerPath(for: gcc.architectures["riscv64"]!) == "riscv64-linux-gnu-gcc")
        // Every architecture gcc builds userspace for names the static libc it links.
        #expect(gcc.architectures["amd64"]?.libcPackage == "libc6-dev")
        #expect(gcc.architectures["armhf"]?.libcPackage == "libc6-dev-armhf-cross")
        #expect(gcc.architectures.values.allSatisfy { $0.libcPackage.map($0.packages.contains) == true })
        let llvm = try #require(toolchains["llvm"])
        #expect(llvm.makeVariables["LLVM"] == "/usr/lib/llvm-14/bin/")
        #expect(llvm.userspaceToolchain == "gcc")
        #expect(llvm.architectures.values.allSatisfy { $0.libcPackage == nil }, "gcc builds llvm cells' userspace")
    }
}

@Suite("Bad input names the file and the field")
struct BadInputTests {
    /// Loads the broken project and checks one message names `file`, `field` and `words`.
    func expectError(_ project: ScratchProject, file: String, field: String, _ words: [String],
                     sourceLocation: SourceLocation = #_sourceLocation) {
        let errors = project.loadErrors()
        let match = errors.first { $0.hasPrefix(file) && (field.isEmpty || $0.contains(field)) && words.allSatisfy($0.contains) }
        #expect(match != nil, "no error names \(file), \(field) and \(words); got: \(errors)", sourceLocation: sourceLocation)
    }

    @Test func misspelledField() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/arm64-virt.json", replacing: "\"machine\": \"virt\"", with: "\"machin\": \"virt\"")
        expectError(p, file: "Targets/arm64-virt.json", field: "qemu.machin", ["unknown field 'machin'", "did you mean 'machine'?"])
    }

    @Test func unknownTopLevelField() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.editJSON("matrix.json") { $0["cellz"] = [] }
        expectError(p, file: "matrix.json", field: "cellz", ["unknown field", "did you mean 'cells'?"])
    }

    @Test func wrongType() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/x86_64-pc.json", replacing: "\"memoryMiB\": 256", with: "\"memoryMiB\": \"256\"")
        expectError(p, file: "Targets/x86_64-pc.json", field: "qemu.memoryMiB", ["wrong type", "integer"])
    }

    @Test func missingRequiredField() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/riscv64-virt.json", replacing: "\"binary\": \"qemu-system-riscv64\",", with: "")
        expectError(p, file: "Targets/riscv64-virt.json", field: "qemu.binary", ["required field is missing"])
    }

    @Test func invalidJSON() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Toolchains/gcc.json", replacing: "\"name\": \"gcc\",", with: "\"name\": \"gcc\",,")
        expectError(p, file: "Toolchains/gcc.json", field: "", ["not valid JSON", "at line 3, column 17"])
    }

    @Test func unknownTargetInCell() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "\"arm64-virt\", \"riscv64-virt\"", with: "\"arm64-vert\", \"riscv64-virt\"")
        expectError(p, file: "matrix.json", field: "cells[0].target", ["unknown target 'arm64-vert'", "did you mean 'arm64-virt'?", "x86_64-pc"])
    }

    @Test func unknownToolchainInCell() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "\"toolchain\": \"gcc\"", with: "\"toolchain\": \"icc\"")
        expectError(p, file: "matrix.json", field: "cells[0].toolchain", ["unknown toolchain 'icc'", "gcc, llvm"])
    }

    @Test func unknownProfile() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "\"profile\": \"tiny\"", with: "\"profile\": \"huge\"")
        expectError(p, file: "matrix.json", field: "cells[0].profile", ["unknown profile 'huge'", "tiny"])
    }

    @Test func rootDeviceTheTargetLacks() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "\"rootfs\": \"initramfs\"", with: "\"rootfs\": \"sd\"")
        expectError(p, file: "matrix.json", field: "cells[0].rootfs", ["root device of target x86_64-pc", "initramfs, ramdisk, virtio"])
    }

    @Test func missingFragmentFile() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.editJSON("matrix.json") { matrix in
            var profiles = matrix["profiles"] as! [String: Any]
            var tiny = profiles["tiny"] as! [String: Any]
            tiny["fragments"] = ["Fragments/absent.config"]
            profiles["tiny"] = tiny
            matrix["profiles"] = profiles
        }
        expectError(p, file: "matrix.json", field: "profiles.tiny.fragments[0]", ["fragment file 'Fragments/absent.config' does not exist"])
    }

    @Test func malformedKernelOption() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/arm64-virt.json", replacing: "\"CONFIG_SERIAL_AMBA_PL011_CONSOLE=y\"", with: "\"SERIAL_AMBA_PL011_CONSOLE\"")
        expectError(p, file: "Targets/arm64-virt.json", field: "kernel.options[1]", ["bad kernel option", "CONFIG_NAME=value"])
    }

    @Test func malformedFragmentLine() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try FileManager.default.createDirectory(atPath: "\(p.root)/Fragments", withIntermediateDirectories: true)
        try p.write("Fragments/extra.config", "CONFIG_PRINTK=y\nCONFIG_BAD VALUE\n")
        try p.editJSON("matrix.json") { $0["fragments"] = ["Fragments/extra.config"] }
        expectError(p, file: "\(p.root)/Fragments/extra.config:2", field: "fragments[0]", ["bad kernel option"])
    }

    @Test func badSha256() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.editJSON("matrix.json") { matrix in
            var sources = matrix["sources"] as! [String: Any]
            var busybox = sources["busybox"] as! [String: Any]
            busybox["sha256"] = "abc"
            sources["busybox"] = busybox
            matrix["sources"] = sources
        }
        expectError(p, file: "matrix.json", field: "sources.busybox.sha256", ["not a sha256"])
    }

    @Test func unknownBusyboxBase() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.editJSON("matrix.json") { $0["busybox"] = ["base": "tinyconfig", "options": ["CONFIG_ASH=y"]] }
        expectError(p, file: "matrix.json", field: "busybox.base", ["'tinyconfig' is not a busybox base", "defconfig, allnoconfig"])
    }

    /// The shipped minimal-busybox matrix loads, starts from allnoconfig and names ash.
    @Test func minimalBusyboxMatrixLoads() throws {
        let project = try Project.load(root: repositoryRoot, matrixFile: "\(repositoryRoot)/Matrices/busybox-minimal.json")
        #expect(project.matrix.busybox.base == "allnoconfig")
        #expect(project.matrix.busybox.options.contains("CONFIG_ASH=y"))
        #expect(try Project.load(root: repositoryRoot).matrix.busybox == BusyboxSpec())
    }

    @Test func unknownEnumValue() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/arm64-virt.json", replacing: "\"source\": \"qemu\"", with: "\"source\": \"firmware\"")
        expectError(p, file: "Targets/arm64-virt.json", field: "deviceTree.source", ["'firmware' is not a device tree source", "none, build, qemu"])
    }

    @Test func toolchainWithoutTheArchitecture() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.editJSON("Toolchains/gcc.json") { toolchain in
            var architectures = toolchain["architectures"] as! [String: Any]
            architectures["riscv64"] = nil
            toolchain["architectures"] = architectures
        }
        expectError(p, file: "matrix.json", field: "cells[0].toolchain", ["cannot build for riscv64", "riscv64-virt"])
    }

    @Test func duplicateTargetName() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.write("Targets/copy.json", try p.read("Targets/arm64-virt.json"))
        expectError(p, file: "Targets/copy.json", field: "name", ["'arm64-virt' is also the name of Targets/arm64-virt.json"])
    }

    @Test func diskRootWithoutAttachment() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/arm-vexpress-a9.json", replacing: "\"qemuArgs\": [\"-drive\", \"file={disk},if=sd,format=raw\"],", with: "")
        expectError(p, file: "Targets/arm-vexpress-a9.json", field: "rootDevices.sd.qemuArgs", ["attach '{disk}'"])
    }

    @Test func libcPackageProblems() throws {
        let vexpressLibc = "\"libcPackage\": \"libc6-dev-armhf-cross\""
        let wrongType = try ScratchProject(); defer { wrongType.remove() }
        try wrongType.edit("Toolchains/gcc.json", replacing: vexpressLibc, with: "\"libcPackage\": [\"libc6-dev-armhf-cross\"]")
        expectError(wrongType, file: "Toolchains/gcc.json", field: "architectures.armhf.libcPackage", ["wrong type", "a string"])
        let badName = try ScratchProject(); defer { badName.remove() }
        try badName.edit("Toolchains/gcc.json", replacing: vexpressLibc, with: "\"libcPackage\": \"libc6 dev\"")
        expectError(badName, file: "Toolchains/gcc.json", field: "architectures.armhf.libcPackage", ["'libc6 dev' is not a Debian package name"])
        let notInstalled = try ScratchProject(); defer { notInstalled.remove() }
        try notInstalled.edit("Toolchains/gcc.json", replacing: vexpressLibc, with: "\"libcPackage\": \"libc6-dev-armel-cross\"")
        expectError(notInstalled, file: "Toolchains/gcc.json", field: "architectures.armhf.libcPackage", ["is not in packages"])
    }

    @Test func consoleNodeProblems() throws {
        let file = "Targets/arm-vexpress-a9.json"
        let node = "\"node\": { \"major\": 204, \"minor\": 64 }"
        let cases: [(String, String, [String])] = [
            ("\"node\": { \"major\": \"204\", \"minor\": 64 }", "console.node.major", ["wrong type", "an integer"]),
            ("\"node\": { \"major\": 0, \"minor\": 64 }", "console.node.major", ["0 is not a device major"]),
            ("\"node\": { \"major\": 204, \"minor\": -1 }", "console.node.minor", ["-1 is not a device minor"]),
            ("\"node\": { \"major\": 204, \"minr\": 64 }", "console.node.minr", ["unknown field", "did you mean 'minor'?"]),
            ("\"node\": \"204:64\"", "console.node", ["wrong type"]),
            (node + ", \"deviceTree\": \"no\"", "console.deviceTree", ["wrong type", "true or false"]),
        ]
        for (replacement, field, words) in cases {
            let p = try ScratchProject(); defer { p.remove() }
            try p.edit(file, replacing: node, with: replacement)
            expectError(p, file: file, field: field, words)
        }
    }

    @Test func replacesDTBMemoryProblems() throws {
        let wrongType = try ScratchProject(); defer { wrongType.remove() }
        try wrongType.edit("Targets/arm64-virt.json", replacing: "\"replacesDTBMemory\": true", with: "\"replacesDTBMemory\": \"yes\"")
        expectError(wrongType, file: "Targets/arm64-virt.json", field: "qemu.replacesDTBMemory", ["wrong type", "true or false"])
        // Without a device tree there is no /memory node for QEMU to replace.
        let noTree = try ScratchProject(); defer { noTree.remove() }
        try noTree.edit("Targets/x86_64-pc.json", replacing: "\"silenceSeconds\": 20", with: "\"silenceSeconds\": 20, \"replacesDTBMemory\": true")
        expectError(noTree, file: "Targets/x86_64-pc.json", field: "qemu.replacesDTBMemory", ["without a device tree"])
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/arm64-virt.json", replacing: "\"machine\": \"virt\"", with: "\"machin\": \"virt\"")
        try p.edit("Targets/x86_64-pc.json", replacing: "\"memoryMiB\": 256", with: "\"memoryMiB\": \"256\"")
        #expect(p.loadErrors().count >= 2)
    }
}

@Suite("Kernel option syntax")
struct KernelOptionTests {
    @Test func parsesEveryForm() throws {
        #expect(try KernelOption.parseLine("CONFIG_A=y") == KernelOption(name: "CONFIG_A", value: "y"))
        #expect(try KernelOption.parseLine("CONFIG_B=m") == KernelOption(name: "CONFIG_B", value: "m"))
        #expect(try KernelOption.parseLine("# CONFIG_C is not set") == KernelOption(name: "CONFIG_C", value: nil))
        #expect(try KernelOption.parseLine("CONFIG_D=n") == KernelOption(name: "CONFIG_D", value: nil))
        #expect(try KernelOption.parseLine("CONFIG_E=\"ttyS0 x\"") == KernelOption(name: "CONFIG_E", value: "\"ttyS0 x\""))
        #expect(try KernelOption.parseLine("CONFIG_F=0x10") == KernelOption(name: "CONFIG_F", value: "0x10"))
        #expect(try KernelOption.parseLine("# a comment") == nil)
        #expect(try KernelOption.parseLine("   ") == nil)
    }

    @Test func rejectsWhatIsNotAnOption() {
        #expect(throws: KernelOptionSyntaxError.self) { try KernelOption.parseLine("PRINTK=y") }
        #expect(throws: KernelOptionSyntaxError.self) { try KernelOption.parseLine("CONFIG_X") }
        #expect(throws: KernelOptionSyntaxError.self) { try KernelOption.parseLine("CONFIG_X=") }
        #expect(throws: KernelOptionSyntaxError.self) { try KernelOption.parseLine("CONFIG_X=two words") }
    }

    @Test func roundTripsToConfigLines() throws {
        for line in ["CONFIG_A=y", "# CONFIG_C is not set", "CONFIG_E=\"x\"", "CONFIG_N=42"] {
            #expect(try KernelOption.parseLine(line)?.configLine == line)
        }
    }
}
