import Foundation
import KmatrixCore
import KmatrixTestSupport
import Testing

/// Names that become paths or make arguments are checked at load: exit 2, file and field named.
@Suite("Inputs that become paths are validated")
struct InputValidationTests {
    /// The same check as the other bad-input tests: one message names file, field and words.
    func expectError(_ project: ScratchProject, file: String, field: String, _ words: [String],
                     sourceLocation: SourceLocation = #_sourceLocation) {
        BadInputTests().expectError(project, file: file, field: field, words, sourceLocation: sourceLocation)
    }

    func renameProfile(_ p: ScratchProject, to name: String) throws {
        try p.editJSON("matrix.json") { matrix in
            var profiles = matrix["profiles"] as! [String: Any]
            profiles[name] = profiles.removeValue(forKey: "tiny")
            matrix["profiles"] = profiles
        }
    }

    @Test func profileNameThatEscapes() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try renameProfile(p, to: "../x")
        expectError(p, file: "matrix.json", field: "profiles", ["'../x' is not a valid profile name"])
        // And it is bad input: exit 2.
        do { _ = try Project.load(root: p.root); Issue.record("loaded") } catch { #expect(error.exitCode == 2) }
    }

    @Test func profileNameWithSlash() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try renameProfile(p, to: "a/b")
        expectError(p, file: "matrix.json", field: "profiles", ["'a/b' is not a valid profile name"])
    }

    @Test func rootDeviceNameThatEscapes() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/x86_64-pc.json", replacing: "\"ramdisk\": {", with: "\"../ramdisk\": {")
        expectError(p, file: "Targets/x86_64-pc.json", field: "rootDevices", ["'../ramdisk' is not a valid root device name"])
    }

    @Test func configBaseThatIsNotAMakeTarget() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("matrix.json", replacing: "\"base\": \"tinyconfig\"", with: "\"base\": \"-j1 tinyconfig\"")
        expectError(p, file: "matrix.json", field: "profiles.tiny.base", ["'-j1 tinyconfig' is not a config make target"])
    }

    @Test func imageTargetThatReadsAsAnOption() throws {
        let p = try ScratchProject(); defer { p.remove() }
        try p.edit("Targets/x86_64-pc.json", replacing: "\"target\": \"bzImage\"", with: "\"target\": \"-f/etc/passwd\"")
        expectError(p, file: "Targets/x86_64-pc.json", field: "kernel.image.target", ["'-f/etc/passwd' is not a make target"])
    }

    @Test func imageTargetWithAnAssignmentOrSpaces() throws {
        for bad in ["CC=evil", "bzImage vmlinux", "../bzImage"] {
            let p = try ScratchProject(); defer { p.remove() }
            try p.edit("Targets/x86_64-pc.json", replacing: "\"target\": \"bzImage\"", with: "\"target\": \"\(bad)\"")
            expectError(p, file: "Targets/x86_64-pc.json", field: "kernel.image.target", ["'\(bad)' is not a make target"])
        }
    }

    @Test func shippedNamesStillLoad() throws {
        let p = try ScratchProject(); defer { p.remove() }
        #expect(p.loadErrors().isEmpty)
        #expect(isValidMakeTarget("vexpress-v2p-ca9.dtb"))
        #expect(isValidMakeTarget("dtbs"))
    }
}

@Suite("Host helpers: symlinked workspace, exclusive files, full disks, sizes")
struct HostHelperTests {
    let scratch = NSTemporaryDirectory() + "kmatrix-host-\(UUID().uuidString)"

    @Test func workspaceResolvesSymlinksEvenForMissingTails() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: "\(scratch)/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(scratch)/link", withDestinationPath: "\(scratch)/real")
        let real = Workspace.resolvingSymlinks("\(scratch)/real")
        #expect(Workspace(root: "\(scratch)/link").root == real)
        #expect(Workspace(root: "\(scratch)/link/not/yet").root == "\(real)/not/yet")
    }

    @Test func exclusiveFilesRefuseExistingNamesAndSymlinks() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        try SafeFile.write(Data("one".utf8), to: "\(scratch)/out")
        #expect(throws: KmatrixError.self) { try SafeFile.write(Data("two".utf8), to: "\(scratch)/out") }
        #expect(FileManager.default.contents(atPath: "\(scratch)/out") == Data("one".utf8))
        try FileManager.default.createSymbolicLink(atPath: "\(scratch)/planted", withDestinationPath: "\(scratch)/victim")
        #expect(throws: KmatrixError.self) { try SafeFile.write(Data("x".utf8), to: "\(scratch)/planted") }
        #expect(!FileManager.default.fileExists(atPath: "\(scratch)/victim"), "the link was not followed")
    }

    @Test func fullDiskIsRecognisedFromText() {
        #expect(DiskSpace.mentionsNoSpace("cc1: fatal error: write: No space left on device"))
        #expect(!DiskSpace.mentionsNoSpace("error: 'foo' undeclared"))
        let message = DiskSpace.fullFilesystem(at: NSTemporaryDirectory(), text: "ld: final link failed: No space left on device")
        #expect(message?.contains("is full") == true)
        #expect(DiskSpace.fullFilesystem(at: NSTemporaryDirectory(), text: "error: undeclared") == nil, "this disk is not full")
    }

    @Test func blockingWorkRunsOffTheCooperativePool() async throws {
        let value = try await Blocking.run { () throws(KmatrixError) -> Int in
            Thread.isMainThread ? -1 : 42
        }
        #expect(value == 42)
        await #expect(throws: KmatrixError.self) {
            try await Blocking.run { () throws(KmatrixError) -> Int in throw .host("boom") }
        }
    }

    @Test func sizesParseAndBadOnesAreBadInput() throws {
        #expect(try CacheLimit.parse("500M", field: "f") == 500 * 1024 * 1024)
        #expect(try CacheLimit.parse("20G", field: "f") == 20 * 1024 * 1024 * 1024)
        #expect(try CacheLimit.parse("1.5k", field: "f") == 1536)
        #expect(try CacheLimit.parse("4096", field: "f") == 4096)
        #expect(try CacheLimit.parse("2GiB", field: "f") == 2 * 1024 * 1024 * 1024)
        for bad in ["", "lots", "-5G", "5X", "0"] {
            do { _ = try CacheLimit.parse(bad, field: "--max-size"); Issue.record("\(bad) parsed") } catch {
                #expect(error.exitCode == 2)
                #expect(error.message.contains("--max-size"))
            }
        }
    }

    @Test func limitFromEnvironmentThenConfigFile() throws {
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        #expect(try CacheLimit.configured(workspaceRoot: scratch, environment: [:]) == nil)
        try #"{"maxSize": "1G"}"#.write(toFile: "\(scratch)/config.json", atomically: true, encoding: .utf8)
        #expect(try CacheLimit.configured(workspaceRoot: scratch, environment: [:]) == 1 << 30)
        #expect(try CacheLimit.configured(workspaceRoot: scratch, environment: ["KMATRIX_CACHE_MAX_SIZE": "2M"]) == 2 << 20)
        try #"{"maxsize": "1G"}"#.write(toFile: "\(scratch)/config.json", atomically: true, encoding: .utf8)
        #expect(throws: KmatrixError.self) { try CacheLimit.configured(workspaceRoot: scratch, environment: [:]) }
    }
}
