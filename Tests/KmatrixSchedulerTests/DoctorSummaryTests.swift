import Foundation
import KmatrixTestSupport
import Testing

/// `kmatrix doctor` on an empty cache: the busybox source is not there (Scripts/bootstrap
/// fetches it into the cache), and the summary must say so rather than "Nothing missing.".
@Suite("doctor summary")
struct DoctorSummaryTests {
    @Test(.needs(.kmatrixBinary))
    func anEmptyCacheReportsTheMissingBusyboxSourceInTheSummary() async throws {
        let cache = try TestCache.private("doctor-empty")
        defer { cache.remove() }
        let cell = "x86_64-pc/gcc/tiny/initramfs"
        let text = try await runKmatrix(["doctor", "--project", repositoryRoot, "--cache", cache.root, "--cell", cell])
        #expect(text.status == 3, "a cell cannot run without its busybox source: \(text.stdout)\(text.stderr)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        let busyboxLine = try #require(lines.first { $0.contains("MISSING") && $0.contains(" busybox ") }, "\(text.stdout)")
        #expect(busyboxLine.contains("apt-get source"), "the line says how to get it: \(busyboxLine)")
        #expect(!text.stdout.contains("Nothing missing."), "\(text.stdout)")
        let summary = try #require(lines.firstIndex { $0.hasPrefix("Missing, not from a package:") }, "\(text.stdout)")
        #expect(lines[(summary + 1)...].contains { $0.hasPrefix("  busybox: ") })
        #expect(lines.contains { $0.contains(cell) && $0.contains("no: ") && $0.contains("busybox source") })

        // The same facts in JSON.
        let json = try await runKmatrix(["doctor", "--json", "--project", repositoryRoot, "--cache", cache.root, "--cell", cell])
        let object = try DocumentedJSON.load().check("doctor", stdout: json.stdout)
        #expect(object["ready"] as? Bool == false)
        #expect(((object["missingOtherwise"] as? [String]) ?? []).contains { $0.hasPrefix("busybox: ") }, "\(json.stdout)")
    }
}
