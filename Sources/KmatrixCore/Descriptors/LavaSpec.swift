import Foundation

/// How a LAVA lab boots the target: the optional `lava` object of a `Targets/*.json` file.
/// Without `boot` the target is a QEMU machine and `kmatrix lava` renders LAVA's `qemu`
/// device type from the `qemu` object; with `boot` it is a board that the job deploys to
/// (tftp by default) and boots with the lab's bootloader method.
public struct LavaSpec: Sendable, Equatable, Codable {
    /// The lab's device type (`beaglebone-black`); nil for a QEMU target (`qemu`).
    public var deviceType: String?
    /// The `arch` LAVA's qemu device type takes, when it is not the suffix of `qemu.binary`.
    public var arch: String?
    public var deploy: LavaDeploySpec
    /// How the board boots; nil: it is a QEMU target.
    public var boot: LavaBootSpec?

    enum CodingKeys: String, CodingKey, CaseIterable { case deviceType, arch, deploy, boot }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deviceType = try c.decodeIfPresent(String.self, forKey: .deviceType)
        arch = try c.decodeIfPresent(String.self, forKey: .arch)
        deploy = try c.value(.deploy, default: LavaDeploySpec())
        boot = try c.decodeIfPresent(LavaBootSpec.self, forKey: .boot)
        for (value, key) in [(deviceType, CodingKeys.deviceType), (arch, .arch)] where value.map(LavaSpec.isPlainWord) == false {
            throw decoder.problem("'\(value ?? "")' is not a LAVA name (letters, digits, '_', '-', '.')", at: key)
        }
        if boot != nil, deviceType == nil {
            throw decoder.problem("a board (lava.boot given) needs the lab's device type", at: CodingKeys.deviceType)
        }
        if boot == nil, deviceType != nil {
            throw decoder.problem("is given but lava.boot is not: a board needs its boot method (a QEMU target needs neither)", at: CodingKeys.deviceType)
        }
    }

    static func isPlainWord(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "_-.".contains($0) }
    }
}

/// Where a board's images go: `to` is a LAVA deploy method (`tftp`).
public struct LavaDeploySpec: Sendable, Equatable, Codable {
    public var to: String = "tftp"
    /// The kernel's `type` for the bootloader (`image`, `zimage`, `uimage`); nil: not given.
    public var kernelType: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case to, kernelType }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        to = try c.value(.to, default: "tftp")
        kernelType = try c.decodeIfPresent(String.self, forKey: .kernelType)
        guard LavaSpec.isPlainWord(to) else { throw decoder.problem("'\(to)' is not a LAVA deploy method", at: CodingKeys.to) }
    }
}

/// How a board boots in the lab: LAVA's boot `method` (`u-boot`), the bootloader
/// `commands` (a named set of the device type, `ramdisk`, or the commands themselves) and
/// the shell `prompts` to wait for.
public struct LavaBootSpec: Sendable, Equatable, Codable {
    public var method: String
    /// One name (a command set of the device type) or the commands themselves.
    public var commands: [String]
    /// Whether `commands` was a single string (a named set): LAVA reads the two differently.
    public var namedCommands: Bool
    public var prompts: [String]

    enum CodingKeys: String, CodingKey, CaseIterable { case method, commands, prompts }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decode(String.self, forKey: .method)
        guard LavaSpec.isPlainWord(method) else { throw decoder.problem("'\(method)' is not a LAVA boot method (u-boot, grub, ...)", at: CodingKeys.method) }
        if let name = try? c.decode(String.self, forKey: .commands) {
            commands = [name]
            namedCommands = true
        } else {
            commands = try c.value(.commands, default: [])
            namedCommands = false
        }
        prompts = try c.value(.prompts, default: [])
        if prompts.contains(where: \.isEmpty) { throw decoder.problem("a prompt cannot be empty", at: CodingKeys.prompts) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        if namedCommands, let name = commands.first { try c.encode(name, forKey: .commands) } else { try c.encode(commands, forKey: .commands) }
        try c.encode(prompts, forKey: .prompts)
    }
}
