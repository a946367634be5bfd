import Foundation
import KmatrixCore

/// A LAVA job log: what `lava-run` prints on standard error, one entry a line
/// (`{"dt": "...", "lvl": "target", "msg": "..."}`), and what a LAVA server keeps as the job's
/// `output.yaml` (the same lines, each behind `- `). The entries are YAML flow mappings
/// written by lava_common.log.dump with every scalar double-quoted, so a small reader of
/// that form is enough; JSON is a subset of it. Pure: no I/O.
public struct LavaLog: Sendable {
    /// One value of an entry: every scalar is text (LAVA quotes them all).
    public indirect enum Value: Sendable, Equatable {
        case text(String)
        case map([String: Value])
        case list([Value])

        public var text: String? { if case .text(let text) = self { return text } else { return nil } }
        public subscript(key: String) -> Value? { if case .map(let map) = self { return map[key] } else { return nil } }
    }

    public struct Entry: Sendable, Equatable {
        /// `dt`, UTC.
        public var time: Date?
        /// `lvl`: target (console), feedback (console of another namespace, or read after a
        /// test), results, info, debug, error, exception, input.
        public var level: String
        public var message: Value
    }

    /// One `results` entry: a test case of a test definition (`lava` is LAVA's own).
    public struct Result: Sendable, Equatable {
        public var definition: String
        public var testCase: String
        public var result: String
        public var fields: [String: Value]
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Reads the log's text; a line that is not a LAVA log entry is bad input naming `file` and the line.
    public static func parse(_ text: String, file: String) throws(KmatrixError) -> LavaLog {
        var entries: [Entry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            while line.last == "\r" || line.last == " " { line = line.dropLast() }
            if line.isEmpty { continue }
            if line.hasPrefix("- ") { line = line.dropFirst(2) }
            var reader = FlowReader(Array(line.unicodeScalars))
            guard let value = reader.document(), case .map(let map) = value,
                  let level = map["lvl"]?.text, let message = map["msg"] else {
                let shown = line.count > 80 ? line.prefix(80) + "..." : line
                throw .badInput("\(file) line \(index + 1): not a LAVA log entry ({\"dt\": ..., \"lvl\": ..., \"msg\": ...}): \(shown)")
            }
            entries.append(Entry(time: map["dt"]?.text.flatMap(Self.date), level: level, message: message))
        }
        return LavaLog(entries: entries)
    }

    /// `2026-12-07T07:14:00.346141`: LAVA's `datetime.utcnow().isoformat()` (UTC, no zone).
    static func date(_ text: String) -> Date? {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard let seconds = parts.first, let whole = try? Date(seconds + "Z", strategy: .iso8601) else { return nil }
        let fraction = parts.count > 1 ? Double("0." + parts[1].prefix { $0.isNumber }) ?? 0 : 0
        return whole.addingTimeInterval(fraction)
    }

    /// Every `results` entry, in order.
    public var results: [Result] {
        entries.compactMap { entry in
            guard entry.level == "results", case .map(let map) = entry.message,
                  let definition = map["definition"]?.text, let testCase = map["case"]?.text, let result = map["result"]?.text else { return nil }
            return Result(definition: definition, testCase: testCase, result: result, fields: map)
        }
    }

    /// LAVA's verdict on the whole job (`{"definition": "lava", "case": "job"}`), the last
    /// entry a finished job writes; nil when the log stops before it.
    public var jobResult: Result? { results.last { $0.definition == "lava" && $0.testCase == "job" } }

    /// The files LAVA deployed, by label (`kernel`, `dtb`, `ramdisk`), with the sha256 it
    /// computed on download.
    public var deployedFiles: [String: String] {
        var files: [String: String] = [:]
        for result in results where result.definition == "lava" {
            if let extra = result.fields["extra"], let label = extra["label"]?.text, let sha256 = extra["sha256sum"]?.text {
                files[label] = sha256
            }
        }
        return files
    }

