import Foundation

/// `matrix.json`: where the sources come from, the kernel config profiles, and which
/// cells (target × toolchain × profile × root device) to build and boot.
public struct Matrix: Sendable, Equatable, Codable {
    public var schema: Int = 1
    public var sources: Sources
    public var profiles: [String: Profile]
    /// Options added to every cell's kernel.
    public var options: [KernelOption]
    /// Fragment files (relative to matrix.json) added to every cell's kernel.
    public var fragments: [String]
    public var busybox: BusyboxSpec
    public var cells: [CellSpec]
    /// Test suites run in the guest, by name (profiles and cell entries name them).
    public var tests: [String: TestSuite]
    public var file: String = ""

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, sources, profiles, options, fragments, busybox, cells, tests
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.value(.schema, default: 1)
        guard schema == 1 else { throw decoder.problem("schema \(schema) is not supported (this kmatrix reads schema 1)", at: CodingKeys.schema) }
        sources = try c.decode(Sources.self, forKey: .sources)
        profiles = try c.decode([String: Profile].self, forKey: .profiles)
        // Profile names become folder names (build/<cell>/...): nothing that could leave them.
        for name in profiles.keys.sorted() where !isValidName(name) {
            throw decoder.problem("'\(name)' is not a valid profile name (letters, digits, '_', '-')", at: CodingKeys.profiles)
        }
        options = try c.value(.options, default: [])
        fragments = try c.value(.fragments, default: [])
        busybox = try c.value(.busybox, default: BusyboxSpec())
        tests = try c.value(.tests, default: [:])
        cells = try c.decode([CellSpec].self, forKey: .cells)
        guard !cells.isEmpty else { throw decoder.problem("lists no cell", at: CodingKeys.cells) }
    }

    public struct Sources: Sendable, Equatable, Codable {
        public var kernel: SourceSpec
        public var busybox: SourceSpec

        enum CodingKeys: String, CodingKey, CaseIterable { case kernel, busybox }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kernel = try c.decode(SourceSpec.self, forKey: .kernel)
            busybox = try c.decode(SourceSpec.self, forKey: .busybox)
        }
    }
}

/// A source tarball or tree. The first candidate path that exists is used; a tarball's
/// sha256, when given, must match.
public struct SourceSpec: Sendable, Equatable, Codable {
    /// Paths to try in order: a tarball (`.tar.xz`, `.tar.gz`, `.tar.bz2`) or a source tree.
    /// `~` is the home directory, `{cache}` the kmatrix cache.
    public var paths: [String]
    /// Where the tarball can be downloaded when no path exists.
    public var url: String?
    public var sha256: String?
    /// A Debian binary package that installs one of `paths` (`linux-source-6.1`).
    public var debianPackage: String?
    /// A Debian source package whose upstream tarball is one of `paths` (`busybox`).
    public var debianSourcePackage: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case paths, url, sha256, debianPackage, debianSourcePackage }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        paths = try c.decode([String].self, forKey: .paths)
        guard !paths.isEmpty else { throw decoder.problem("needs at least one path", at: CodingKeys.paths) }
        url = try c.decodeIfPresent(String.self, forKey: .url)
        sha256 = try c.decodeIfPresent(String.self, forKey: .sha256)
        if let sha256, sha256.count != 64 || !sha256.allSatisfy(\.isHexDigit) {
            throw decoder.problem("'\(sha256)' is not a sha256 (64 hex digits)", at: CodingKeys.sha256)
        }
        debianPackage = try c.decodeIfPresent(String.self, forKey: .debianPackage)
        debianSourcePackage = try c.decodeIfPresent(String.self, forKey: .debianSourcePackage)
    }
}

/// A kernel configuration: a base plus options and fragments.
public struct Profile: Sendable, Equatable, Codable {
    /// `tinyconfig`, `defconfig`, `allnoconfig`, a named defconfig (`vexpress_defconfig`),
    /// or a path to a full config file (relative to matrix.json).
    public var base: String
    public var options: [KernelOption]
    public var fragments: [String]
    public var description: String
    /// Variables on every kernel make of this profile (`KCFLAGS`, `W=1`...): kmatrix runs
    /// builds in a clean environment, so this is how flags reach them, as part of the key.
    public var makeVariables: [String: String]
    /// Test suites (matrix `tests`) every cell of this profile runs.
    public var tests: [String]

