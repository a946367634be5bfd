import Foundation

/// The one way kmatrix asks a compiler (or any tool) for its version: the first line it
/// prints for its version arguments. Part of cache keys, doctor's report and records.
public enum CompilerVersion {
    /// Runs `tool arguments…` and returns its first output line; a tool that is missing,
    /// fails or says nothing is a host failure naming it (and `packages`, when known).
    public static func probe(_ tool: String, arguments: [String], packages: [String] = []) async throws(KmatrixError) -> String {
        let hint = packages.isEmpty ? "" : " (apt-get install \(packages.joined(separator: " ")))"
        guard let path = ProcessRunner.which(tool) else { throw .host("\(tool) is not installed\(hint)") }
        let output = try await ProcessRunner.capture(Command([path] + arguments), timeout: .seconds(120))
        guard output.termination.succeeded else {
            throw .host("\(tool) \(arguments.joined(separator: " ")) failed: \(output.termination)\(hint)")
        }
        // Some tools (mke2fs -V) print their version on standard error.
        let text = output.standardOutput.isEmpty ? output.standardError : output.standardOutput
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let version = line.trimmingCharacters(in: .whitespaces)
        guard !version.isEmpty else { throw .host("\(tool) \(arguments.joined(separator: " ")) printed no version") }
        return version
    }
}
