import Foundation
import KmatrixCore
import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// Seed 000's modules, in the shipped root-devices matrix: drivers built `=m`, staged by
/// `modules_install`, put on the disk, loaded by init with busybox's insmod, and every one
/// counted in the boot marker (`modules=N/N`). Scripts/test runs that matrix first.
@Suite("The modules cell")
struct ModulesCellTests {
    static let cell = "arm64-virt/gcc/modules/virtio"
    static var run: RunResults? { FixtureCommands.lastRun("Matrices/root-devices.json") { $0.cells.contains { $0.id == cell && $0.boot != nil } } }

    @Test(.needs(.fixture("a run of Matrices/root-devices.json with \(cell) (Scripts/test makes it)") { run != nil }))
    func everyModuleWasBuiltInstalledAndLoaded() throws {
        let result = try #require(Self.run?.cells.first { $0.id == Self.cell })
        #expect(result.outcome == .pass)
        let console = try String(contentsOfFile: try #require(result.boot?.log), encoding: .utf8)
        let marker = try #require(console.split(separator: "\n").first { $0.contains(BootMarker.prefix) }, "no marker on the console")
        // The profile asks for three modules; all three must load.
        #expect(marker.contains("modules=3/3"), "\(marker)")
        let project = try Project.load(root: repositoryRoot, matrixFile: "Matrices/root-devices.json")
        let profile = try #require(project.matrix.profiles["modules"])
        #expect(profile.options.filter { $0.value == "m" }.count == 3)
    }
}
