import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixScheduler

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Per cell, its outcome, boot phases, image size and warnings over the runs in the cache.",
        discussion: "Reads <cache>/runs/*/results.json, prints a table per cell and writes history.html (inline SVG trend lines, no script).")

    @Option(help: "kmatrix's cache folder (default: $KMATRIX_CACHE, else ~/.cache/kmatrix).") var cache: String?
    @Option(help: "Only the last N runs.") var last: Int?
    @Option(name: .customLong("cell"), help: "Only this cell (its id as results.json names it; repeatable).") var cells: [String] = []
    @Option(help: "Where to write history.html (default: <cache>/history.html).") var output: String?
    @Flag(help: "Print JSON (schema kmatrix-history/1) instead of the tables; history.html is written all the same.") var json = false

    func validate() throws {
        if let last, last < 1 { throw ValidationError("--last must be 1 or more (got \(last))") }
    }

    func run() async throws {
        let cwd = FileManager.default.currentDirectoryPath
        let workspace = Workspace(root: cache.map { absolutePath($0, relativeTo: cwd) } ?? Workspace.defaultRoot())
        let history = RunHistory.load(runs: workspace.runs, last: last, cells: cells)
        if history.runs.isEmpty, !cells.isEmpty {
            throw KmatrixError.badInput("--cell: no run in \(workspace.runs) has \(cells.joined(separator: ", "))")
        }
        if !json { print(HistoryReport.text(history), terminator: "") }
        let file = output.map { absolutePath($0, relativeTo: cwd) } ?? "\(workspace.root)/history.html"
        do { try Data(HistoryReport.html(history).utf8).write(to: URL(fileURLWithPath: file)) } catch {
            throw KmatrixError.host("cannot write \(file)", underlying: error)
        }
        if json {
            var listing = HistoryReport.listing(history)
            listing.html = file
            try printJSON(listing, schema: "kmatrix-history/1")
        } else {
            print("history written to \(file)")
        }
    }
}
