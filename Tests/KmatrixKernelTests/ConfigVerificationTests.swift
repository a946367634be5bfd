import Foundation
import KmatrixCore
import KmatrixKernel
import Testing

/// An excerpt of the `.config` that `make ARCH=arm tinyconfig` writes for Linux 6.1.192,
/// with a few lines from other configs (modules, strings) spliced in.
let armTinyconfigExcerpt = """
#
# Automatically generated file; DO NOT EDIT.
# Linux/arm 6.1.192 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="arm-linux-gnueabihf-gcc (Debian 12.2.0-14) 12.2.0"
CONFIG_CC_IS_GCC=y
CONFIG_GCC_VERSION=120200
CONFIG_LOCALVERSION=""
# CONFIG_LOCALVERSION_AUTO is not set
CONFIG_DEFAULT_HOSTNAME="(none)"
# CONFIG_BLK_DEV_INITRD is not set
CONFIG_EXPERT=y
# CONFIG_MULTIUSER is not set
# CONFIG_PRINTK is not set

#
# System Type
#
# CONFIG_MMU is not set
CONFIG_ARM_SINGLE_ARMV7M=y
CONFIG_PHYS_OFFSET=0x00800000
CONFIG_HZ_100=y
# CONFIG_HZ_1000 is not set
CONFIG_HZ=100
CONFIG_AEABI=y
CONFIG_CMDLINE=""
CONFIG_MODULES=y
CONFIG_EXT2_FS=y
CONFIG_VIRTIO_BLK=m
# end of Boot options
"""

@Suite("config verification")
struct ConfigVerificationTests {
    let config = KernelConfig(parsing: armTinyconfigExcerpt)

