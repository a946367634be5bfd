import Foundation

/// `kmatrix ci github|gitlab`: the selected cells as a CI system's job matrix, one job per
/// cell running `kmatrix run --cell ID --out results/<dir>`, each result uploaded, and a
/// last job that downloads them all, runs `kmatrix merge` and publishes the reports. The
/// CI system schedules; kmatrix only plans and merges.
public struct CIWorkflow: Sendable {
    /// GitHub Actions takes at most 256 jobs from one `strategy.matrix`.
    public static let githubMatrixLimit = 256
    /// GitLab takes at most 200 jobs from one `parallel:matrix`.
    public static let gitlabMatrixLimit = 200

    /// The cells, as `kmatrix plan` and `run --cell` name them.
    public var cells: [String]
    /// Arguments every kmatrix command line in the workflow carries (`--matrix FILE`).
    public var projectArguments: [String]
    /// The matrix file the workflow was made from, for its header.
    public var matrixName: String
    /// GitHub: the `runs-on` label; GitLab: the runner tag (nil: none).
    public var runner: String?

    public init(cells: [String], projectArguments: [String] = [], matrixName: String = "matrix.json", runner: String? = nil) {
        self.cells = cells
        self.projectArguments = projectArguments
        self.matrixName = matrixName
        self.runner = runner
    }

    /// A folder and artifact name for a cell: its id with `.` for `/` (names in a cell id
    /// never hold a `.`, so no two cells share one; artifact names may not hold a `/`).
    public static func resultName(_ cell: String) -> String { cell.replacingOccurrences(of: "/", with: ".") }

    /// `count` items in chunks of at most `size`.
    static func chunks<T>(_ items: [T], of size: Int) -> [[T]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }

    var extra: String { projectArguments.map(Self.shellWord).map { " " + $0 }.joined() }

    /// How a job gets kmatrix: the README's bootstrap (Debian packages, sources) and a release build.
    static let setup = "Scripts/bootstrap && swift build -c release"
    static let binary = ".build/release/kmatrix"

    // MARK: GitHub Actions

    public var github: String {
        let groups = Self.chunks(cells, of: Self.githubMatrixLimit)
        let jobNames = groups.indices.map { groups.count == 1 ? "cells" : "cells-\($0 + 1)" }
        let runsOn = Self.quoted(runner ?? "self-hosted")
        var out = header("kmatrix ci github")
        out += """
            name: kmatrix
            on:
              workflow_dispatch:
              schedule:
                - cron: '30 2 * * *'
            jobs:

            """
        for (index, group) in groups.enumerated() {
            out += """
                  \(jobNames[index]):
                    name: ${{ matrix.cell }}
                    runs-on: \(runsOn)
                    strategy:
                      fail-fast: false
                      matrix:
                        include:

                """
            for cell in group {
                out += "          - cell: \(Self.quoted(cell))\n            result: \(Self.quoted(Self.resultName(cell)))\n"
            }
            out += """
                    steps:
                      - uses: actions/checkout@v4
                      - name: build kmatrix
                        run: \(Self.setup)
                      - name: run the cell
                        run: \(Self.binary) run --plain\(extra) --cell "${{ matrix.cell }}" --out "results/${{ matrix.result }}"
                      - name: upload its result
                        if: always()
                        uses: actions/upload-artifact@v4
                        with:
                          name: kmatrix-cell-${{ matrix.result }}
                          path: results/${{ matrix.result }}
                          if-no-files-found: error

                """
        }
        out += """
              merge:
                needs: [\(jobNames.joined(separator: ", "))]
                if: always()
                runs-on: \(runsOn)
                steps:
                  - uses: actions/checkout@v4
                  - name: build kmatrix
                    run: \(Self.setup)
                  - name: download every cell's result
                    uses: actions/download-artifact@v4
                    with:
                      pattern: kmatrix-cell-*
                      path: results
                  - name: merge
                    run: \(Self.binary) merge results/* --out merged
                  - name: publish the Markdown report
                    if: always()
                    run: cat merged/report.md >> "$GITHUB_STEP_SUMMARY"
                  - name: upload the merged run (report.html, junit.xml, results.json, logs)
                    if: always()
                    uses: actions/upload-artifact@v4
                    with:
                      name: kmatrix-report
                      path: merged

            """
        return out
    }

    // MARK: GitLab CI

    /// Up to 200 cells: one pipeline. Above that, a parent that generates the pipeline
    /// (`kmatrix ci gitlab --child`) in a job and triggers it as a child pipeline, which
    /// holds one job per 200 cells and the merge.
    public var gitlab: String {
        cells.count > Self.gitlabMatrixLimit ? gitlabParent : gitlabCells
    }

    /// The pipeline of cell jobs and the merge, whatever the number of cells.
    public var gitlabCells: String {
        let groups = Self.chunks(cells, of: Self.gitlabMatrixLimit)
        var out = header("kmatrix ci gitlab" + (cells.count > Self.gitlabMatrixLimit ? " --child" : ""))
        out += """
            stages: [cells, merge]

            .kmatrix-cell:
              stage: cells\(tags)
              script:
                - \(Self.setup)
                - \(Self.binary) run --plain\(extra) --cell "$KMATRIX_CELL" --out "results/$KMATRIX_RESULT"
              artifacts:
                when: always
                paths:
                  - results/


            """
        for (index, group) in groups.enumerated() {
            out += """
                \(groups.count == 1 ? "cells" : "cells-\(index + 1)"):
                  extends: .kmatrix-cell
                  parallel:
                    matrix:

                """
            for cell in group {
                out += "      - KMATRIX_CELL: \(Self.quoted(cell))\n        KMATRIX_RESULT: \(Self.quoted(Self.resultName(cell)))\n"
            }
            out += "\n"
        }
        out += """
            merge:
              stage: merge
              when: always\(tags)
              script:
                - \(Self.setup)
                - \(Self.binary) merge results/* --out merged
              artifacts:
                when: always
                expose_as: 'kmatrix report'
                paths:
                  - merged/
                reports:
                  junit: merged/junit.xml

            """
        return out
    }

    var gitlabParent: String {
        var out = header("kmatrix ci gitlab")
        out += """
            # \(cells.count) cells are more than one parallel:matrix takes (\(Self.gitlabMatrixLimit)): a job writes
            # the pipeline of cell jobs (`kmatrix ci gitlab --child`) and runs it as a child pipeline.
            stages: [generate, cells]

            generate:
              stage: generate\(tags)
              script:
                - \(Self.setup)
                - \(Self.binary) ci gitlab --child\(extra)\(selection) > kmatrix-cells.yml
              artifacts:
                paths:
                  - kmatrix-cells.yml

            cells:
              stage: cells
              trigger:
                include:
                  - artifact: kmatrix-cells.yml
                    job: generate
                strategy: depend

            """
        return out
    }

    /// The parent's child must hold the same cells: they are named again, unless every
    /// cell of the matrix was selected.
    public var selectedAll = false
    var selection: String {
        selectedAll ? "" : cells.map { " --cell \(Self.shellWord($0))" }.joined()
    }

    var tags: String { runner.map { "\n  tags: [\(Self.quoted($0))]" } ?? "" }

    func header(_ command: String) -> String {
        "# Made by `\(command)` from \(matrixName) (\(cells.count) \(cells.count == 1 ? "cell" : "cells")): run it again rather than editing this file.\n"
    }

    /// A YAML single-quoted scalar.
    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

    /// A word for a POSIX shell line: bare when it is safe, else single-quoted.
    static func shellWord(_ text: String) -> String {
        let safe = !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/._-=:+,".contains($0)) }
        return safe ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
