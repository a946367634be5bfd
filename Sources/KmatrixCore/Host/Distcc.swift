import Foundation

/// Where compiles go besides this machine (`--distcc`): the kernel's and busybox's. Where a
/// compile runs does not change its output, so this is in no cache key.
public struct Distcc: Sendable, Hashable {
    /// The `distcc` client.
    public var executable: String
    /// `DISTCC_HOSTS`: `host[:port][/limit]...`, space-separated.
    public var hosts: String

    public init(executable: String, hosts: String) {
        self.executable = executable
        self.hosts = hosts
    }

    /// make's `CC=` for `compiler` run through distcc.
    public func makeCC(_ compiler: String) -> String { "CC=\(executable) \(compiler)" }

    /// What the distcc client reads from its environment: the hosts.
    public var environment: [String: String?] { ["DISTCC_HOSTS": hosts] }
}
