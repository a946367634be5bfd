import Foundation

/// The target's console: its Linux name, how the rootfs and the device-tree check find it.
public struct ConsoleSpec: Sendable, Equatable, Codable {
    /// The `console=` device, e.g. `ttyS0`, `ttyAMA0`, `ttymxc1`.
    public var device: String
    /// The `earlycon=` value used when a cell asks for early console output.
    public var earlycon: String?
    /// The character device numbers of `device` (`ttyAMA0` is 204:64, `ttyS0` 4:64; see
    /// the kernel's Documentation/admin-guide/devices.txt or the driver's `uart_driver`).
    /// The rootfs carries `/dev/<device>` with them, for the shell before devtmpfs or mdev
    /// fill /dev; `nil` leaves that node out.
    public var node: ConsoleNode?
    /// Whether the console is a UART node in the device tree. `false` for consoles with no
    /// node (`hvc0` on pseries, `ttysclp0` on s390x): the device-tree check then skips it.
    public var deviceTree: Bool

    enum CodingKeys: String, CodingKey, CaseIterable { case device, earlycon, node, deviceTree }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        device = try c.decode(String.self, forKey: .device)
        guard device.range(of: #"^[a-zA-Z]+[0-9]+$"#, options: .regularExpression) != nil else {
            throw decoder.problem("'\(device)' is not a console device name (a driver's name and a port number, as console= takes it)", at: CodingKeys.device)
        }
        earlycon = try c.decodeIfPresent(String.self, forKey: .earlycon)
        node = try c.decodeIfPresent(ConsoleNode.self, forKey: .node)
        deviceTree = try c.value(.deviceTree, default: true)
    }
}

/// A character device's numbers, as `{"major": 204, "minor": 64}`.
public struct ConsoleNode: Sendable, Equatable, Hashable, Codable {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case major, minor }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Linux's dev_t: a 12-bit major (0 is for unnamed devices) and a 20-bit minor.
        let major = try c.decode(Int.self, forKey: .major)
        guard (1...0xfff).contains(major) else { throw decoder.problem("\(major) is not a device major (1 to 4095)", at: CodingKeys.major) }
        let minor = try c.decode(Int.self, forKey: .minor)
        guard (0...0xfffff).contains(minor) else { throw decoder.problem("\(minor) is not a device minor (0 to 1048575)", at: CodingKeys.minor) }
        self.major = UInt32(major)
        self.minor = UInt32(minor)
    }
}
