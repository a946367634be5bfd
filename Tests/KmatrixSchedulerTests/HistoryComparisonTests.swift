import Foundation
import KmatrixCommands
import KmatrixCore
@testable import KmatrixScheduler
import Testing

/// Run directories written the way `kmatrix run` writes them, in a throwaway runs folder.
struct RunsFolder {
    let root = NSTemporaryDirectory() + "kmatrix-history-\(UUID().uuidString)"
    var runs: String { "\(root)/runs" }

    /// Writes `results` as run `id` (its reports too) and returns the run directory.
    @discardableResult
    func write(_ results: RunResults, id: String) throws -> String {
        var results = results
        results.run.id = id
        // Started in the order of the ids' dates.
        results.run.started = Date(timeIntervalSince1970: 1_800_000_000 + Double(Int(id.prefix(8)) ?? 0))
        try Reports.write(results, to: "\(runs)/\(id)")
        return "\(runs)/\(id)"
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite("History and compare")
struct HistoryComparisonTests {
    static let x86 = "x86_64-pc/gcc/tiny/initramfs", arm = "arm-vexpress-a9/gcc/tiny/initramfs"

    /// results.json as a newer kmatrix writes it: an outcome and a field this one does not know.
    static func newerResults(outcome: String) -> String {
        """
        {"schema": "kmatrix-results/1", "run": {"id": "20261201-000000-1", "started": "2026-12-01T00:00:00Z", "retries": 2},
         "cells": [{"id": "\(x86)", "target": "x86_64-pc", "toolchain": "gcc", "profile": "tiny", "rootfs": "initramfs",
                    "outcome": "\(outcome)", "passed": true, "attempts": 2}]}
        """
    }

    @Test func everyCellGetsItsKciDevClass() throws {
        var old = sampleResults(armOutcome: "panic")
        var new = sampleResults(armOutcome: "pass")
        // x86 regresses, arm is fixed; a third cell fails in both; one only old, one only new.
        new.cells[0].outcome = .failed(.hang); new.cells[0].passed = false
        var broken = old.cells[1]
        broken.id = "riscv64-virt/gcc/tiny/initramfs"
        old.cells.append(broken); new.cells.append(broken)
        var gone = old.cells[0]; gone.id = "gone/gcc/tiny/initramfs"; old.cells.append(gone)
        var added = new.cells[1]; added.id = "added/gcc/tiny/initramfs"; new.cells.append(added)
        let comparison = RunComparison(old: old, new: new)
        #expect(comparison.cells.map(\.status) == [.regression, .fixed, .persistentFailure, .new, .missing])
        #expect(comparison.regressed)
        #expect(comparison.cells(.regression).first?.before == "pass" && comparison.cells(.regression).first?.after == "hang")
        #expect(comparison.text.contains("Regressions:\n  \(Self.x86): pass -> hang"))
        #expect(comparison.text.contains("Persistent failures:\n  riscv64-virt/gcc/tiny/initramfs: panic -> panic"))
        #expect(comparison.text.contains("Missing cells:\n  gone/gcc/tiny/initramfs: pass -> -"))
        // An expected failure that failed as expected is a pass, not a persistent failure.
        var expected = sampleResults(armOutcome: "panic")
        expected.cells[1].passed = true
        #expect(RunComparison(old: expected, new: expected).cells.map(\.status) == [.pass, .pass])
    }

    @Test func aFlakyOrUnknownPassingOutcomeIsUnstableNotAnError() throws {
        let folder = RunsFolder()
        defer { folder.remove() }
        let old = try folder.write(sampleResults(), id: "20261130-000000-1")
        let newer = "\(folder.runs)/20261201-000000-1"
        try FileManager.default.createDirectory(atPath: newer, withIntermediateDirectories: true)
        try Self.newerResults(outcome: "flaky").write(toFile: "\(newer)/results.json", atomically: true, encoding: .utf8)
        let snapshot = try RunSnapshot.load(from: newer)
        #expect(snapshot.cells.first?.standing == .unstable)
        let comparison = RunComparison(old: try RunSnapshot.load(from: old), new: snapshot)
        #expect(comparison.cells.map(\.status) == [.unstable, .missing])
        #expect(!comparison.regressed)
        #expect(comparison.text.contains("Unstable (flaky):\n  \(Self.x86): pass -> flaky"))
    }

    @Test func compareExitsOneOnARegressionOnly() async throws {
        let folder = RunsFolder()
        defer { folder.remove() }
        let good = try folder.write(sampleResults(), id: "20261130-000000-1")
        let bad = try folder.write(sampleResults(armOutcome: "panic"), id: "20261201-000000-2")
        #expect(await KmatrixMain.run(["compare", good, bad]) == 1)
        #expect(await KmatrixMain.run(["compare", bad, good]) == 0)
        #expect(await KmatrixMain.run(["compare", "--json", good, good]) == 0)
        #expect(await KmatrixMain.run(["compare", good, "\(folder.root)/nothing-here"]) == 2)
    }

    @Test func historyShowsEachCellOverTheRuns() throws {
        let folder = RunsFolder()
        defer { folder.remove() }
        try folder.write(sampleResults(linuxAt: 0.9), id: "20261128-000000-1")
        try folder.write(sampleResults(armOutcome: "panic", linuxAt: 1.4), id: "20261129-000000-2")
        try folder.write(sampleResults(linuxAt: 2.0), id: "20261130-000000-3")
        // A run still going (no results.json yet) is not a run; a broken one is named.
        try FileManager.default.createDirectory(atPath: "\(folder.runs)/20261201-000000-4/logs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(folder.runs)/20261127-000000-0", withIntermediateDirectories: true)
        try "{".write(toFile: "\(folder.runs)/20261127-000000-0/results.json", atomically: true, encoding: .utf8)

        let history = RunHistory.load(runs: folder.runs)
        #expect(history.runs.map(\.run.id) == ["20261128-000000-1", "20261129-000000-2", "20261130-000000-3"])
        #expect(history.skipped.count == 1 && history.skipped[0].hasPrefix("20261127-000000-0: "))
        let arm = try #require(history.cells.first { $0.cell == Self.arm })
        #expect(arm.entries.map(\.cell.standing) == [.pass, .fail, .pass])

        let text = HistoryReport.text(history)
        #expect(text.contains("\(Self.x86): 3 pass, 0 unstable, 0 fail in 3 run(s)"))
        #expect(text.contains("\n  linux: 0.90 s -> 2.00 s over 3 runs (min 0.90 s, max 2.00 s)"))
        #expect(text.contains("\n  20261129-000000-2  panic "))
        #expect(text.contains("image: 1.20 MB -> 1.20 MB over 3 runs"))

        let html = HistoryReport.html(history)
        #expect(html.contains("<polyline") && html.contains("<svg"))
        for external in ["<script", "src=\"http", "href=\"http", "<link", "url("] { #expect(!html.contains(external), "\(external)") }
        #expect(html.components(separatedBy: "<h2>").count - 1 == 3)  // two cells and the unreadable run

        // A run without a cell is a grey gap on that cell's row, on the same axis as the others.
        var partial = sampleResults()
        partial.cells = [partial.cells[0]]
        try folder.write(partial, id: "20261130-100000-5")
        let gapped = HistoryReport.html(RunHistory.load(runs: folder.runs))
        #expect(gapped.contains("<title>20261130-100000-5: not in this run</title>"))

        let narrowed = RunHistory.load(runs: folder.runs, last: 2, cells: [Self.arm])
        #expect(narrowed.runs.map(\.run.id) == ["20261129-000000-2", "20261130-000000-3"])
        #expect(narrowed.cells.map(\.cell) == [Self.arm])
    }

    @Test func historyCommandWritesTheTextAndThePage() async throws {
        let folder = RunsFolder()
        defer { folder.remove() }
        for day in 1...3 { try folder.write(sampleResults(linuxAt: 0.8 + Double(day) / 10), id: "2026112\(day)-000000-\(day)") }
        #expect(await KmatrixMain.run(["history", "--cache", folder.root, "--last", "2"]) == 0)
        let page = try String(contentsOfFile: "\(folder.root)/history.html", encoding: .utf8)
        #expect(page.contains("2 run(s), 20261122-000000-2 to 20261123-000000-3"))
        #expect(await KmatrixMain.run(["history", "--cache", folder.root, "--cell", "no/such/cell/here"]) == 2)
        #expect(await KmatrixMain.run(["history", "--cache", folder.root, "--last", "0"]) == 2)
    }
}
