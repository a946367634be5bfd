import Foundation
import KmatrixCore

/// The kernel commands of one cell, derived from the descriptors alone: what `plan`
/// prints and what the build step runs.
public struct KernelPlan: Sendable {
    public var cell: Cell
    /// The unpacked, read-only source tree.
    public var sourceTree: String
    /// The cell's out-of-tree build directory (`O=`).
    public var buildDirectory: String
    public var jobs: Int
    /// Wrap compilers in ccache (when it is installed).
    public var ccache: String?

    public init(cell: Cell, sourceTree: String, buildDirectory: String, jobs: Int, ccache: String? = nil) {
        self.cell = cell
        self.sourceTree = sourceTree
        self.buildDirectory = buildDirectory
        self.jobs = jobs
        self.ccache = ccache
    }

    /// Fixed so that two builds of the same inputs give the same `Linux version` banner.
    public static let reproducibleEnvironment: [String: String?] = [
        "KBUILD_BUILD_TIMESTAMP": "Thu Jan  1 00:00:00 UTC 1970",
        "KBUILD_BUILD_USER": "kmatrix",
        "KBUILD_BUILD_HOST": "kmatrix",
        "KCONFIG_NOTIMESTAMP": "1",
        "LC_ALL": "C",
    ]

    /// `make -C SRC O=BUILD ARCH=... CROSS_COMPILE=... [LLVM=...] [CC="ccache ..."]`.
    public func make(_ targets: [String], jobs: Int? = nil) -> Command {
        var argv = ["make", "-C", sourceTree, "O=\(buildDirectory)", "ARCH=\(cell.target.kernel.arch)"]
        if let prefix = cell.toolchainArch.crossCompile { argv.append("CROSS_COMPILE=\(prefix)") }
        for (key, value) in cell.toolchain.makeVariables.sorted(by: { $0.key < $1.key }) { argv.append("\(key)=\(value)") }
        if let ccache {
            argv.append("CC=\(ccache) \(kernelCompiler)")
            argv.append("HOSTCC=\(ccache) gcc")
        }
        if let jobs { argv.append("-j\(jobs)") }
        return Command(argv + targets, environment: Self.reproducibleEnvironment)
    }

    /// The C compiler kbuild would pick: `$(CROSS_COMPILE)gcc`, or `clang` under `LLVM=`.
    public var kernelCompiler: String {
        if let llvm = cell.toolchain.makeVariables["LLVM"] {
            return llvm.hasSuffix("/") ? "\(llvm)clang" : (llvm == "1" ? "clang" : "clang\(llvm)")
        }
        return "\(cell.toolchainArch.crossCompile ?? "")gcc"
    }

    /// Every option the cell asks for, in the order later entries override earlier ones:
    /// target, ABI, root device, profile, matrix, cell. Fragment files are read by the caller.
    public var requestedOptions: [KernelOption] {
        cell.target.kernel.options + cell.target.userspace.kernelOptions + cell.rootDevice.kernelOptions
            + cell.profile.options + cell.extraOptions
    }

    public var fragmentPath: String { "\(buildDirectory)/kmatrix.fragment" }

    /// Base config, merge of the generated fragment, `olddefconfig`.
    public var configureCommands: [Command] {
        var commands: [Command] = []
        if cell.profile.baseIsMakeTarget {
            commands.append(make([cell.profile.base]))
        } else {
            commands.append(Command(["cp", cell.profile.base, "\(buildDirectory)/.config"]))
        }
        commands.append(Command(["\(sourceTree)/scripts/kconfig/merge_config.sh", "-m", "-O", buildDirectory,
                                 "\(buildDirectory)/.config", fragmentPath],
                                environment: ["ARCH": cell.target.kernel.arch]))
        commands.append(make(["olddefconfig"]))
        return commands
    }

    /// The image and the DTBs the target names.
    public var buildCommand: Command {
        make([cell.target.kernel.image.target] + cell.target.kernel.dtbs.map(\.target), jobs: jobs)
    }

    public func modulesCommands(stagingDirectory: String) -> [Command] {
        [make(["modules"], jobs: jobs), make(["modules_install", "INSTALL_MOD_PATH=\(stagingDirectory)"])]
    }

    /// Where the image lands (first candidate; the build step checks them all).
    public var imagePath: String { "\(buildDirectory)/\(cell.target.kernel.image.paths[0])" }
    public var dtbPaths: [String] { cell.target.kernel.dtbs.map { "\(buildDirectory)/\($0.paths[0])" } }
}
