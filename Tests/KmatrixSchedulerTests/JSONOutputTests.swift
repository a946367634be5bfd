import ArgumentParser
import Foundation
import KmatrixCommands
import KmatrixCore
import KmatrixDeviceTree
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// The top-level keys of each `--json` output, as docs/json-output.md's first table under
/// each `## kmatrix <command> --json` heading lists them: the doc is the one list, so the
/// doc and the outputs cannot drift apart.
struct DocumentedJSON {
    struct Output {
        var schema: String
        var keys: Set<String>
        /// Keys whose type says "optional": left out when there is nothing to say.
        var optional: Set<String>
        var required: Set<String> { keys.subtracting(optional) }
    }

    /// Command (`cache du`, `check-dtb`, ...) to its documented output.
    let outputs: [String: Output]

    static let file = "\(repositoryRoot)/docs/json-output.md"

    static func load() throws -> DocumentedJSON {
        let text = try String(contentsOfFile: file, encoding: .utf8)
        var outputs: [String: Output] = [:]
        var command: String?
        var inTable = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("## ") {
                // "## `kmatrix cache du --json`"
                let title = line.dropFirst(3).trimmingCharacters(in: CharacterSet(charactersIn: "` "))
                command = title.hasPrefix("kmatrix ") && title.hasSuffix(" --json")
                    ? String(title.dropFirst("kmatrix ".count).dropLast(" --json".count)) : nil
                inTable = false
                continue
            }
            guard let current = command else { continue }
            if line.hasPrefix("| key |") { inTable = outputs[current] == nil; if inTable { outputs[current] = Output(schema: "", keys: [], optional: []) }; continue }
            guard inTable else { continue }
            guard line.hasPrefix("|") else { inTable = false; command = nil; continue }
            let columns = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard columns.count >= 4, columns[1].hasPrefix("`") else { continue }   // the |---| line
            let key = columns[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            outputs[current]!.keys.insert(key)
            if columns[2].contains("optional") { outputs[current]!.optional.insert(key) }
            if key == "schema" { outputs[current]!.schema = columns[3].trimmingCharacters(in: CharacterSet(charactersIn: "`")) }
        }
        return DocumentedJSON(outputs: outputs)
    }

    /// Parses `stdout` as one JSON object and checks it against the documented keys.
    func check(_ command: String, stdout: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let documented = try #require(outputs[command], "docs/json-output.md has no section for kmatrix \(command) --json", sourceLocation: sourceLocation)
        let parsed = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        let object = try #require(parsed as? [String: Any], "kmatrix \(command) --json printed no JSON object: \(stdout.prefix(300))", sourceLocation: sourceLocation)
        let keys = Set(object.keys)
        #expect(keys.subtracting(documented.keys).isEmpty, "undocumented keys of \(command): \(keys.subtracting(documented.keys).sorted())", sourceLocation: sourceLocation)
        #expect(documented.required.subtracting(keys).isEmpty, "documented keys \(command) did not print: \(documented.required.subtracting(keys).sorted())", sourceLocation: sourceLocation)
        #expect(object["schema"] as? String == documented.schema, "\(command): schema \(object["schema"] ?? "none")", sourceLocation: sourceLocation)
        return object
    }
}

/// The kmatrix binary with standard output and standard error kept apart (`--json` puts
/// only the document on standard output).
func runKmatrix(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
    let binary = try #require(FixtureCommands.binary)
    let folder = NSTemporaryDirectory() + "kmatrix-json-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    FileManager.default.createFile(atPath: "\(folder)/out", contents: nil)
    FileManager.default.createFile(atPath: "\(folder)/err", contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(folder)/out"))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(folder)/err"))
    process.standardInput = FileHandle.nullDevice
    try process.run()
    await process.exited()
    return (process.terminationStatus,
            (try? String(contentsOfFile: "\(folder)/out", encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: "\(folder)/err", encoding: .utf8)) ?? "")
}

@Suite("--json outputs")
struct JSONOutputTests {
    static let shared = TestCache.shared
    static let cellID = "x86_64-pc/gcc/tiny/initramfs"
    /// A cell whose DTB comes from its kernel build.
    static let armCell = "arm-vexpress-a9/gcc/tiny/initramfs"

