import Foundation
@testable import KmatrixCommands
import KmatrixCore
import KmatrixTestSupport
import Testing

/// A project folder outside the shipped descriptors: its own Targets/ add to and replace
/// the shipped ones, and `list` says where each came from.
@Suite("Shipped and project descriptors")
struct DescriptorLayersTests {
    /// A project holding only matrix.json and two targets: x86_64-pc edited (it replaces the
    /// shipped one) and a new board copied from arm64-virt under another name.
    func makeProject() throws -> String {
        let root = NSTemporaryDirectory() + "kmatrix-layers-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/Targets", withIntermediateDirectories: true)
        try fm.copyItem(atPath: "\(repositoryRoot)/guest-tests", toPath: "\(root)/guest-tests")
        var matrix = try String(contentsOfFile: "\(repositoryRoot)/matrix.json", encoding: .utf8)
        matrix = matrix.replacingOccurrences(of: #""target": ["x86_64-pc","#, with: #""target": ["acme-board", "x86_64-pc","#)
        try matrix.write(toFile: "\(root)/matrix.json", atomically: true, encoding: .utf8)
        let pc = try String(contentsOfFile: "\(repositoryRoot)/Targets/x86_64-pc.json", encoding: .utf8)
        let edited = try #require(pc.range(of: #""description": ""#)).upperBound
        try (String(pc[..<edited]) + "project copy: " + String(pc[edited...]))
            .write(toFile: "\(root)/Targets/x86_64-pc.json", atomically: true, encoding: .utf8)
        let arm64 = try String(contentsOfFile: "\(repositoryRoot)/Targets/arm64-virt.json", encoding: .utf8)
        try arm64.replacingOccurrences(of: #""name": "arm64-virt""#, with: #""name": "acme-board""#)
            .write(toFile: "\(root)/Targets/acme-board.json", atomically: true, encoding: .utf8)
        return root
    }

    @Test func projectTargetsReplaceAndAdd() throws {
        let root = try makeProject(); defer { try? FileManager.default.removeItem(atPath: root) }
        let project = try Project.load(root: root, dataDirectory: repositoryRoot)
        let shipped = try FileManager.default.contentsOfDirectory(atPath: "\(repositoryRoot)/Targets")
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        #expect(shipped.contains("arm64-virt") && shipped.contains("x86_64-pc"))
        #expect(project.targets.keys.sorted() == (shipped + ["acme-board"]).sorted())
        #expect(project.targets["x86_64-pc"]?.description.hasPrefix("project copy: ") == true)
        #expect(project.targetOrigins["x86_64-pc"] == DescriptorOrigin(place: .project, path: "\(root)/Targets/x86_64-pc.json",
                                                                       overrides: "\(repositoryRoot)/Targets/x86_64-pc.json"))
        #expect(project.targetOrigins["acme-board"] == DescriptorOrigin(place: .project, path: "\(root)/Targets/acme-board.json"))
        #expect(project.targetOrigins["arm64-virt"] == DescriptorOrigin(place: .shipped, path: "\(repositoryRoot)/Targets/arm64-virt.json"))
        // No Toolchains/ in the project: every toolchain is the shipped one.
        #expect(project.toolchainOrigins["gcc"]?.place == .shipped)
        #expect(project.cells.map(\.target.name).contains("acme-board"))
        // A shipped target's fragments and file are named by absolute path, outside the project.
        #expect(project.targets["arm64-virt"]?.file == "\(repositoryRoot)/Targets/arm64-virt.json")
        #expect(project.targets["acme-board"]?.file == "Targets/acme-board.json")
    }

    @Test func listShowsWhereEachDescriptorCameFrom() throws {
        let root = try makeProject(); defer { try? FileManager.default.removeItem(atPath: root) }
        let project = try Project.load(root: root, dataDirectory: repositoryRoot)
        let text = ListCommand.render(ListCommand.listing(project, cells: project.cells))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first { $0.hasPrefix("x86_64-pc ") }?.contains("project \(root)/Targets/x86_64-pc.json (replaces shipped)") == true)
        #expect(lines.first { $0.hasPrefix("acme-board ") }?.hasSuffix("project \(root)/Targets/acme-board.json") == true)
        #expect(lines.first { $0.hasPrefix("riscv64-virt ") }?.hasSuffix("shipped \(repositoryRoot)/Targets/riscv64-virt.json") == true)
        #expect(lines.first { $0.hasPrefix("gcc ") }?.contains("shipped \(repositoryRoot)/Toolchains/gcc.json") == true)
        #expect(lines.first { $0.hasPrefix("Targets:") } != nil)
        let json = try JSONEncoder().encode(ListCommand.listing(project, cells: project.cells))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let targets = try #require(object["targets"] as? [[String: Any]])
        let pc = try #require(targets.first { $0["name"] as? String == "x86_64-pc" }?["origin"] as? [String: Any])
        #expect(pc["place"] as? String == "project")
        #expect(pc["overrides"] as? String == "\(repositoryRoot)/Targets/x86_64-pc.json")
    }

    @Test func theCloneItselfIsShipped() throws {
        let project = try Project.load(root: repositoryRoot, dataDirectory: repositoryRoot)
        #expect(project.targetOrigins.values.allSatisfy { $0.place == .shipped && $0.overrides == nil })
        #expect(project.targets["arm64-virt"]?.file == "Targets/arm64-virt.json")
    }

    @Test func aBrokenProjectTargetIsReportedInItsFile() throws {
        let root = try makeProject(); defer { try? FileManager.default.removeItem(atPath: root) }
        try #"{"schema": 1, "name": "acme-board", "nmae": "x"}"#.write(toFile: "\(root)/Targets/acme-board-2.json", atomically: true, encoding: .utf8)
        #expect { try Project.load(root: root, dataDirectory: repositoryRoot) } throws: { error in
            "\(error)".contains("Targets/acme-board-2.json")
        }
    }

    @Test func withoutShippedDescriptorsTheProjectMustHoldThem() throws {
        let root = try makeProject(); defer { try? FileManager.default.removeItem(atPath: root) }
        #expect { try Project.load(root: root) } throws: { error in
            "\(error)".contains("cannot read the folder \(root)/Toolchains")
        }
    }

    @Test func dataDirectoryFromTheExecutableOrTheEnvironment() throws {
        let fake = NSTemporaryDirectory() + "kmatrix-prefix-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: fake) }
        for folder in ["usr/bin", "usr/share/kmatrix/Targets", "usr/share/kmatrix/Toolchains"] {
            try FileManager.default.createDirectory(atPath: "\(fake)/\(folder)", withIntermediateDirectories: true)
        }
        #expect(try DataDirectory.locate(environment: [:], executable: "\(fake)/usr/bin/kmatrix") == "\(fake)/usr/share/kmatrix")
        #expect(try DataDirectory.locate(environment: [:], executable: "\(repositoryRoot)/.build/x86_64-unknown-linux-gnu/debug/kmatrix") == repositoryRoot)
        #expect(try DataDirectory.locate(environment: ["KMATRIX_DATA": repositoryRoot], executable: "\(fake)/usr/bin/kmatrix") == repositoryRoot)
        #expect(try DataDirectory.locate(environment: [:], executable: "\(fake)/opt/kmatrix") == nil)
        #expect { try DataDirectory.locate(environment: ["KMATRIX_DATA": "\(fake)/usr"], executable: nil) } throws: { error in
            (error as? KmatrixError)?.kind == .badInput && "\(error)".contains("KMATRIX_DATA")
        }
    }
}
