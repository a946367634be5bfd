import Foundation

/// One thing the check found.
public struct DeviceTreeFinding: Sendable, Codable, Equatable {
    public enum Severity: String, Sendable, Codable, Comparable, CaseIterable {
        case error, warning, info
        var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
    }

    public enum Check: String, Sendable, Codable, CaseIterable {
        case structure, machine, console, drivers, memory
    }

    /// One step of a dependency chain: the node reached and the property that led to it
    /// (nil for the node the chain starts from).
    public struct Link: Sendable, Codable, Equatable {
        public var via: String?
        public var node: String
        public var compatibles: [String]

        public init(via: String?, node: String, compatibles: [String]) {
            self.via = via
            self.node = node
            self.compatibles = compatibles
        }
    }

    public var severity: Severity
    public var check: Check
    /// The node the finding is about, when there is one.
    public var node: String?
    public var compatibles: [String]
    public var reason: String
    /// For a missing provider: from the node the boot needs to the node without a driver.
    public var chain: [Link]

    public init(_ severity: Severity, _ check: Check, node: String? = nil, compatibles: [String] = [],
                reason: String, chain: [Link] = []) {
        self.severity = severity
        self.check = check
        self.node = node
        self.compatibles = compatibles
        self.reason = reason
        self.chain = chain
    }

    /// `/a/timer@11000 (arm,sp804) -> clocks -> /a/sysctl@1000 (arm,sp810)`.
    public var chainText: String {
        chain.map { link in
            let node = link.compatibles.isEmpty ? link.node : "\(link.node) (\(link.compatibles.joined(separator: ", ")))"
            return link.via.map { "\($0) -> \(node)" } ?? node
        }.joined(separator: " -> ")
    }

    /// One line for people.
    public var text: String {
        var line = "\(severity.rawValue.uppercased()) [\(check.rawValue)]"
        if chain.count > 1 {
            line += " \(chainText): \(reason)"
        } else if let node {
            line += " \(node)" + (compatibles.isEmpty ? "" : " (\(compatibles.joined(separator: ", ")))") + ": \(reason)"
        } else {
            line += " \(reason)"
        }
        return line
    }
}

/// The result of checking one DTB: what was checked against what, and the findings.
public struct DeviceTreeReport: Sendable, Codable, Equatable {
    public var dtb: String
    public var target: String?
    public var console: String?
    /// The vmlinux whose compatibles were used, when known.
    public var kernel: String?
    /// The root node's compatibles (empty when the blob could not be read).
    public var rootCompatibles: [String]
    /// How many compatibles the kernel offered (nil: no kernel, driver checks skipped).
    public var kernelCompatibleCount: Int?
    public var findings: [DeviceTreeFinding]

    public init(dtb: String, target: String?, console: String?, kernel: String? = nil, rootCompatibles: [String] = [],
                kernelCompatibleCount: Int? = nil, findings: [DeviceTreeFinding] = []) {
        self.dtb = dtb
        self.target = target
        self.console = console
        self.kernel = kernel
        self.rootCompatibles = rootCompatibles
        self.kernelCompatibleCount = kernelCompatibleCount
        self.findings = findings
    }

    /// No finding of error severity.
    public var passed: Bool { !findings.contains { $0.severity == .error } }
    public var errors: [DeviceTreeFinding] { findings.filter { $0.severity == .error } }
    public var warnings: [DeviceTreeFinding] { findings.filter { $0.severity == .warning } }

    /// Devices with no built-in driver that the boot does not need (`info`).
    public var notNeededToBoot: [DeviceTreeFinding] {
        findings.filter { $0.check == .drivers && $0.reason == DeviceTreeRules.notNeededToBoot.reason }
    }

    /// What a report shows: errors and warnings, and the devices not needed to boot as one
    /// counted `info` line (their nodes listed in it), so real warnings stand out.
    public var reportedFindings: [DeviceTreeFinding] {
        var out = findings.filter { $0.severity != .info }
        if let line = notNeededToBootLine { out.append(line) }
        return out
    }

    var notNeededToBootLine: DeviceTreeFinding? {
        let nodes = notNeededToBoot.compactMap(\.node)
        guard !nodes.isEmpty else { return nil }
        let shown = nodes.prefix(6).joined(separator: ", ") + (nodes.count > 6 ? ", ..." : "")
        return DeviceTreeFinding(.info, .drivers, reason: "\(nodes.count) device(s) with \(DeviceTreeRules.notNeededToBoot.reason): \(shown)")
    }

    enum CodingKeys: String, CodingKey {
        case dtb, target, console, kernel, rootCompatibles, kernelCompatibleCount, findings, passed
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dtb = try c.decode(String.self, forKey: .dtb)
        target = try c.decodeIfPresent(String.self, forKey: .target)
        console = try c.decodeIfPresent(String.self, forKey: .console)
        kernel = try c.decodeIfPresent(String.self, forKey: .kernel)
        rootCompatibles = try c.decodeIfPresent([String].self, forKey: .rootCompatibles) ?? []
        kernelCompatibleCount = try c.decodeIfPresent(Int.self, forKey: .kernelCompatibleCount)
        findings = try c.decodeIfPresent([DeviceTreeFinding].self, forKey: .findings) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dtb, forKey: .dtb)
        try c.encodeIfPresent(target, forKey: .target)
        try c.encodeIfPresent(console, forKey: .console)
        try c.encodeIfPresent(kernel, forKey: .kernel)
        try c.encode(rootCompatibles, forKey: .rootCompatibles)
        try c.encodeIfPresent(kernelCompatibleCount, forKey: .kernelCompatibleCount)
        try c.encode(findings, forKey: .findings)
        try c.encode(passed, forKey: .passed)
    }

    /// The human rendering: a header, errors, then warnings, then notes.
    public var text: String {
        var lines = ["DTB \(dtb)"]
        var against: [String] = []
        if let target { against.append("target \(target)") }
        if let console { against.append("console \(console)") }
        if let kernel { against.append("kernel \(kernel) (\(kernelCompatibleCount ?? 0) compatibles)") }
        if !against.isEmpty { lines.append("  checked against " + against.joined(separator: ", ")) }
        if !rootCompatibles.isEmpty { lines.append("  root compatible: \(rootCompatibles.joined(separator: ", "))") }
        // Stable: errors first, each group in the order the checks found them.
        // Warnings that differ only in the node (32 virtio-mmio slots) print once, with a count.
        for severity in DeviceTreeFinding.Severity.allCases {
            var groups: [(first: DeviceTreeFinding, more: Int)] = []
            let collapsed = severity == .info ? notNeededToBoot.count : 0
            for finding in findings where finding.severity == severity {
                if collapsed > 0, finding.check == .drivers, finding.reason == DeviceTreeRules.notNeededToBoot.reason { continue }
                if severity == .warning, finding.chain.isEmpty, !finding.compatibles.isEmpty,
                   let i = groups.firstIndex(where: { $0.first.check == finding.check && $0.first.compatibles == finding.compatibles && $0.first.reason == finding.reason }) {
                    groups[i].more += 1
                } else {
                    groups.append((finding, 0))
                }
            }
            for (finding, more) in groups {
                var line = finding
                if more > 0 { line.reason += " (and \(more) more node(s) with the same compatible)" }
                lines.append("  " + line.text)
            }
            if collapsed > 0, let line = notNeededToBootLine { lines.append("  " + line.text) }
        }
        let verdict = passed ? "PASS" : "FAIL"
        lines.append("\(verdict): \(errors.count) error(s), \(warnings.count) warning(s)")
        return lines.joined(separator: "\n")
    }
}