    /// When LAVA started QEMU (its `execute-qemu` result), else the first console line:
    /// the zero of the boot's phase times.
    public var bootStarted: Date? {
        let qemu = entries.first { $0.level == "results" && $0.message["case"]?.text == "execute-qemu" }
        return qemu?.time ?? console.first?.time
    }

    /// The device's serial console as LAVA read it: `target` lines, and `feedback` lines
    /// (what arrived while no action was reading, such as the guest's test output after the
    /// monitor ended), in order.
    public var console: [(time: Date?, line: String)] {
        entries.compactMap { entry in
            guard entry.level == "target" || entry.level == "feedback", let line = entry.message.text else { return nil }
            return (entry.time, line)
        }
    }

    /// A field of the extra data of LAVA's own result `testCase` (`execute-qemu`'s `qemu_version`).
    public func extra(of testCase: String, _ key: String) -> String? {
        results.last { $0.definition == "lava" && $0.testCase == testCase }?.fields["extra"]?[key]?.text
    }
}

extension LavaLog {
    /// The console through kmatrix's own classifier (`ConsoleWatch` and `BootVerdict`, as
    /// `kmatrix boot` judges a QEMU console), as a boot record whose log is `logPath`. The
    /// console had ended when LAVA wrote its log: an unfinished boot is judged as one whose
    /// QEMU exited, at the time of the last entry.
    public func consoleRecord(target: Target, rootDevice: RootDeviceSpec, expected: MarkerExpectation, timeouts: BootTimeouts,
                              marker: String = BootMarker.prefix, awaitsTests: Bool, logPath: String) -> BootRecord {
        let start = bootStarted ?? entries.first?.time
        func seconds(_ time: Date?) -> Double { max(0, (time ?? start ?? Date()).timeIntervalSince(start ?? time ?? Date())) }
        var watch = ConsoleWatch(marker: marker, firmwareBanner: target.qemu.firmware?.banner, expected: expected)
        if awaitsTests { watch.guestTests = GuestTestWatch() }
        var verdict: BootVerdict?
        var decidedAt: Double?
        for (time, line) in console {
            let now = seconds(time)
            watch.feed(Array((line + "\n").utf8), at: now)
            if verdict == nil, let early = BootVerdict.judge(watch, now: now, timeouts: timeouts) {
                // What kmatrix would have decided as the line arrived; later lines do not change it.
                if early.outcome == .pass || early.outcome == .panic || early.outcome == .initFailed || early.outcome == .hang
                    || early.outcome == .markerMismatch {
                    verdict = early
                    decidedAt = now
                }
            }
        }
        let end = seconds(entries.last?.time)
        if verdict == nil {
            verdict = BootVerdict.judge(watch, now: end, timeouts: timeouts,
                                        exit: QemuExit(status: "console closed under LAVA", failed: false, standardError: ""))
        }
        let final = verdict ?? BootVerdict(outcome: .timeout, reason: "the LAVA log ends before an outcome", evidenceAt: nil)
        var record = BootRecord(outcome: final.outcome, reason: final.reason, phases: watch.phases, seconds: end,
                                reportedAfter: final.outcome.passed ? nil : final.evidenceAt.map { max(0, (decidedAt ?? end) - $0) },
                                accelerator: .tcg, acceleratorReason: "booted by LAVA", qemuVersion: extra(of: "execute-qemu", "qemu_version"),
                                command: [], logPath: logPath, qemuStandardError: "", qemuTermination: nil,
                                kernelRelease: watch.kernelRelease, marker: watch.markerFields,
                                trace: watch.failure?.trace ?? (final.outcome.passed ? [] : watch.lastOops?.lines ?? []),
                                lastLines: final.outcome.passed ? [] : Array(watch.lastLines.suffix(25)))
        record.expected = expected
        record.kernelWarnings = watch.warnings
        record.kernelPhases = watch.kernelPhases
        record.slowestInitcalls = watch.slowestInitcalls
        return record
    }

