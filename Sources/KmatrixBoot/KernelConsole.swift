import Foundation

/// A BUG, WARNING or Oops splat the kernel printed and went on from: recorded on the boot,
/// it does not decide the verdict by itself (what follows does).
public struct KernelWarning: Sendable, Codable, Equatable {
    /// Its first line, without the printk time (`BUG: sleeping function called from invalid context at ...`).
    public var headline: String
    /// The first line and the few after it, as printed.
    public var lines: [String]
    /// Seconds since QEMU started when it showed.
    public var seenAt: Double
    /// The kernel's own time of it (printk), when printed.
    public var kernelTime: Double?
    /// An oops: the kernel killed the task that hit it. When the boot then fails, the
    /// oops is the cause (a panic), whatever silence or reset follows.
    public var oops: Bool

    public init(headline: String, lines: [String], seenAt: Double, kernelTime: Double? = nil, oops: Bool) {
        self.headline = headline
        self.lines = lines
        self.seenAt = seenAt
        self.kernelTime = kernelTime
        self.oops = oops
    }
}

/// One milestone of a boot on the kernel's clock: seconds of printk time (the marker's
/// `uptime`) from the kernel's start. A boot record lists them in the order they happened.
public struct KernelPhase: Sendable, Codable, Equatable {
    public var name: String
    public var seconds: Double

    public init(name: String, seconds: Double) {
        self.name = name
        self.seconds = seconds
    }
}

/// One initcall's time from `initcall_debug` (`initcall X returned 0 after N usecs`).
public struct InitcallTime: Sendable, Codable, Equatable {
    /// The function (`pl011_init`), or its address when the kernel has no kallsyms.
    public var name: String
    public var milliseconds: Double

    public init(name: String, milliseconds: Double) {
        self.name = name
        self.milliseconds = milliseconds
    }
}

/// What the kernel's console lines say, apart from userspace's: printk times, the lines
/// that open a splat, the milestones and initcall times.
enum KernelConsole {
    /// Kernel milestones: the phase name and the text that marks it (first occurrence).
    static let milestones: [(name: String, text: String)] = [
        ("clocksource", "clocksource: Switched to clocksource"),
        ("initramfs-unpack", "Trying to unpack rootfs image"),
        ("initramfs-done", "Freeing initrd memory"),
        ("root-mounted", "VFS: Mounted root"),
        ("free-initmem", "Freeing unused kernel"),
    ]
    /// The name of the first timestamped kernel line's phase, of init's start, of the marker.
    static let kernelStart = "kernel", initStart = "init", marker = "marker"

    /// Lines that open an oops: the kernel kills the task that hit it.
    static let oopsOpeners = ["Unable to handle kernel", "Internal error: Oops", "Oops: ", "Oops - ", "general protection fault",
                              "kernel BUG at", "BUG: kernel NULL pointer dereference", "BUG: unable to handle"]
    /// Lines that open a report the kernel goes on from (`BUG: sleeping function called ...`).
    static let warningOpeners = ["WARNING: ", "BUG: "]
    /// The kernel saying it is stuck: no need to wait out the silence.
    static let stallPatterns = ["self-detected stall", "detected stalls on CPU", "soft lockup", "hard LOCKUP", "blocked for more than"]
    static let panic = "Kernel panic - not syncing"
    /// How many lines after its first a warning keeps.
    static let warningLines = 8

    /// The printk time at the start of `line` (`[    1.234567] `, and the caller id
    /// `[    T1] ` after it when the kernel prints one) and the text after them.
    static func leadingTime(_ line: Substring) -> (time: Double, text: Substring)? {
        guard line.first == "[", let close = line.firstIndex(of: "]") else { return nil }
        let inner = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
        // printk prints `%5lu.%06lu`: six digits after the point, which userspace rarely mimics.
        let parts = inner.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].count == 6, inner.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let time = Double(inner) else { return nil }
        var text = line[line.index(after: close)...]
        if text.first == "[", let end = text.firstIndex(of: "]"),
           text[text.index(after: text.startIndex)..<end].trimmingCharacters(in: .whitespaces).first.map({ $0 == "T" || $0 == "C" }) == true {
            text = text[text.index(after: end)...]
        }
        return (time, text.drop { $0 == " " })
    }

    /// The kernel's text in a console line, with its printk time: a timestamped line, or a
    /// kernel message that landed inside a userspace line (printk writes to the console
    /// directly). With printk times on, a line without one is userspace's: nil. With them
    /// off (or not known yet) the whole line, whose patterns then count only at its start.
    static func kernelText(_ line: String, timestamps: Bool?) -> (text: Substring, time: Double?)? {
        if let (time, text) = leadingTime(line[...]) { return (text, time) }
        guard timestamps == true else { return (line[...], nil) }
        guard !line.isEmpty else { return nil }
        var search = line.index(after: line.startIndex)
        while search < line.endIndex, let open = line[search...].firstIndex(of: "[") {
            if let (time, text) = leadingTime(line[open...]) { return (text, time) }
            search = line.index(after: open)
        }
        return nil
    }

    /// `initcall pl011_init+0x0/0x4c returned 0 after 1234 usecs` (or `msecs`, as older kernels say).
    static func initcall(_ text: Substring) -> InitcallTime? {
        guard text.hasPrefix("initcall ") else { return nil }
        let call = text.dropFirst("initcall ".count)
        guard let returned = call.range(of: " returned "), let after = call[returned.upperBound...].range(of: " after ") else { return nil }
        let words = call[after.upperBound...].split(separator: " ")
        guard words.count >= 2, let value = Double(words[0]) else { return nil }
        let perMillisecond: Double = words[1].hasPrefix("usecs") ? 1000 : words[1].hasPrefix("msecs") ? 1 : 0
        guard perMillisecond > 0 else { return nil }
        var name = call[..<returned.lowerBound]
        if let plus = name.firstIndex(of: "+") { name = name[..<plus] }
        return InitcallTime(name: String(name), milliseconds: value / perMillisecond)
    }
}
