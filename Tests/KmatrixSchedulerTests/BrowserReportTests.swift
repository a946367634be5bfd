import Foundation
import KmatrixCore
@testable import KmatrixScheduler
import KmatrixTestSupport
import Testing

/// report.html and history.html as a real browser draws them: Debian's Chromium, headless,
/// to a PNG that is decoded and looked at. A blank page, a broken SVG or markup the browser
/// refuses would show here and nowhere else.
@Suite("Reports seen in a real browser", .needs(tools: ["chromium"]))
struct BrowserReportTests {
    /// The page rendered at 1400x900 into a PNG, with a profile of its own (two Chromiums
    /// sharing the default profile wait on each other's lock).
    static func screenshot(_ page: String) async throws -> PNGPixels {
        let scratch = NSTemporaryDirectory() + "kmatrix-chromium-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let png = "\(scratch)/out.png"
        let command = Command(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(scratch)/profile",
                               "--screenshot=\(png)", "--window-size=1400,900", "file://\(page)"],
                              environment: ["HOME": scratch])
        let output = try await ProcessRunner.capture(command, timeout: .seconds(120))
        #expect(output.termination.succeeded, "\(output.termination): \(output.standardError.suffix(2000))")
        return try PNGPixels(file: png)
    }

    /// Not blank: many colours, the background far from everything, and the colours the
    /// page's SVG asked for really painted.
    static func expectDrawn(_ image: PNGPixels, colors: [UInt32], _ page: String) {
        #expect(image.width == 1400 && image.height == 900, "\(page)")
        let histogram = image.histogram
        let background = histogram.values.max() ?? 0
        #expect(histogram.count > 100, "\(page): only \(histogram.count) distinct colours")
        #expect(Double(background) < 0.985 * Double(image.width * image.height), "\(page): \(background) pixels are the background")
        for color in colors {
            #expect((histogram[color] ?? 0) > 50, "\(page): colour \(String(color, radix: 16)) painted on \(histogram[color] ?? 0) pixels")
        }
    }

    static func hex(_ text: String) -> UInt32 { UInt32(text.dropFirst(), radix: 16) ?? 0 }

    @Test func reportPageDrawsItsPhaseBars() async throws {
        let folder = RunsFolder()
        defer { folder.remove() }
        let run = try folder.write(sampleResults(armOutcome: "panic"), id: "20261130-000000-1")
        let image = try await Self.screenshot("\(run)/report.html")
        let colors = ReportSVG.colors(for: [])
        // The first-output and linux segments of the bars, and the failed cell's red cell.
        Self.expectDrawn(image, colors: [Self.hex(colors["first-output"]!), Self.hex(colors["linux"]!), 0xffdddd], "report.html")
    }

    @Test func historyPageDrawsOutcomesAndTrends() async throws {
        let folder = RunsFolder()
        defer { folder.remove() }
        try folder.write(sampleResults(linuxAt: 0.9), id: "20261128-000000-1")
        try folder.write(sampleResults(armOutcome: "panic", linuxAt: 1.4), id: "20261129-000000-2")
        try folder.write(sampleResults(linuxAt: 2.0), id: "20261130-000000-3")
        let page = "\(folder.root)/history.html"
        try Data(HistoryReport.html(RunHistory.load(runs: folder.runs)).utf8).write(to: URL(fileURLWithPath: page))
        let image = try await Self.screenshot(page)
        // The outcome squares: green passes and the red failure.
        Self.expectDrawn(image, colors: [0x4caf50, 0xd32f2f], "history.html")
    }
}
