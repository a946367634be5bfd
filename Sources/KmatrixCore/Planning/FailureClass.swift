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
    /// The marker arrived but says another kernel booted (`arch`, `release`) or a module
    /// did not load (`modules=1/2`).
    case markerMismatch = "marker-mismatch"

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

/// A cell's verdict: `pass`, `flaky` or the class of the failure that decided it. Encoded
/// as one string (`"pass"`, `"flaky"`, `"build-failed"`), as results.json and a matrix's
/// `expect` spell it.
public enum CellOutcome: Sendable, Hashable, Codable, CustomStringConvertible {
    case pass
    /// A boot failed, then passed when booted again (`--retries`): neither a pass nor a
    /// regression, and not a failure of the run.
    case flaky
    case failed(FailureClass)

    public init?(rawValue: String) {
        switch rawValue {
        case "pass": self = .pass
        case "flaky": self = .flaky
        default:
            guard let failure = FailureClass(rawValue: rawValue) else { return nil }
            self = .failed(failure)
        }
    }

    public var rawValue: String {
        switch self {
        case .pass: "pass"
        case .flaky: "flaky"
        case .failed(let failure): failure.rawValue
        }
    }

    /// Whether this outcome meets `expect` (nil: a pass is expected). A flaky cell meets
    /// an expected pass: it is reported, but it does not fail the run.
    public func meets(_ expect: CellOutcome?) -> Bool {
        let expected = expect ?? .pass
        return self == expected || (self == .flaky && expected == .pass)
    }

    public var description: String { rawValue }

    public var failure: FailureClass? {
        if case .failed(let failure) = self { return failure }
        return nil
    }

    /// Every spelling a matrix or a result may use, for messages.
    public static var allRawValues: [String] { ["pass", "flaky"] + FailureClass.allCases.map(\.rawValue) }

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
