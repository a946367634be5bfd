import Foundation

/// The result of one test run in the guest: a KUnit case, a TAP test of a script, or a
/// script itself. `name` is the path from the outermost suite (`list-kernel-test.list_add`).
public struct GuestTestResult: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable, CaseIterable, Comparable {
        case pass, fail, skip
        /// Planned but never reported: the suite crashed, bailed out or timed out first.
        case notRun = "not-run"

        /// Worst first: the order of a grid's cells and of "what decided".
        var rank: Int { switch self { case .fail: 0; case .notRun: 1; case .skip: 2; case .pass: 3 } }
        public static func < (a: Status, b: Status) -> Bool { a.rank < b.rank }
    }

    /// The suite this test belongs to in the matrix (`kunit-basic`, `shell-basic`).
    public var suite: String
    public var name: String
    public var status: Status
    /// The directive's text (`# SKIP reason`) or why it did not run.
    public var reason: String?
    /// Diagnostic and output lines printed for it, bounded.
    public var output: [String]

    public init(suite: String, name: String, status: Status, reason: String? = nil, output: [String] = []) {
        self.suite = suite
        self.name = name
        self.status = status
        self.reason = reason
        self.output = output
    }

    /// `suite/name`: one test's identity across cells and runs.
    public var id: String { "\(suite)/\(name)" }
}

/// A KTAP (version 1) or TAP (version 13/14) stream read line by line, as the kernel or a
/// script prints it: nested subtests by indentation, `ok`/`not ok`, `# SKIP`/`# TODO`,
/// diagnostics, `Bail out!`. Lines that are not KTAP (other kernel messages, printk
/// timestamps) are skipped; tests a plan announced but no result line reported are
/// `not-run`, never passed. Pure: feed lines, then `finish()`.
public struct KTAPParser: Sendable {
    /// One open level of nesting: a document or a subtest.
    struct Level: Sendable {
        var indent: Int
        var name: String?
        var planned: Int?
        var reported = 0
        /// Results of the finished children, leaves flattened.
        var results: [GuestTestResult] = []
        /// Diagnostics since the last result, for the next one.
        var pending: [String] = []
        var path: [String]
    }

    public let suite: String
    public private(set) var results: [GuestTestResult] = []
    /// Whether any KTAP/TAP version line or plan was seen.
    public private(set) var sawStream = false
    private var levels: [Level] = []
    private var subtestName: String?
    static let outputLimit = 30

    public init(suite: String) { self.suite = suite }

