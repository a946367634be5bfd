import Foundation

/// One point of the matrix: a target built with a toolchain, a kernel profile and a root
/// device. Its `id` names it on the command line, in paths and in results.
public struct Cell: Sendable, Equatable {
    public var target: Target
    public var toolchain: Toolchain
    public var profileName: String
    public var profile: Profile
    public var rootName: String
    public var rootDevice: RootDeviceSpec
    public var extraOptions: [KernelOption]
    public var expect: CellOutcome?
    /// The kernel source this cell builds (one of the matrix's `sources.kernel`).
    public var kernel: NamedKernel
    /// Test suites run in the guest (KUnit options in the config, scripts in the rootfs).
    public var tests: [CellTestSuite] = []

    /// `target/toolchain/profile/rootfs`, e.g. `arm64-virt/gcc/tiny/initramfs`; with named
    /// kernels the kernel's name ends it: `arm64-virt/gcc/tiny/initramfs/6.12`.
    public var id: String { "\(target.name)/\(toolchain.name)/\(profileName)/\(rootName)" + (kernel.name.map { "/\($0)" } ?? "") }

    /// Variables on every kernel make: the toolchain's, then the profile's (which win).
    /// They are the only way flags such as KCFLAGS reach a build (its environment is
    /// cleaned), and they are part of the cache keys.
    public var makeVariables: [String: String] { toolchain.makeVariables.merging(profile.makeVariables) { _, profile in profile } }

    /// The toolchain entry for this cell's architecture (checked when the project loaded).
    public var toolchainArch: ToolchainArch { toolchain.architectures[target.userspace.debianArch]! }
}
