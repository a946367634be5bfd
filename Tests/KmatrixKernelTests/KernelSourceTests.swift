import Foundation
import KmatrixCore
import KmatrixCrypto
import KmatrixKernel
import KmatrixTestSupport
import Testing

@Suite("kernel source unpacking")
struct KernelSourceTests {
    /// A scratch cache and a small tarball `pkg-1.0/{Makefile,sub/a.c}` made by tar (the oracle).
    struct Fixture {
        let root = NSTemporaryDirectory() + "kmatrix-source-\(UUID().uuidString)"
        var workspace: Workspace { Workspace(root: "\(root)/cache") }
        var tarball: String { "\(root)/pkg-1.0.tar.gz" }

        init(withMakefile: Bool = true) async throws {
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(root)/pkg-1.0/sub", withIntermediateDirectories: true)
            if withMakefile { try "all:\n".write(toFile: "\(root)/pkg-1.0/Makefile", atomically: true, encoding: .utf8) }
            try "int a;\n".write(toFile: "\(root)/pkg-1.0/sub/a.c", atomically: true, encoding: .utf8)
            // A hang guard, not a timing: in a loaded test phase a 30 s deadline was hit (three times in one run).
            let tar = try await ProcessRunner.capture(Command(["tar", "-czf", tarball, "-C", root, "pkg-1.0"]), timeout: .seconds(300))
            try #require(tar.termination.succeeded, "tar: \(tar.standardError)")
        }

        func source() throws -> ResolvedSource {
            ResolvedSource(kind: .tarball, path: tarball, sha256: try SHA256.hex(fileAt: tarball), bytes: 1)
        }

        func remove() { try? FileManager.default.removeItem(atPath: root) }
    }

    @Test(.needs(tools: ["tar"]))
    func concurrentCallersShareOneUnpack() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let source = try fixture.source()
        let workspace = fixture.workspace
        async let first = SourceTree.prepare(source, workspace: workspace, name: "pkg")
        async let second = SourceTree.prepare(source, workspace: workspace, name: "pkg")
        let (a, b) = try await (first, second)
        #expect(a == b)
        #expect(a == workspace.unpacked("pkg", sha256: source.sha256))
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: "\(a)/Makefile") && fm.fileExists(atPath: "\(a)/sub/a.c"))
        #expect(SourceTree.isComplete(a))
        let siblings = try fm.contentsOfDirectory(atPath: (a as NSString).deletingLastPathComponent)
        #expect(!siblings.contains { $0.contains(".partial-") })
    }

    @Test(.needs(tools: ["tar"]))
    func anInterruptedUnpackIsNotTakenForFinished() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        let source = try fixture.source()
        let tree = fixture.workspace.unpacked("pkg", sha256: source.sha256)
        // What a killed unpack leaves: the final name (from an older layout) and a partial folder, no marker.
        let parent = (tree as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: "\(tree)/half", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(parent)/.\((tree as NSString).lastPathComponent).partial-99999", withIntermediateDirectories: true)
        let path = try await SourceTree.prepare(source, workspace: fixture.workspace, name: "pkg")
        #expect(path == tree)
        #expect(!FileManager.default.fileExists(atPath: "\(tree)/half"))
        #expect(FileManager.default.fileExists(atPath: "\(tree)/Makefile"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).sorted() == [(tree as NSString).lastPathComponent, "\((tree as NSString).lastPathComponent).lock"])
    }

    @Test(.needs(tools: ["tar"]))
    func aTarballWithoutAMakefileIsNotASourceTree() async throws {
        let fixture = try await Fixture(withMakefile: false)
        defer { fixture.remove() }
        let source = try fixture.source()
        await #expect(throws: KmatrixError.self) {
            try await SourceTree.prepare(source, workspace: fixture.workspace, name: "pkg")
        }
        #expect(!SourceTree.isComplete(fixture.workspace.unpacked("pkg", sha256: source.sha256)))
    }

    @Test func aTreeIsUsedInPlace() async throws {
        let tree = ResolvedSource(kind: .tree, path: "/somewhere/linux", sha256: "t", bytes: 0)
        #expect(try await SourceTree.prepare(tree, workspace: Workspace(root: "/nonexistent")) == "/somewhere/linux")
    }
}
