/// Why a step, and so its cell, failed: one closed set used by steps, results, JUnit,
/// reports, `compare` and a cell's `expect`. The raw values are what results.json and
/// matrix files spell.
public enum FailureClass: String, Sendable, Codable, CaseIterable, Comparable {
    // Kernel configuration and build.
    /// The base config, merge_config.sh or olddefconfig failed.
    case configFailed = "config-failed"
    /// Kconfig dropped or changed requested options; nothing was built.
    case configDroppedOptions = "config-dropped-options"
    /// make failed or stopped at its deadline.
    case buildFailed = "build-failed"
    /// make succeeded but an artifact the target names is not in the build tree.
    case artifactMissing = "artifact-missing"

    // Userspace.
    /// busybox's configuration, compile or install failed, or its binary is not what the target runs.
    case busyboxBuildFailed = "busybox-build-failed"
    /// The rootfs could not be assembled or packed.
    case rootfsFailed = "rootfs-failed"

    // Device tree.
    case dtbCheckFailed = "dtb-check-failed"

    // Boot: the failing outcomes of a boot (KmatrixBoot's BootOutcome says what each means).
    case panic, initFailed = "init-failed", noConsoleOutput = "no-console-output", hang, timeout, qemuError = "qemu-error"

    // Tests in the guest.
    /// The boot passed but a test in the guest failed or did not run (KUnit or a script).
    case testsFailed = "tests-failed"

    // Not the cell's fault.
    /// The host failed: a missing tool or source, a full disk, a cache that cannot be written.
    case infrastructure
    /// SIGINT/SIGTERM stopped the work.
    case interrupted

    /// Whether the host, not the cell, is to blame (exit status 3 rather than 1).
    public var isHostFailure: Bool { self == .infrastructure }

    public static func < (a: FailureClass, b: FailureClass) -> Bool { a.rawValue < b.rawValue }
}

/// A cell's verdict: `pass` or the class of the failure that decided it. Encoded as one
/// string (`"pass"`, `"build-failed"`), as results.json and a matrix's `expect` spell it.
public enum CellOutcome: Sendable, Hashable, Codable, CustomStringConvertible {
    case pass
    case failed(FailureClass)

    public init?(rawValue: String) {
        if rawValue == "pass" { self = .pass } else if let failure = FailureClass(rawValue: rawValue) { self = .failed(failure) } else { return nil }
    }

    public var rawValue: String {
        switch self {
        case .pass: "pass"
        case .failed(let failure): failure.rawValue
        }
    }

    public var description: String { rawValue }

    public var failure: FailureClass? {
        if case .failed(let failure) = self { return failure }
        return nil
    }

    /// Every spelling a matrix or a result may use, for messages.
    public static var allRawValues: [String] { ["pass"] + FailureClass.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let outcome = CellOutcome(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "'\(text)' is not an outcome; valid: \(Self.allRawValues.joined(separator: ", "))"))
        }
        self = outcome
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