    enum CodingKeys: String, CodingKey, CaseIterable { case base, options, fragments, description, makeVariables, tests }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        base = try c.decode(String.self, forKey: .base)
        options = try c.value(.options, default: [])
        fragments = try c.value(.fragments, default: [])
        description = try c.value(.description, default: "")
        makeVariables = try c.value(.makeVariables, default: [:])
        tests = try c.value(.tests, default: [])
        for key in makeVariables.keys where ["ARCH", "CROSS_COMPILE", "O"].contains(key) || !isValidName(key) {
            throw decoder.problem("'\(key)' cannot be set here: ARCH, CROSS_COMPILE and O come from the target and toolchain, and names are letters, digits, '_', '-'", at: CodingKeys.makeVariables)
        }
        if baseIsMakeTarget, !Self.isValidConfigTarget(base) {
            throw decoder.problem("'\(base)' is not a config make target (letters, digits, '_', '.', '-', ending in 'config') nor a path to a config file", at: CodingKeys.base)
        }
    }

    /// `tinyconfig`, `vexpress_defconfig`, `x86_64_defconfig`: what `make` may be given as a base.
    static func isValidConfigTarget(_ base: String) -> Bool {
        base.hasSuffix("config") && !base.hasPrefix("-") && !base.contains("..")
            && base.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "_.-".contains($0) }
    }

    /// Whether `base` names a make target rather than a config file.
    public var baseIsMakeTarget: Bool { !base.contains("/") && (base.hasSuffix("config")) && !base.hasSuffix(".config") }
}

public struct BusyboxSpec: Sendable, Equatable, Codable {
    /// Options applied on top of busybox's `defconfig` (static, `CONFIG_TC` off are always applied).
    public var options: [String]

    enum CodingKeys: String, CodingKey, CaseIterable { case options }

    public init() { options = [] }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        options = try c.value(.options, default: [])
    }
}

/// One entry of `cells`. Each of target, toolchain, profile and rootfs is a name or a
/// list of names; an entry stands for every combination of them.
public struct CellSpec: Sendable, Equatable, Codable {
    public var targets: [String]
    public var toolchains: [String]
    public var profiles: [String]
    public var rootfs: [String]
    /// Options added to the kernels of these cells only.
    public var options: [KernelOption]
    /// Cells expected to fail (a known-bad configuration kept as a regression check).
    public var expect: CellOutcome?
    /// Test suites (matrix `tests`) these cells run besides their profile's.
    public var tests: [String]

    enum CodingKeys: String, CodingKey, CaseIterable { case target, toolchain, profile, rootfs, options, expect, tests }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        targets = try Self.names(c, .target)
        toolchains = try Self.names(c, .toolchain)
        profiles = try Self.names(c, .profile)
        rootfs = try c.contains(.rootfs) ? Self.names(c, .rootfs) : ["initramfs"]
        options = try c.value(.options, default: [])
        tests = try c.value(.tests, default: [])
        if let raw = try c.decodeIfPresent(String.self, forKey: .expect) {
            guard let outcome = CellOutcome(rawValue: raw) else {
                throw FieldProblem(path: c.codingPath.map(fieldName) + [CodingKeys.expect.stringValue],
                                   message: "'\(raw)' is not an outcome; valid: \(CellOutcome.allRawValues.joined(separator: ", "))")
            }
            expect = outcome
        }
    }

    private static func names(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [String] {
        if let one = try? c.decode(String.self, forKey: key) { return [one] }
        let many = try c.decode([String].self, forKey: key)
        guard !many.isEmpty else {
            throw FieldProblem(path: c.codingPath.map(fieldName) + [key.stringValue], message: "an empty list names no cell")
        }
        return many
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(targets, forKey: .target)
        try c.encode(toolchains, forKey: .toolchain)
        try c.encode(profiles, forKey: .profile)
        try c.encode(rootfs, forKey: .rootfs)
        try c.encode(options, forKey: .options)
        try c.encodeIfPresent(expect, forKey: .expect)
        try c.encode(tests, forKey: .tests)
    }
}

/// A make target named in a descriptor (`bzImage`, `dtbs`, `vexpress-v2p-ca9.dtb`) goes on
/// make's command line as one argument: it must not read as an option (`-`), a variable
/// assignment (`=`), several words, or a path out of the tree (`..`).
public func isValidMakeTarget(_ target: String) -> Bool {
    !target.isEmpty && !target.hasPrefix("-") && !target.contains("=") && !target.contains("..")
        && !target.contains(where: { $0.isWhitespace || $0.isNewline })
}
