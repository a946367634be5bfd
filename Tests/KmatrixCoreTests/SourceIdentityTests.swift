import Foundation
import KmatrixCore
import KmatrixTestSupport
import Testing

/// A tree's identity follows its content: an edit changes it, a revert restores it, and a
/// tree configured in place is refused before anything runs.
@Suite("Source tree identity")
struct SourceIdentityTests {
    static let hasGit = ProcessRunner.which("git") != nil
    let root = NSTemporaryDirectory() + "kmatrix-tree-\(UUID().uuidString)"

    func makeTree() throws -> String {
        let tree = "\(root)/linux"
        try FileManager.default.createDirectory(atPath: "\(tree)/init", withIntermediateDirectories: true)
        try "all:\n".write(toFile: "\(tree)/Makefile", atomically: true, encoding: .utf8)
        try "printk(\"hello\\n\");\n".write(toFile: "\(tree)/init/main.c", atomically: true, encoding: .utf8)
        return tree
    }

    func identity(_ tree: String) async throws -> String {
        let source = ResolvedSource(kind: .tree, path: tree, sha256: "", bytes: 0)
        return try await SourceIdentity.identify(source, scratch: "\(root)/scratch").sha256
    }

    func git(_ tree: String, _ arguments: String...) async throws {
        let command = Command(["git", "-C", tree, "-c", "user.name=t", "-c", "user.email=t@t"] + arguments)
        let result = try await ProcessRunner.capture(command, timeout: .seconds(60))
        #expect(result.termination.succeeded, "git \(arguments): \(result.standardError)")
    }

    @Test(.enabled(if: hasGit || ProcessInfo.processInfo.environment["CI"] == "true", "needs git"))
    func gitTreeFollowsEditsAndReverts() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = try makeTree()
        try await git(tree, "init", "-q")
        try await git(tree, "add", "-A")
        try await git(tree, "commit", "-q", "-m", "base")
        let clean = try await identity(tree)
        try "printk(\"edited\\n\");\n".write(toFile: "\(tree)/init/main.c", atomically: true, encoding: .utf8)
        let edited = try await identity(tree)
        #expect(edited != clean)
        // An untracked, non-ignored file counts too.
        try "x".write(toFile: "\(tree)/init/new.c", atomically: true, encoding: .utf8)
        let added = try await identity(tree)
        #expect(added != edited)
        try FileManager.default.removeItem(atPath: "\(tree)/init/new.c")
        try "printk(\"hello\\n\");\n".write(toFile: "\(tree)/init/main.c", atomically: true, encoding: .utf8)
        #expect(try await identity(tree) == clean, "a revert is the same tree again")
        // kmatrix init's project file at the top is not a kernel input, untracked or tracked.
        try "{}".write(toFile: "\(tree)/kmatrix.json", atomically: true, encoding: .utf8)
        #expect(try await identity(tree) == clean, "kmatrix.json is not part of the kernel's identity")
        try await git(tree, "add", "kmatrix.json")
        try await git(tree, "commit", "-q", "-m", "kmatrix.json")
        let committed = try await identity(tree)
        try "{\"schema\": 1}".write(toFile: "\(tree)/kmatrix.json", atomically: true, encoding: .utf8)
        #expect(try await identity(tree) == committed, "an edit of a committed kmatrix.json is not a kernel edit")
        try await git(tree, "rm", "-q", "--cached", "kmatrix.json")
        try await git(tree, "commit", "-q", "-m", "untrack")
        try FileManager.default.removeItem(atPath: "\(tree)/kmatrix.json")
        let untracked = try await identity(tree)
        // A new commit with the same content is another identity (HEAD is part of it).
        try await git(tree, "commit", "-q", "--allow-empty", "-m", "empty")
        #expect(try await identity(tree) != untracked)
    }

    @Test func plainTreeFollowsEdits() async throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = try makeTree()
        let first = try await identity(tree)
        #expect(try await identity(tree) == first)
        try "printk(\"edited, longer\\n\");\n".write(toFile: "\(tree)/init/main.c", atomically: true, encoding: .utf8)
        #expect(try await identity(tree) != first)
    }

    @Test func aTreeConfiguredInPlaceIsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = try makeTree()
        try SourceIdentity.checkNotConfiguredInPlace(tree, field: "matrix.json: sources.kernel")
        try "CONFIG_X=y\n".write(toFile: "\(tree)/.config", atomically: true, encoding: .utf8)
        do {
            try SourceIdentity.checkNotConfiguredInPlace(tree, field: "matrix.json: sources.kernel")
            Issue.record("a configured tree was accepted")
        } catch {
            #expect(error.kind == .badInput)
            #expect(error.message.contains("make mrproper") && error.message.contains("matrix.json: sources.kernel"))
        }
    }
}
