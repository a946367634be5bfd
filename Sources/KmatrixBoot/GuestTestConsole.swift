import Foundation
import KmatrixCore

/// Follows the guest's test run on the console after the marker (`GuestTestProtocol`):
/// the boot is over when the run's end line with the run's nonce arrives.
public struct GuestTestWatch: Sendable, Equatable {
    public private(set) var nonce: String?
    public private(set) var ended = false

    public init() {}

    mutating func take(_ line: String) {
        if nonce == nil, let words = GuestTestLines.words(after: GuestTestProtocol.runBegin, in: line), let first = words.first {
            nonce = first
        } else if let nonce, let words = GuestTestLines.words(after: GuestTestProtocol.runEnd, in: line), words.first == nonce {
            ended = true
        }
    }
}

/// What a cell's tests came to, from its console log: KUnit's KTAP before the marker,
/// the scripts' begin/output/end lines after it.
public enum GuestTestLines {
    /// What the cell expected to run.
    public struct Expected: Sendable {
        /// KUnit suites of the cell (their results are the kernel's KTAP).
        public var kunitSuites: [String]
        /// `(suite, script name)` in the order init runs them.
        public var scripts: [(suite: String, name: String)]

        public init(kunitSuites: [String], scripts: [(suite: String, name: String)]) {
            self.kunitSuites = kunitSuites
            self.scripts = scripts
        }
    }

    public static func results(log raw: [String], expected: Expected, marker: String = BootMarker.prefix) -> [GuestTestResult] {
        // The console's line ends are CRLF (the tty's ONLCR).
        let lines = raw.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        let markerAt = lines.firstIndex { $0.contains(marker) }
        var results: [GuestTestResult] = []
        if !expected.kunitSuites.isEmpty {
            // Which option enabled which KUnit suite is not in the KTAP: one cell's KUnit suites report together.
            let suite = expected.kunitSuites.joined(separator: "+")
            var parser = KTAPParser(suite: suite)
            for line in lines[..<(markerAt ?? lines.endIndex)] { parser.feed(line) }
            parser.finish(reason: markerAt == nil ? "the kernel stopped before init" : "the kernel started init before the suite ended")
            results += parser.results
            if !parser.sawStream {
                results.append(GuestTestResult(suite: suite, name: "(ktap)", status: .notRun,
                                               reason: "the kernel printed no KTAP: its KUnit tests did not run"))
            }
        }
        guard !expected.scripts.isEmpty else { return results }
        let after = markerAt.map { Array(lines[$0...]) } ?? []
        results += scriptResults(after, expected: expected.scripts)
        return results
    }

    static func scriptResults(_ lines: [String], expected: [(suite: String, name: String)]) -> [GuestTestResult] {
        let p = GuestTestProtocol.self
        var nonce: String?
        var reported: [String: [GuestTestResult]] = [:]
        var current: (suite: String, name: String, output: [String])?
        for line in lines {
            guard let nonce else {
                nonce = words(after: p.runBegin, in: line)?.first
                continue
            }
            if let w = words(after: p.testBegin, in: line), w.count >= 3, w[0] == nonce {
                current = (w[1], w[2], [])
            } else if let range = line.range(of: "\(p.output) \(nonce) "), current != nil {
                current?.output.append(String(line[range.upperBound...]))
            } else if line.range(of: "\(p.output) \(nonce)") != nil, current != nil {
                current?.output.append("")   // an empty output line
            } else if let w = words(after: p.testEnd, in: line), w.count >= 3, w[0] == nonce, let run = current, w[1] == run.suite, w[2] == run.name,
                      let end = line.range(of: p.testEnd) {
                reported["\(run.suite)/\(run.name)"] = scriptResult(run.suite, run.name, fields: BootMarker.fields(of: line, after: end), output: run.output)
                current = nil
            }
        }
        var results: [GuestTestResult] = []
        for script in expected {
            if let done = reported["\(script.suite)/\(script.name)"] { results += done; continue }
            let running = current.map { $0.suite == script.suite && $0.name == script.name } ?? false
            let why = nonce == nil ? "the guest never started its tests"
                : running ? "the guest stopped, or the boot's deadline came, while it ran" : "the guest stopped before it ran"
            results.append(GuestTestResult(suite: script.suite, name: script.name, status: .notRun, reason: why,
                                           output: running ? current?.output ?? [] : []))
        }
        return results
    }

    /// The script's own result (its exit status) and, when it printed KTAP/TAP, one result per test.
    static func scriptResult(_ suite: String, _ name: String, fields: [String: String], output: [String]) -> [GuestTestResult] {
        let status = fields["status"].flatMap(Int.init) ?? -1
        let seconds = fields["seconds"].flatMap(Double.init) ?? 0
        let limit = fields["limit"].flatMap(Double.init) ?? .infinity
        var reason: String?
        if status == GuestTestProtocol.killedStatus, seconds >= limit - 0.5 {
            reason = String(format: "killed at its time limit of %.0f s", limit)
        } else if status != 0 {
            reason = "exit status \(status)"
        }
        if let expected = fields["lines"].flatMap(Int.init), expected != output.count {
            reason = (reason.map { $0 + "; " } ?? "") + "\(expected - output.count) output line(s) lost among kernel messages"
        }
        var results = [GuestTestResult(suite: suite, name: name, status: status == 0 ? .pass : .fail, reason: reason,
                                       output: Array(output.suffix(KTAPParser.outputLimit)))]
        let tap = KTAPParser.parse(output.joined(separator: "\n"), suite: suite)
        if tap.sawStream {
            results += tap.results.map { var r = $0; r.name = "\(name).\(r.name)"; return r }
        }
        return results
    }

    /// The words after `prefix` on a line, wherever the prefix starts (a kernel message may precede it).
    static func words(after prefix: String, in line: String) -> [String]? {
        guard let range = line.range(of: prefix + " ") else { return nil }
        var rest = line[range.upperBound...]
        // A kernel message written into the middle of the line ends the fields (printk's timestamp).
        if let kernel = rest.range(of: #"\[ *[0-9]+\.[0-9]+\]"#, options: .regularExpression) { rest = rest[..<kernel.lowerBound] }
        return rest.split(separator: " ").map(String.init)
    }
}
