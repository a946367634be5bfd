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
        /// One kernel (`"kernel": {"paths": ...}`, unnamed: cell ids stay
        /// `target/toolchain/profile/rootfs`) or several by name (`"kernel": {"6.1": {...},
        /// "6.12": {...}}`: `kernel` becomes an axis and the name ends each cell id).
        public var kernels: [NamedKernel]
        public var busybox: SourceSpec

        /// The first kernel (the only one of most matrices).
        public var kernel: SourceSpec { kernels[0].spec }

        enum CodingKeys: String, CodingKey, CaseIterable { case kernel, busybox }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let kernel = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .kernel)
            if kernel.allKeys.contains(where: { $0.stringValue == SourceSpec.CodingKeys.paths.stringValue }) {
                kernels = [NamedKernel(name: nil, spec: try c.decode(SourceSpec.self, forKey: .kernel))]
            } else {
                let named = try c.decode([String: SourceSpec].self, forKey: .kernel)
                guard !named.isEmpty else { throw decoder.problem("names no kernel: give one source (with 'paths') or several by name", at: CodingKeys.kernel) }
                for name in named.keys.sorted() where !isValidKernelName(name) {
                    throw decoder.problem("'\(name)' is not a valid kernel name (letters, digits, '_', '-', '.', not starting with '.')", at: CodingKeys.kernel)
                }
                kernels = named.sorted { $0.key.compare($1.key, options: .numeric) == .orderedAscending }.map { NamedKernel(name: $0.key, spec: $0.value) }
            }
            busybox = try c.decode(SourceSpec.self, forKey: .busybox)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            if kernels.count == 1, kernels[0].name == nil {
                try c.encode(kernels[0].spec, forKey: .kernel)
            } else {
                try c.encode(Dictionary(uniqueKeysWithValues: kernels.map { ($0.name ?? "linux", $0.spec) }), forKey: .kernel)
            }
            try c.encode(busybox, forKey: .busybox)
        }
    }
}

/// A kernel source of the matrix; `name` is nil when the matrix has one unnamed kernel.
public struct NamedKernel: Sendable, Equatable {
    public var name: String?
    public var spec: SourceSpec

    public init(name: String?, spec: SourceSpec) {
        self.name = name
        self.spec = spec
    }

    /// The scope of its source step and the name in messages.
    public var scope: String { name.map { "linux-\($0)" } ?? "linux" }
}

/// Kernel names end cell ids and folder names: `6.12`, `next`, `before-patch`.
func isValidKernelName(_ name: String) -> Bool {
    !name.hasPrefix(".") && !name.contains("..")
        && name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "_-.".contains($0) }
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
    /// `tinyconfig`, `allnoconfig`, a named defconfig (`vexpress_defconfig`), `defconfig`
    /// (each target's own, from its descriptor's `kernel.defconfig`), or a path to a full
    /// config file (relative to matrix.json).
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
    /// The make target the configuration starts from: `defconfig` (busybox's full set of
    /// applets, the default) or `allnoconfig` (nothing: `options` names every applet and
    /// feature the rootfs needs; `Matrices/busybox-minimal.json` lists what kmatrix's own
    /// init and the shipped guest tests use).
    public var base: String
    /// Options applied on top of `base` (static, `CONFIG_TC` off are always applied).
    public var options: [String]

    public static let defaultBase = "defconfig"
    public static let bases = [defaultBase, "allnoconfig"]

    enum CodingKeys: String, CodingKey, CaseIterable { case base, options }

    public init(base: String = defaultBase, options: [String] = []) {
        self.base = base
        self.options = options
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        base = try c.value(.base, default: Self.defaultBase)
        options = try c.value(.options, default: [])
        guard Self.bases.contains(base) else {
            throw decoder.problem("'\(base)' is not a busybox base: one of \(Self.bases.joined(separator: ", "))", at: CodingKeys.base)
        }
    }
}

/// One entry of `cells`. Each of target, toolchain, profile and rootfs is a name or a
/// list of names; an entry stands for every combination of them.
public struct CellSpec: Sendable, Equatable, Codable {
    public var targets: [String]
    public var toolchains: [String]
    public var profiles: [String]
    public var rootfs: [String]
    /// Kernel names (of `sources.kernel`); nil: every kernel of the matrix.
    public var kernels: [String]?
    /// Options added to the kernels of these cells only.
    public var options: [KernelOption]
    /// Cells expected to fail (a known-bad configuration kept as a regression check).
    public var expect: CellOutcome?
    /// Test suites (matrix `tests`) these cells run besides their profile's.
    public var tests: [String]

    enum CodingKeys: String, CodingKey, CaseIterable { case target, toolchain, profile, rootfs, kernel, options, expect, tests }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        targets = try Self.names(c, .target)
        toolchains = try Self.names(c, .toolchain)
        profiles = try Self.names(c, .profile)
        rootfs = try c.contains(.rootfs) ? Self.names(c, .rootfs) : ["initramfs"]
        kernels = try c.contains(.kernel) ? Self.names(c, .kernel) : nil
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
        try c.encodeIfPresent(kernels, forKey: .kernel)
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
