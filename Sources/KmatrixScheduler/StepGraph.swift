import Foundation
import KmatrixCore

/// A step to run once its dependencies passed. `run` gets the outcomes of its dependencies.
public struct StepNode: Sendable {
    public var id: StepID
    public var dependencies: [StepID]
    public var body: @Sendable ([StepID: StepOutcome]) async -> StepOutcome

    public init(_ id: StepID, after dependencies: [StepID] = [], _ body: @escaping @Sendable ([StepID: StepOutcome]) async -> StepOutcome) {
        self.id = id
        self.dependencies = dependencies
        self.body = body
    }
}

/// Runs a DAG of steps, each as soon as its dependencies passed; a step several cells
/// share is one node, so it runs once. A failing step skips its dependents and nothing
/// else: one failing cell never stops the others. CPU is bounded by the jobserver the
/// steps use, not here.
public struct StepGraph: Sendable {
    public private(set) var nodes: [StepID: StepNode] = [:]
    public private(set) var order: [StepID] = []

    public init() {}

    /// Adds a node; adding the same id twice keeps the first (shared steps).
    public mutating func add(_ node: StepNode) {
        guard nodes[node.id] == nil else { return }
        nodes[node.id] = node
        order.append(node.id)
    }

    public func contains(_ id: StepID) -> Bool { nodes[id] != nil }

    /// Problems in the graph itself: unknown dependencies and cycles.
    public func validate() -> [String] {
        var problems: [String] = []
        for id in order {
            for dependency in nodes[id]!.dependencies where nodes[dependency] == nil {
                problems.append("\(id) depends on \(dependency), which is not in the plan")
            }
        }
        var state: [StepID: Int] = [:]  // 1 visiting, 2 done
        func visit(_ id: StepID, _ path: [StepID]) {
            if state[id] == 2 { return }
            if state[id] == 1 { problems.append("cycle: \((path + [id]).map(\.description).joined(separator: " -> "))"); return }
            state[id] = 1
            for dependency in nodes[id]?.dependencies ?? [] where nodes[dependency] != nil { visit(dependency, path + [id]) }
            state[id] = 2
        }
        for id in order { visit(id, []) }
        return problems
    }

    /// Runs every node; `onChange` sees each start (outcome nil) and each end.
    public func run(onChange: @escaping @Sendable (StepID, StepOutcome?) -> Void = { _, _ in }) async -> [StepID: StepOutcome] {
        var outcomes: [StepID: StepOutcome] = [:]
        var started: Set<StepID> = []
        await withTaskGroup(of: (StepID, StepOutcome).self) { group in
            func launchReady() {
                for id in order where !started.contains(id) {
                    let node = nodes[id]!
                    let deps = node.dependencies.compactMap { outcomes[$0] }
                    guard deps.count == node.dependencies.count else { continue }
                    started.insert(id)
                    if let blocker = node.dependencies.first(where: { outcomes[$0]?.status != .passed }) {
                        let interrupted = Task.isCancelled || outcomes[blocker]?.status == .interrupted
                        let outcome = StepOutcome(status: interrupted ? .interrupted : .skipped,
                                                  failure: interrupted ? .interrupted : nil,
                                                  summary: interrupted ? "interrupted" : "not run: \(blocker) did not pass")
                        outcomes[id] = outcome
                        onChange(id, outcome)
                        launchReady()
                        return
                    }
                    if Task.isCancelled {
                        let outcome = StepOutcome(status: .interrupted, failure: .interrupted, summary: "interrupted before it started")
                        outcomes[id] = outcome
                        onChange(id, outcome)
                        launchReady()
                        return
                    }
                    var inputs: [StepID: StepOutcome] = [:]
                    for dependency in node.dependencies { inputs[dependency] = outcomes[dependency] }
                    let frozen = inputs
                    onChange(id, nil)
                    group.addTask {
                        let begin = ContinuousClock.now
                        var outcome = await node.body(frozen)
                        if Task.isCancelled, outcome.status == .failed {
                            outcome.status = .interrupted
                            outcome.failure = .interrupted
                            outcome.summary = "interrupted: \(outcome.summary)"
                        }
                        if outcome.seconds == 0 { outcome.seconds = (ContinuousClock.now - begin).seconds }
                        return (id, outcome)
                    }
                }
            }
            launchReady()
            while let (id, outcome) = await group.next() {
                outcomes[id] = outcome
                onChange(id, outcome)
                launchReady()
            }
        }
        // Nodes never reached (a cycle, or dependencies missing from the plan).
        for id in order where outcomes[id] == nil {
            outcomes[id] = StepOutcome(status: .skipped, summary: "not run: its dependencies never completed")
        }
        return outcomes
    }
}
