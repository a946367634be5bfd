import Foundation

/// Whether a kernel can have the console the command line names. A console registers
/// under the name in its `struct console` (`.name = "ttysclp"` for `ttysclp0`,
/// `"ttyAMA"` for `ttyAMA0`), which the compiler stores in vmlinux as those bytes and a
/// NUL. When vmlinux holds no such string, no driver built into it offers that console,
/// and the kernel has nowhere to print once its early console steps down: the cause of
/// a boot that ends with nothing on the console, said in the verdict.
public enum ConsoleDriverName {
    /// The driver's part of a console device name: `ttysclp` of `ttysclp0`, `hvc` of
    /// `hvc0`; nil when the name is not letters followed by a port number.
    public static func name(of device: String) -> String? {
        guard let match = device.firstMatch(of: /^([A-Za-z_]+)([0-9]+)$/) else { return nil }
        return String(match.1)
    }

    /// Whether `vmlinux` holds `name` followed by a NUL; nil when it cannot be read.
    public static func isPresent(_ name: String, in vmlinux: String) -> Bool? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: vmlinux), options: .alwaysMapped) else { return nil }
        let needle = Array(name.utf8) + [0]
        return data.withUnsafeBytes { ByteSearch.firstOffset(of: needle, in: $0) != nil }
    }

    /// The sentence a no-console-output verdict gets when vmlinux has no console named as
    /// `device` asks; nil when it has one or cannot be read.
    public static func missing(device: String, vmlinux: String) -> String? {
        guard let name = name(of: device), isPresent(name, in: vmlinux) == false else { return nil }
        return "vmlinux names no console '\(name)' (for \(device)): no driver built into this kernel offers that console; check the console options of the target"
    }
}