    /// The two newest finished runs of the default matrix in the fixture cache, oldest first.
    static var twoNewestRuns: [String] {
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: shared.workspace.runs)) ?? []
        let finished = runs.filter { $0 != "latest" }.sorted().filter {
            (try? RunResults.load(from: "\(shared.workspace.runs)/\($0)")).map { !$0.run.interrupted } ?? false
        }
        return finished.suffix(2).map { "\(shared.workspace.runs)/\($0)" }
    }

    @Test func everyCommandWithJSONIsDocumentedAndNoOtherIs() throws {
        let doc = try DocumentedJSON.load()
        var withFlag: Set<String> = []
        func walk(_ command: any ParsableCommand.Type, path: [String]) {
            let configuration = command.configuration
            let name = path + (configuration.commandName.map { [$0] } ?? [])
            if configuration.subcommands.isEmpty {
                // The flag in the options list, not a mention in the discussion.
                let options = Kmatrix.helpMessage(for: command, columns: 1000).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                if options.contains(where: { $0.hasPrefix("--json ") || $0 == "--json" }) { withFlag.insert(name.joined(separator: " ")) }
            }
            for sub in configuration.subcommands { walk(sub, path: name) }
        }
        for sub in Kmatrix.configuration.subcommands { walk(sub, path: []) }
        #expect(withFlag == Set(doc.outputs.keys), "commands with --json: \(withFlag.sorted()); documented: \(doc.outputs.keys.sorted())")
        #expect(withFlag.isSuperset(of: ["boot", "build", "cache du", "check-dtb", "compare", "doctor", "history", "initramfs", "list", "plan", "rootfs", "run"]))
        for (command, output) in doc.outputs {
            #expect(output.keys.contains("schema") && !output.schema.isEmpty, "\(command): no schema row")
        }
    }

    /// `run --json` prints results.json; a real run is too long for this suite, so its
    /// document is checked as `run` encodes it.
    @Test func runsDocumentIsResultsJSON() throws {
        let doc = try DocumentedJSON.load()
        let encoded = try sampleResults().encoded()
        _ = try doc.check("run", stdout: String(decoding: encoded, as: UTF8.self))
    }

    @Test(.needs(.kmatrixBinary))
    func listPrintsTheDocumentedKeys() async throws {
        let doc = try DocumentedJSON.load()
        let list = try await runKmatrix(["list", "--json", "--project", repositoryRoot])
        #expect(list.status == 0, "\(list.stderr)")
        let object = try doc.check("list", stdout: list.stdout)
        #expect((object["cells"] as? [Any])?.count == TestCache.project?.cells.count)
    }

    @Test(.needs(.kmatrixBinary, .unpackedKernel, .unpackedBusybox))
    func planPrintsTheDocumentedKeys() async throws {
        let doc = try DocumentedJSON.load()
        let plan = try await runKmatrix(["plan", "--json", "--project", repositoryRoot, "--cache", Self.shared.root, "--cell", Self.cellID])
        #expect(plan.status == 0, "\(plan.stderr)")
        let object = try doc.check("plan", stdout: plan.stdout)
        #expect((object["cells"] as? [[String: Any]])?.first?["cell"] as? String == Self.cellID)
    }

    @Test(.needs(.kmatrixBinary))
    func doctorPrintsTheDocumentedKeys() async throws {
        let doc = try DocumentedJSON.load()
        // A cache of its own with the fixture's sources linked: doctor writes nothing into the shared one.
        let cache = try TestCache.private("doctor-json")
        defer { cache.remove() }
        try cache.linkSources()
        let doctor = try await runKmatrix(["doctor", "--json", "--project", repositoryRoot, "--cache", cache.root, "--cell", Self.cellID])
        #expect([0, 3].contains(doctor.status), "\(doctor.stderr)")
        let object = try doc.check("doctor", stdout: doctor.stdout)
        #expect((object["ready"] as? Bool) == (doctor.status == 0))
    }

    @Test(.needs(.kmatrixBinary, .fixture("two finished runs in runs/ (made by kmatrix run)") { twoNewestRuns.count == 2 }))
    func historyAndCompareOfTheNewestRunsPrintTheDocumentedKeys() async throws {
        let doc = try DocumentedJSON.load()
        let html = NSTemporaryDirectory() + "kmatrix-history-\(UUID().uuidString).html"
        defer { try? FileManager.default.removeItem(atPath: html) }
        let history = try await runKmatrix(["history", "--json", "--cache", Self.shared.root, "--last", "2", "--output", html])
        #expect(history.status == 0, "\(history.stderr)")
        let listing = try doc.check("history", stdout: history.stdout)
        #expect((listing["runs"] as? [Any])?.count == 2)
        #expect(listing["html"] as? String == html && FileManager.default.fileExists(atPath: html))

        let runs = Self.twoNewestRuns
        let compare = try await runKmatrix(["compare", "--json", runs[0], runs[1]])
        #expect([0, 1].contains(compare.status), "\(compare.stderr)")
        let comparison = try doc.check("compare", stdout: compare.stdout)
        #expect(comparison["new"] as? String == (runs[1] as NSString).lastPathComponent)
        // Exit 1 exactly when something regressed.
        #expect(compare.status == ((comparison["regressed"] as? Bool) == true ? 1 : 0))
    }

    /// A cell the fixture cache has built: every step a cache hit, nothing compiled, and
    /// standard output only the JSON document.
    @Test(.needs(.kmatrixBinary, .builtKernel(cellID)))
    func buildOfACachedCellIsAllCacheHits() async throws {
        let doc = try DocumentedJSON.load()
        let fixture = try FixtureCommands()
        defer { fixture.remove() }
        let build = try await runKmatrix(["build", "--json", "--cell", Self.cellID, "--project", repositoryRoot,
                                    "--cache", fixture.cache, "--cache-from", fixture.upstream])
        #expect(build.status == 0, "\(build.stderr)")
        let object = try doc.check("build", stdout: build.stdout)
        let summary = try #require(object["summary"] as? [String: Any])
        #expect(summary["steps"] as? Int ?? 0 > 0)
        #expect(summary["cacheHits"] as? Int == summary["steps"] as? Int, "\(summary)")
        let cells = try #require(object["cells"] as? [[String: Any]])
        #expect(cells.count == 1)
        #expect(cells.first?["cell"] as? String == Self.cellID)
        #expect(cells.first?["cacheHit"] as? Bool == true)
        let kernel = try #require(cells.first?["kernel"] as? [String: Any])
        #expect(kernel["cell"] as? String == Self.cellID)
    }
}