    func check(_ lines: [String], origin: String = "test") throws -> [OptionMismatch] {
        let requested = try lines.map { line in
            RequestedOption(try #require(try KernelOption.parseLine(line)), origin: origin)
        }
        return ConfigVerification.mismatches(requested: requested, in: config)
    }

    @Test func parsesValuesNotSetAndAbsent() {
        #expect(config.value("CONFIG_HZ") == "100")
        #expect(config.value("CONFIG_CC_VERSION_TEXT") == "\"arm-linux-gnueabihf-gcc (Debian 12.2.0-14) 12.2.0\"")
        #expect(config.value("CONFIG_MMU") == nil && config.mentions("CONFIG_MMU"))
        #expect(config.value("CONFIG_ARCH_VEXPRESS") == nil && !config.mentions("CONFIG_ARCH_VEXPRESS"))
        #expect(config.hasModules)
        #expect(!KernelConfig(parsing: "CONFIG_MODULES=y\nCONFIG_EXT2_FS=y\n").hasModules)
    }

    /// A symbol renamed between kernel versions (`CONFIG_SOC_VIRT` became `CONFIG_ARCH_VIRT`
    /// in 6.7): either name with the value satisfies the request, and the fragment asks for both.
    @Test func aFormerNameSatisfiesARenamedSymbol() throws {
        let renamed = RequestedOption(KernelOption(name: "CONFIG_ARCH_VIRT", value: "y"), origin: "target", formerName: "CONFIG_SOC_VIRT")
        #expect(renamed.configLines == ["CONFIG_ARCH_VIRT=y", "CONFIG_SOC_VIRT=y"])
        let old = KernelConfig(parsing: "CONFIG_SOC_VIRT=y\n"), new = KernelConfig(parsing: "CONFIG_ARCH_VIRT=y\n")
        #expect(ConfigVerification.mismatches(requested: [renamed], in: old).isEmpty)
        #expect(ConfigVerification.mismatches(requested: [renamed], in: new).isEmpty)
        // The old name set the wrong way, or neither name: still a dropped option.
        #expect(ConfigVerification.mismatches(requested: [renamed], in: KernelConfig(parsing: "# CONFIG_SOC_VIRT is not set\n")).count == 1)
        #expect(ConfigVerification.mismatches(requested: [renamed], in: KernelConfig(parsing: "CONFIG_MMU=y\n")).count == 1)
        // A kernel that has the new name decides by it alone.
        #expect(ConfigVerification.mismatches(requested: [renamed], in: KernelConfig(parsing: "# CONFIG_ARCH_VIRT is not set\nCONFIG_SOC_VIRT=y\n")).count == 1)
    }

    @Test func everythingAsAskedPasses() throws {
        #expect(try check(["CONFIG_AEABI=y", "CONFIG_HZ=100", "# CONFIG_PRINTK is not set", "CONFIG_PRINTK=n",
                           "CONFIG_VIRTIO_BLK=m", "CONFIG_CMDLINE=\"\"", "CONFIG_PHYS_OFFSET=0x00800000"]).isEmpty)
    }

    @Test func droppedOptionIsListedWithWhatCameOut() throws {
        let mismatches = try check(["CONFIG_MMU=y", "CONFIG_ARCH_VEXPRESS=y", "CONFIG_AEABI=y"], origin: "target arm-vexpress-a9")
        #expect(mismatches.map(\.name) == ["CONFIG_MMU", "CONFIG_ARCH_VEXPRESS"])
        let mmu = try #require(mismatches.first)
        #expect(mmu.requested == "y" && mmu.actual == nil && !mmu.absent)
        #expect(mmu.description == "CONFIG_MMU=y (from target arm-vexpress-a9) came out as # CONFIG_MMU is not set")
        // Absent: Kconfig did not even write it, because a dependency (MMU) is off.
        let vexpress = mismatches[1]
        #expect(vexpress.absent)
        #expect(vexpress.description.contains("absent from .config"))
    }

    @Test func changedValueIsAMismatch() throws {
        let mismatches = try check(["CONFIG_HZ=250", "CONFIG_PHYS_OFFSET=0x60000000"])
        #expect(mismatches.map(\.name) == ["CONFIG_HZ", "CONFIG_PHYS_OFFSET"])
        #expect(mismatches[0].requested == "250" && mismatches[0].actual == "100")
        #expect(mismatches[0].description == "CONFIG_HZ=250 (from test) came out as CONFIG_HZ=100")
    }

    @Test func notSetRequestThatCameOutSetIsAMismatch() throws {
        let mismatches = try check(["# CONFIG_AEABI is not set", "# CONFIG_MMU is not set", "# CONFIG_ARCH_VEXPRESS is not set"])
        // Asked off and written off, or absent: both count as not set.
        #expect(mismatches.map(\.name) == ["CONFIG_AEABI"])
        #expect(mismatches[0].requested == nil && mismatches[0].actual == "y")
        #expect(mismatches[0].description == "# CONFIG_AEABI is not set (from test) came out as CONFIG_AEABI=y")
    }

    @Test func moduleAndBuiltInAreDifferent() throws {
        let mismatches = try check(["CONFIG_EXT2_FS=m", "CONFIG_VIRTIO_BLK=y"])
        #expect(mismatches.map(\.name) == ["CONFIG_EXT2_FS", "CONFIG_VIRTIO_BLK"])
        #expect(mismatches[0].requested == "m" && mismatches[0].actual == "y")
        #expect(mismatches[1].requested == "y" && mismatches[1].actual == "m")
    }

    @Test func stringValuesCompareTheirText() throws {
        #expect(try check(["CONFIG_DEFAULT_HOSTNAME=\"(none)\"",
                           "CONFIG_CC_VERSION_TEXT=\"arm-linux-gnueabihf-gcc (Debian 12.2.0-14) 12.2.0\""]).isEmpty)
        let mismatches = try check(["CONFIG_DEFAULT_HOSTNAME=\"kmatrix\"", "CONFIG_LOCALVERSION=\"-kmatrix\""])
        #expect(mismatches.map(\.actual) == ["\"(none)\"", "\"\""])
        // A string asked for without quotes is the same text Kconfig writes quoted.
        #expect(ConfigVerification.sameValue("kmatrix", "\"kmatrix\""))
        #expect(!ConfigVerification.sameValue("y", "m"))
    }

    @Test func numbersCompareByValue() {
        #expect(ConfigVerification.sameValue("0x00800000", "0x800000"))
        #expect(ConfigVerification.sameValue("0X10", "0x10"))
        #expect(!ConfigVerification.sameValue("0x10", "0x11"))
        #expect(!ConfigVerification.sameValue("100", "250"))
    }
}

@Suite("build log summary")
struct BuildLogSummaryTests {
    @Test func countsWarningsAndErrorsAndKeepsTheFirstErrors() {
        let log = """
          CC      init/main.o
        init/main.c:12:5: warning: unused variable 'x' [-Wunused-variable]
        drivers/tty/serial/amba-pl011.c:99:1: error: expected ';' before '}' token
        ld: vmlinux.o: in function `start_kernel': undefined reference to `foo'
        make[2]: *** [scripts/Makefile.build:250: init/main.o] Error 1
        make: *** [Makefile:2012: .] Error 2
        """
        let summary = BuildLogSummary.scan(text: log, tailLines: 2)
        #expect(summary.warnings == 1)
        #expect(summary.errors == 2)
        #expect(summary.firstErrors.first?.contains("amba-pl011.c:99:1: error:") == true)
        #expect(summary.tail == ["make[2]: *** [scripts/Makefile.build:250: init/main.o] Error 1", "make: *** [Makefile:2012: .] Error 2"])
    }

    @Test func readsAFileInChunks() throws {
        let path = NSTemporaryDirectory() + "kmatrix-log-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lines = (0..<50_000).map { $0 % 1000 == 0 ? "x.c:\($0):1: warning: w" : "  CC      file\($0).o" }
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let summary = BuildLogSummary.scan(path, tailLines: 3)
        #expect(summary.warnings == 50)
        #expect(summary.tail == ["  CC      file49997.o", "  CC      file49998.o", "  CC      file49999.o"])
    }
}
