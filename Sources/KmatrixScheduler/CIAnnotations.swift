import Foundation

/// Failed cells as a CI system's annotations. GitHub Actions turns a workflow command
/// (`::error title=…::message`) printed on stdout into an annotation on the run's summary;
/// GitLab reads the JUnit report every run writes, so it needs nothing here.
public enum CIAnnotations {
    /// GitHub sets `GITHUB_ACTIONS=true` in every step of a workflow.
    public static func isGitHubActions(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["GITHUB_ACTIONS"] == "true"
    }

    /// One `::error` line per failed cell: its id as the title, its verdict and the first
    /// line of the excerpt that explains it (a dropped option, a compiler error, a panic).
    public static func github(_ results: RunResults) -> [String] {
        results.cells.filter { !$0.passed }.map { cell in
            let line = cell.excerpt.lazy.map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
            let message = "\(cell.outcome.rawValue)" + (line.map { ": \($0)" } ?? (cell.failedStep.map { " in \($0)" } ?? ""))
            return "::error title=\(escapeProperty(cell.id))::\(escapeData(message))"
        }
    }

    /// GitHub's escaping of a command's message: `%`, CR and LF.
    public static func escapeData(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "%25")
            .replacingOccurrences(of: "\r", with: "%0D")
            .replacingOccurrences(of: "\n", with: "%0A")
    }

    /// A property value (`title=`) also escapes the separators `:` and `,`.
    public static func escapeProperty(_ text: String) -> String {
        escapeData(text).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }
}
