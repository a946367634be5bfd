import Foundation
import KmatrixBoot
import KmatrixTestSupport
import Testing

/// A boot that prints nothing gets its cause when the kernel has no console of the name the
/// command line gives (s390x's target once enabled the line-mode SCLP console, named ttyS,
/// for console=ttysclp0, and the kernel printed nothing after its early console).
@Suite("The console a kernel can have, read from vmlinux")
struct ConsoleDriverNameTests {
    @Test func theDriverPartOfADeviceName() {
        #expect(ConsoleDriverName.name(of: "ttysclp0") == "ttysclp")
        #expect(ConsoleDriverName.name(of: "ttyAMA0") == "ttyAMA")
        #expect(ConsoleDriverName.name(of: "hvc0") == "hvc")
        #expect(ConsoleDriverName.name(of: "ttymxc1") == "ttymxc")
        #expect(ConsoleDriverName.name(of: "ttyS") == nil)
        #expect(ConsoleDriverName.name(of: "tty/S0") == nil)
    }

    @Test func aNameCountsOnlyWithItsNul() throws {
        let path = NSTemporaryDirectory() + "kmatrix-console-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(Array("\u{7f}ELF....ttyS\0....ttysclpX....".utf8)).write(to: URL(fileURLWithPath: path))
        #expect(ConsoleDriverName.isPresent("ttyS", in: path) == true)
        #expect(ConsoleDriverName.isPresent("ttysclp", in: path) == false)
        #expect(ConsoleDriverName.missing(device: "ttyS0", vmlinux: path) == nil)
        let said = try #require(ConsoleDriverName.missing(device: "ttysclp0", vmlinux: path))
        #expect(said.contains("no console 'ttysclp' (for ttysclp0)"))
        #expect(ConsoleDriverName.isPresent("ttyS", in: path + ".absent") == nil)
        #expect(ConsoleDriverName.missing(device: "ttysclp0", vmlinux: path + ".absent") == nil, "unreadable: nothing claimed")
    }

    /// A real kernel: x86_64's tiny vmlinux has the 8250 console `ttyS` and no SCLP console.
    @Test(.needs(.builtKernel("x86_64-pc/gcc/tiny/initramfs")))
    func aRealKernelHasItsConsoleAndNotAnother() throws {
        let cell = try #require(TestCache.cell(target: "x86_64-pc"))
        let vmlinux = try #require(TestCache.shared.builtKernel(cell)) + "/vmlinux"
        #expect(ConsoleDriverName.isPresent("ttyS", in: vmlinux) == true)
        #expect(ConsoleDriverName.isPresent("ttysclp", in: vmlinux) == false)
        #expect(ConsoleDriverName.isPresent("hvc", in: vmlinux) == false)
    }
}