extension JSONOutputTests {
    /// rootfs and boot of a cell the fixture cache holds (nothing built; one TCG boot),
    /// check-dtb on that build's DTB, cache du of the private cache, initramfs of a tiny list.
    @Test(.needs(.kmatrixBinary, .builtKernel(armCell)))
    func theOtherOutputsPrintTheDocumentedKeys() async throws {
        let doc = try DocumentedJSON.load()
        let fixture = try FixtureCommands()
        defer { fixture.remove() }
        let cellArguments = ["--cell", Self.armCell, "--project", repositoryRoot, "--cache", fixture.cache, "--cache-from", fixture.upstream]

        let rootfs = try await runKmatrix(["rootfs", "--json"] + cellArguments)
        #expect(rootfs.status == 0, "\(rootfs.stderr)")
        let images = try doc.check("rootfs", stdout: rootfs.stdout)
        #expect((images["cells"] as? [[String: Any]])?.first?["kind"] as? String == "initramfs")

        let boot = try await runKmatrix(["boot", "--json"] + cellArguments)
        #expect(boot.status == 0, "\(boot.stderr)")
        let boots = try doc.check("boot", stdout: boot.stdout)
        let record = try #require((boots["boots"] as? [[String: Any]])?.first?["record"] as? [String: Any])
        #expect(record["outcome"] as? String == "pass")

        let cell = try #require(TestCache.project?.cells.first { $0.id == Self.armCell })
        let build = try #require(Self.shared.builtKernel(cell))
        let dtb = try #require(DeviceTreeCheck.builtDTB(for: cell.target, in: build))
        let check = try await runKmatrix(["check-dtb", dtb, "--target", cell.target.name, "--project", repositoryRoot])
        let checked = try await runKmatrix(["check-dtb", dtb, "--target", cell.target.name, "--project", repositoryRoot, "--json"])
        #expect(checked.status == check.status, "the same verdict with --json: \(checked.stderr)")
        let report = try doc.check("check-dtb", stdout: checked.stdout)
        #expect(report["dtb"] as? String == dtb)

        let usage = try await runKmatrix(["cache", "du", "--json", "--cache", fixture.cache])
        #expect(usage.status == 0, "\(usage.stderr)")
        _ = try doc.check("cache du", stdout: usage.stdout)

        let folder = NSTemporaryDirectory() + "kmatrix-initramfs-json-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n".write(toFile: "\(folder)/list", atomically: true, encoding: .utf8)
        let packed = try await runKmatrix(["initramfs", "--json", "--list", "\(folder)/list", "-o", "\(folder)/out.cpio.gz"])
        #expect(packed.status == 0, "\(packed.stderr)")
        let archive = try doc.check("initramfs", stdout: packed.stdout)
        #expect(archive["entries"] as? Int == 2)
    }
}