    /// The console lines as a boot log (what `boot.log` holds for a local boot).
    public var consoleText: String { console.map { $0.line + "\n" }.joined() }
}

/// Reads one YAML flow value as lava_common.log.dump writes it: `{k: v, ...}`, `[v, ...]`,
/// double-quoted scalars with YAML's escapes, an optional tag before a scalar (`! "3033096"`),
/// and plain scalars (JSON's numbers and literals).
struct FlowReader {
    let scalars: [Unicode.Scalar]
    var index = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    /// The whole line as one value; nil when it is not one.
    mutating func document() -> LavaLog.Value? {
        guard let value = value() else { return nil }
        skipSpaces()
        return index == scalars.count ? value : nil
    }

    var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    mutating func skipSpaces() { while let c = current, c == " " || c == "\t" { index += 1 } }

    mutating func value() -> LavaLog.Value? {
        skipSpaces()
        guard let c = current else { return nil }
        switch c {
        case "{":
            index += 1
            var map: [String: LavaLog.Value] = [:]
            skipSpaces()
            if current == "}" { index += 1; return .map(map) }
            while true {
                guard let key = value()?.text else { return nil }
                skipSpaces()
                guard current == ":" else { return nil }
                index += 1
                guard let item = value() else { return nil }
                map[key] = item
                skipSpaces()
                if current == "," { index += 1; continue }
                if current == "}" { index += 1; return .map(map) }
                return nil
            }
        case "[":
            index += 1
            var list: [LavaLog.Value] = []
            skipSpaces()
            if current == "]" { index += 1; return .list(list) }
            while true {
                guard let item = value() else { return nil }
                list.append(item)
                skipSpaces()
                if current == "," { index += 1; continue }
                if current == "]" { index += 1; return .list(list) }
                return nil
            }
        case "!":
            // A tag (`!`, `!!int`): the scalar after it is read as text.
            while let c = current, c != " " { index += 1 }
            return value()
        case "\"":
            index += 1
            return quoted().map(LavaLog.Value.text)
        default:
            // A plain scalar ends at a flow indicator, or at `: ` (a key's end).
            let start = index
            while let c = current {
                if ",{}[]".unicodeScalars.contains(c) { break }
                if c == ":", index + 1 == scalars.count || scalars[index + 1] == " " { break }
                index += 1
            }
            let text = String(String.UnicodeScalarView(scalars[start..<index])).trimmingCharacters(in: .whitespaces)
            return text.isEmpty ? nil : .text(text)
        }
    }

    /// YAML's one-character escapes (`\n`, `\t`, ...) and what they stand for.
    static let simpleEscapes: [Unicode.Scalar: Unicode.Scalar] = [
        "0": "\u{0}", "a": "\u{7}", "b": "\u{8}", "t": "\t", "\t": "\t", "n": "\n", "v": "\u{B}", "f": "\u{C}", "r": "\r",
        "e": "\u{1B}", " ": " ", "\"": "\"", "/": "/", "\\": "\\", "N": "\u{85}", "_": "\u{A0}", "L": "\u{2028}", "P": "\u{2029}",
    ]

    /// The rest of a double-quoted scalar, its closing quote consumed.
    mutating func quoted() -> String? {
        var out = String.UnicodeScalarView()
        while let c = current {
            index += 1
            if c == "\"" { return String(out) }
            guard c == "\\" else { out.append(c); continue }
            guard let e = current else { return nil }
            index += 1
            if let scalar = Self.simpleEscapes[e] { out.append(scalar); continue }
            let digits = e == "x" ? 2 : e == "u" ? 4 : e == "U" ? 8 : 0
            guard digits > 0, index + digits <= scalars.count,
                  let code = UInt32(String(String.UnicodeScalarView(scalars[index..<index + digits])), radix: 16),
                  let scalar = Unicode.Scalar(code) else { return nil }
            index += digits
            out.append(scalar)
        }
        return nil
    }
}
