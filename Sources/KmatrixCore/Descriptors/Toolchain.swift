import Foundation

/// A way to compile for targets: one `Toolchains/*.json` file (Debian's gcc cross
/// compilers, clang/LLVM), with one entry per Debian architecture it can build for.
public struct Toolchain: Sendable, Equatable, Codable {
    public var schema: Int = 1
    public var name: String
    public var description: String
    /// Variables added to every kernel make invocation (`LLVM=/usr/lib/llvm-14/bin/`).
    public var makeVariables: [String: String]
    /// The compiler whose version identifies the toolchain; `{crossCompile}` is replaced.
    public var compiler: String
    public var versionArguments: [String]
    /// Per Debian architecture: the `CROSS_COMPILE` prefix and the packages that provide it.
    public var architectures: [String: ToolchainArch]
    /// The toolchain that builds busybox for cells using this one (clang builds the
    /// kernel, but a static busybox needs a libc, which Debian ships with gcc's cross
    /// packages). `nil` means this toolchain builds userspace itself.
    public var userspaceToolchain: String?
    /// Other tools whose versions shape a kernel (Kconfig records the assembler's and the
    /// linker's in `.config`): role to command, `{crossCompile}` replaced; each is asked
    /// `--version` and its first line joins the cache keys.
    public var tools: [String: String]
    public var file: String = ""

    enum CodingKeys: String, CodingKey, CaseIterable {
        case schema, name, description, makeVariables, compiler, versionArguments, architectures, userspaceToolchain, tools
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schema = try c.value(.schema, default: 1)
        guard schema == 1 else { throw decoder.problem("schema \(schema) is not supported (this kmatrix reads schema 1)", at: CodingKeys.schema) }
        name = try c.decode(String.self, forKey: .name)
        guard isValidName(name) else { throw decoder.problem("'\(name)' is not a valid name (letters, digits, '_', '-')", at: CodingKeys.name) }
        description = try c.value(.description, default: "")
        makeVariables = try c.value(.makeVariables, default: [:])
        for key in makeVariables.keys where ["ARCH", "CROSS_COMPILE", "O"].contains(key) {
            throw decoder.problem("\(key) is set by kmatrix from the target and toolchain; remove it", at: CodingKeys.makeVariables)
        }
        compiler = try c.decode(String.self, forKey: .compiler)
        versionArguments = try c.value(.versionArguments, default: ["--version"])
        architectures = try c.decode([String: ToolchainArch].self, forKey: .architectures)
        guard !architectures.isEmpty else { throw decoder.problem("lists no architecture", at: CodingKeys.architectures) }
        userspaceToolchain = try c.decodeIfPresent(String.self, forKey: .userspaceToolchain)
        tools = try c.value(.tools, default: [:])
    }

    /// `tools` with `{crossCompile}` replaced for `arch`.
    public func toolPaths(for arch: ToolchainArch) -> [String: String] {
        tools.mapValues { $0.replacingOccurrences(of: "{crossCompile}", with: arch.crossCompile ?? "") }
    }

    public func compilerPath(for arch: ToolchainArch) -> String {
        compiler.replacingOccurrences(of: "{crossCompile}", with: arch.crossCompile ?? "")
    }
}

public struct ToolchainArch: Sendable, Equatable, Codable {
    /// `CROSS_COMPILE=`; `nil` leaves it unset (clang derives the target from ARCH).
    public var crossCompile: String?
    /// Debian packages that install the compiler, binutils and the libc.
    public var packages: [String]
    /// Which of `packages` holds the static C library (`libc.a`) this compiler links a
    /// static busybox against (`libc6-dev-armhf-cross`); `nil` when the toolchain builds
    /// no userspace (its cells name a `userspaceToolchain`). It names the libc a busybox
    /// build links, so it belongs to that build's identity.
    public var libcPackage: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case crossCompile, packages, libcPackage }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        crossCompile = try c.decodeIfPresent(String.self, forKey: .crossCompile)
        packages = try c.value(.packages, default: [])
        libcPackage = try c.decodeIfPresent(String.self, forKey: .libcPackage)
        if let libcPackage, libcPackage.range(of: #"^[a-z0-9][a-z0-9+.-]+$"#, options: .regularExpression) == nil {
            throw decoder.problem("'\(libcPackage)' is not a Debian package name (lower case letters, digits, '+', '-', '.')",
                                  at: CodingKeys.libcPackage)
        }
        if let libcPackage, !packages.contains(libcPackage) {
            throw decoder.problem("'\(libcPackage)' is not in packages: list it there too, so it is installed", at: CodingKeys.libcPackage)
        }
    }
}