    /// Parses a whole text (a script's output) in one go.
    public static func parse(_ text: String, suite: String) -> KTAPParser {
        var parser = KTAPParser(suite: suite)
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) { parser.feed(String(line)) }
        parser.finish()
        return parser
    }

    public mutating func feed(_ raw: String) {
        let line = Self.withoutTimestamp(raw.replacingOccurrences(of: "\r", with: ""))
        let indent = line.prefix(while: { $0 == " " || $0 == "\t" }).reduce(0) { $0 + ($1 == "\t" ? 8 : 1) }
        let text = line.trimmingCharacters(in: .whitespaces)
        if Self.isVersion(text) {
            sawStream = true
            if let top = levels.last, indent > top.indent {
                open(indent: indent)
            } else {
                // A new document at the outer level (or a second run): close what is open.
                closeAll(reason: "a new KTAP document started before it finished")
                open(indent: indent)
            }
            return
        }
        if text.hasPrefix("# Subtest:") {
            let name = text.dropFirst("# Subtest:".count).trimmingCharacters(in: .whitespaces)
            if let top = levels.last, top.indent == indent, top.name == nil, top.reported == 0, top.planned == nil, levels.count > 1 {
                levels[levels.count - 1].name = name   // `KTAP version 1` then `# Subtest:` (KUnit's order)
            } else if let top = levels.last, indent > top.indent {
                open(indent: indent)                   // TAP 13: `# Subtest:` opens the level itself
                levels[levels.count - 1].name = name
            } else if levels.isEmpty {
                sawStream = true
                open(indent: indent)
                levels[levels.count - 1].name = name
            }
            return
        }
        guard !levels.isEmpty else { return }
        // A line at an outer indent closes the deeper levels only when it is a result.
        if let plan = Self.plan(text), let at = levels.lastIndex(where: { $0.indent == indent }) {
            sawStream = true
            if levels[at].planned == nil { levels[at].planned = plan }
            return
        }
        if let result = Self.result(text), let at = levels.lastIndex(where: { $0.indent == indent }) {
            report(result, at: at)
            return
        }
        if text.hasPrefix("Bail out!") {
            closeAll(reason: text)
            return
        }
        // Diagnostics and free text at the innermost level's indent or deeper belong to
        // the next result there; anything shallower is someone else's console line.
        // At the outer level only `#` lines count: unindented text there is usually the kernel's.
        if let top = levels.last, indent >= top.indent, !text.isEmpty, levels.count > 1 || text.hasPrefix("#") {
            if levels[levels.count - 1].pending.count < Self.outputLimit {
                levels[levels.count - 1].pending.append(text)
            }
        }
    }

    /// The stream ended: open levels are closed, their unreported tests `not-run`.
    public mutating func finish(reason: String = "the output ended before its result") {
        closeAll(reason: reason)
    }

    private mutating func open(indent: Int) {
        let path = levels.last?.prefix ?? []
        levels.append(Level(indent: indent, path: path))
    }

    private mutating func report(_ result: (ok: Bool, number: Int?, name: String, directive: String?), at index: Int) {
        // Deeper levels end here: their results belong to this test (a suite).
        var children: [GuestTestResult] = []
        while levels.count > index + 1 {
            var level = levels.removeLast()
            closeLevel(&level, reason: "its suite reported before it finished")
            children += level.results
        }
        var level = levels[index]
        level.reported = max(level.reported + 1, result.number ?? 0)
        let status: GuestTestResult.Status
        let directive = result.directive?.uppercased() ?? ""
        if directive.hasPrefix("SKIP") { status = .skip } else if directive.hasPrefix("TODO") { status = result.ok ? .pass : .skip } else {
            status = result.ok ? .pass : .fail
        }
        let reason = result.directive.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        if children.isEmpty {
            let name = (level.prefix + [result.name]).joined(separator: ".")
            level.results.append(GuestTestResult(suite: suite, name: name, status: status, reason: reason, output: level.pending))
        } else {
            // A suite that failed with every child passing failed outside its cases (init, exit): keep that visible.
            if status == .fail, !children.contains(where: { $0.status == .fail || $0.status == .notRun }) {
                let name = (level.prefix + [result.name, "(suite)"]).joined(separator: ".")
                children.append(GuestTestResult(suite: suite, name: name, status: .fail, reason: reason, output: level.pending))
            }
            level.results += children
        }
        level.pending = []
        levels[index] = level
        if index == 0, let planned = level.planned, level.reported >= planned, levels.count == 1 {
            closeAll(reason: "")
        }
    }

    private mutating func closeAll(reason: String) {
        while var level = levels.popLast() {
            closeLevel(&level, reason: reason)
            if levels.isEmpty { results += level.results } else {
                // The open subtest takes its slot in its parent's plan.
                levels[levels.count - 1].results += level.results
                levels[levels.count - 1].reported += 1
            }
        }
    }

    /// Planned tests without a result line did not run: the suite stopped (crash, timeout, bail out).
    private func closeLevel(_ level: inout Level, reason: String) {
        guard let planned = level.planned, level.reported < planned else { return }
        let prefix = level.prefix
        for number in (level.reported + 1)...planned {
            let name = (prefix + ["#\(number)"]).joined(separator: ".")
            level.results.append(GuestTestResult(suite: suite, name: name, status: .notRun,
                                                 reason: reason.isEmpty ? nil : reason,
                                                 output: number == level.reported + 1 ? level.pending : []))
        }
        level.reported = planned
    }

    /// `[    1.234567] ` (printk's time) removed with the single space after it.
    static func withoutTimestamp(_ line: String) -> String {
        guard ConsoleWatch.hasPrintkTime(line), let close = line.firstIndex(of: "]") else { return line }
        var rest = line[line.index(after: close)...]
        if rest.first == " " { rest = rest.dropFirst() }
        return String(rest)
    }

    static func isVersion(_ text: String) -> Bool {
        text.hasPrefix("KTAP version ") || text.hasPrefix("TAP version ")
    }

    /// `1..N`.
    static func plan(_ text: String) -> Int? {
        guard text.hasPrefix("1..") else { return nil }
        let digits = text.dropFirst(3).prefix(while: \.isNumber)
        return Int(digits)
    }

    /// `ok 1 name # SKIP why`, `not ok 2 - name`, `ok 3`.
    static func result(_ text: String) -> (ok: Bool, number: Int?, name: String, directive: String?)? {
        let ok: Bool
        var rest: Substring
        if text.hasPrefix("ok ") || text == "ok" { ok = true; rest = text.dropFirst(2) } else if text.hasPrefix("not ok") {
            ok = false; rest = text.dropFirst(6)
        } else { return nil }
        rest = rest.drop(while: { $0 == " " })
        let digits = rest.prefix(while: \.isNumber)
        let number = Int(digits)
        rest = rest.dropFirst(digits.count).drop(while: { $0 == " " })
        if rest.hasPrefix("- ") { rest = rest.dropFirst(2) }
        var directive: String?
        if let hash = rest.range(of: " # ") ?? (rest.hasPrefix("# ") ? rest.range(of: "# ") : nil) {
            directive = String(rest[hash.upperBound...])
            rest = rest[..<hash.lowerBound]
        }
        let name = rest.trimmingCharacters(in: .whitespaces)
        return (ok, number, name.isEmpty ? "#\(number ?? 0)" : name, directive)
    }
}

extension KTAPParser.Level {
    /// The names this level's tests are filed under: its parents' and its own.
    var prefix: [String] { path + (name.map { [$0] } ?? []) }
}
