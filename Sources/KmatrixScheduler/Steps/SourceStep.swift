import Foundation
import KmatrixCore

/// `source.kernel` / `source.busybox`: a tarball unpacked once with libarchive (keyed by
/// its sha256, shared read-only by every cell), or a tree used in place.
struct SourceStep: Step {
    enum Which: Sendable { case kernel, busybox }
    let which: Which

    static let kernelID = StepID(.sourceKernel, "linux")
    static let busyboxID = StepID(.sourceBusybox, "busybox")

    var id: StepID { which == .kernel ? Self.kernelID : Self.busyboxID }
    var dependencies: [StepID] { [] }
    var name: String { which == .kernel ? "linux" : "busybox" }

    func source(_ context: StepContext) -> ResolvedSource? {
        which == .kernel ? context.kernelSource : context.busyboxSource
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
            return .failed(.infrastructure, "the \(name) source is missing (see kmatrix doctor)")
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
