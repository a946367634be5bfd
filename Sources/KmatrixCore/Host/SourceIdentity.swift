import Foundation
import KmatrixCrypto

/// What a source *is*, as a cache key sees it: a tarball is its sha256; a tree is its
/// content. In a git work tree that is the HEAD commit plus a hash of the uncommitted
/// changes (tracked diffs and untracked, non-ignored files); elsewhere a manifest of every
/// file's path, size and modification time, taken again on every run. An edit changes the
/// identity, so nothing built from the old tree is served; reverting it finds the old
/// entries again.
public enum SourceIdentity {
    /// The source with its content identity (trees only; a tarball is returned as it is).
    public static func identify(_ source: ResolvedSource, scratch: String) async throws(KmatrixError) -> ResolvedSource {
        guard source.kind == .tree else { return source }
        var identified = source
        if let git = try await gitIdentity(source.path, scratch: scratch) {
            identified.sha256 = git
        } else {
            identified.sha256 = try manifestIdentity(source.path)
        }
        return identified
    }

    /// A tree configured in place (`.config`, `include/config`) cannot be built out of tree:
    /// kbuild stops and asks for `make mrproper`. Refuse it before anything runs.
    public static func checkNotConfiguredInPlace(_ tree: String, field: String) throws(KmatrixError) {
        let found = [".config", "include/config"].filter { FileManager.default.fileExists(atPath: "\(tree)/\($0)") }
        guard found.isEmpty else {
            throw .badInput("\(field): \(tree) was configured in place (it has \(found.joined(separator: " and "))); kmatrix builds out of tree (O=), which kbuild refuses then: run `make mrproper` in \(tree) (or `make distclean`), keeping your .config elsewhere")
        }
    }

    /// Files kmatrix itself keeps at a tree's top that kbuild never reads: `kmatrix init`
    /// writes the project file there, and adding a target to it must not make every
    /// kernel of the tree look edited.
    public static let notKernelInputs: Set<String> = ["kmatrix.json"]
    static var excludedPathspecs: [String] { ["--", "."] + notKernelInputs.sorted().map { ":(top,exclude)\($0)" } }

    static let gitEnvironment: [String: String?] = ["GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_PAGER": "cat"]

    static func git(_ tree: String, _ arguments: [String]) -> Command {
        Command(["git", "-C", tree] + arguments, environment: gitEnvironment)
    }

    /// nil when `tree` is not the top of a git work tree with a commit.
    static func gitIdentity(_ tree: String, scratch: String) async throws(KmatrixError) -> String? {
        guard ProcessRunner.which("git") != nil, FileManager.default.fileExists(atPath: "\(tree)/.git") else { return nil }
        let top = try await ProcessRunner.capture(git(tree, ["rev-parse", "--show-toplevel"]), timeout: .seconds(60))
        guard top.termination.succeeded,
              URL(fileURLWithPath: top.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)).resolvingSymlinksInPath().path
                == URL(fileURLWithPath: tree).resolvingSymlinksInPath().path else { return nil }
        let head = try await ProcessRunner.capture(git(tree, ["rev-parse", "HEAD"]), timeout: .seconds(60))
        guard head.termination.succeeded else { return nil }
        // The diff can be large: it goes to a file, which is hashed.
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let diffFile = "\(scratch)/source-diff-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: diffFile) }
        let diff = try await ProcessRunner.run(git(tree, ["diff", "HEAD", "--binary", "--no-ext-diff", "--no-color", "--no-renames"] + excludedPathspecs),
                                               logPath: diffFile, timeout: .seconds(600))
        guard diff.succeeded else { throw .host("git diff HEAD in \(tree) failed: \(diff)") }
        let diffHash: String
        do { diffHash = try SHA256.hex(fileAt: diffFile) } catch { throw .host("cannot read \(diffFile)", underlying: error) }
        let others = try await ProcessRunner.capture(git(tree, ["ls-files", "--others", "--exclude-standard", "-z"] + excludedPathspecs),
                                                     timeout: .seconds(600), limit: 64 << 20)
        guard others.termination.succeeded else { throw .host("git ls-files in \(tree) failed: \(others.termination)") }
        var lines = ["git", "head \(head.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))", "diff \(diffHash)"]
        for name in others.standardOutput.split(separator: "\0").map(String.init).sorted() {
            let path = "\(tree)/\(name)"
            let content = (try? SHA256.hex(fileAt: path)) ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: path)).map { "link \($0)" } ?? "unreadable"
            lines.append("untracked \(name) \(content)")
        }
        return SHA256.hex(lines.joined(separator: "\n"))
    }

    /// Every file's path, size and modification time (nanoseconds), sorted.
    static func manifestIdentity(_ tree: String) throws(KmatrixError) -> String {
        guard let walker = FileManager.default.enumerator(atPath: tree) else { throw .host("cannot read the source tree \(tree)") }
        var lines = ["manifest"]
        while let name = walker.nextObject() as? String {
            var info = stat()
            guard !notKernelInputs.contains(name), lstat("\(tree)/\(name)", &info) == 0, info.st_mode & S_IFMT != S_IFDIR else { continue }
            lines.append("\(name) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)")
        }
        return SHA256.hex(lines.sorted().joined(separator: "\n"))
    }
}
