import Foundation
import KmatrixCore

/// The x86_64 Linux kernel that proves KVM (`KvmProbe`): the one Scripts/bootstrap unpacks
/// from Debian's cloud kernel package, else one kmatrix built for a cell that can run
/// under KVM on an x86_64 host. The one lookup doctor, boot, shell and run share.
public enum ProbeKernel {
    public static func find(workspace: Workspace, cells: [Cell]) -> String? {
        var candidates = ["\(workspace.root)/probe/vmlinuz"]
        for cell in cells where cell.target.qemu.kvmHostArch == KvmProbe.machine.architecture {
            candidates += cell.target.kernel.image.paths.map { "\(workspace.kernelBuild(cell))/\($0)" }
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}
