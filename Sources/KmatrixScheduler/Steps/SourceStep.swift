import Foundation
import KmatrixCore

/// `source.kernel` / `source.busybox`: a tarball unpacked once with libarchive (keyed by
/// its sha256, shared read-only by every cell), or a tree used in place. A matrix with
/// several kernels has one kernel source step per kernel (`linux-6.1`, `linux-6.12`).
struct SourceStep: Step {
    enum Which: Sendable { case kernel(NamedKernel), busybox }
    let which: Which

    static let busyboxID = StepID(.sourceBusybox, "busybox")

    /// The source step of the kernel a cell builds.
    static func kernelID(_ cell: Cell) -> StepID { StepID(.sourceKernel, cell.kernel.scope) }

    var id: StepID {
        switch which {
        case .kernel(let kernel): StepID(.sourceKernel, kernel.scope)
        case .busybox: Self.busyboxID
        }
    }
    var dependencies: [StepID] { [] }
    /// The unpacked folder's name: every kernel unpacks to `src/linux-<sha256>`.
    var name: String {
        switch which {
        case .kernel: "linux"
        case .busybox: "busybox"
        }
    }

    func source(_ context: StepContext) -> ResolvedSource? {
        switch which {
        case .kernel(let kernel): context.kernelSources[kernel.scope]
        case .busybox: context.busyboxSource
        }
    }

    func plan(_ context: StepContext) async -> PlannedStep {
        guard let source = source(context) else {
            return planned(note: "source not found on this machine (see kmatrix doctor)", commands: [])
        }
        if source.kind == .tree { return planned(note: "use the tree \(source.path) in place", commands: [], key: source.sha256) }
        let tree = context.sourceTree(source, name: name)
        return planned(note: "unpack \(source.path) (sha256 \(source.sha256)) into \(tree) with libarchive, once for all cells",
                       commands: [], key: source.sha256, cached: SourceTree.isComplete(tree))
    }

    func run(_ context: StepContext, _ inputs: StepInputs) async -> StepOutcome {
        guard let source = source(context) else {
            return .failed(.infrastructure, "the \(id.scope) source is missing (see kmatrix doctor)")
        }
        // A tree in place, or a finished unpack (ours or the upstream cache's).
        let planned = context.sourceTree(source, name: name)
        if source.kind == .tree || SourceTree.isComplete(planned) {
            return .passed(planned, output: .source(tree: planned), cacheHit: true, key: source.sha256)
        }
        do {
            let tree = try await SourceTree.prepare(source, workspace: context.workspace, name: name)
            return .passed("unpacked \(source.path) into \(tree)", output: .source(tree: tree), key: source.sha256)
        } catch {
            return .host(error)
        }
    }
}
