import Foundation
import KmatrixCore
import KmatrixScheduler
import Testing

@Suite("CI annotations")
struct CIAnnotationTests {
    @Test func oneErrorLinePerFailedCell() {
        #expect(CIAnnotations.github(sampleResults()) == [])
        var results = sampleResults(armOutcome: "panic")
        #expect(CIAnnotations.github(results) == [
            "::error title=arm-vexpress-a9/gcc/tiny/initramfs::panic: Kernel panic - not syncing: No working init found",
        ])
        // The first line with text explains it; without any, the step that failed is named.
        results.cells[1].excerpt = ["", "   drivers/tty/serial/amba-pl011.c:12: error: x", "later"]
        #expect(CIAnnotations.github(results) == ["::error title=arm-vexpress-a9/gcc/tiny/initramfs::panic: drivers/tty/serial/amba-pl011.c:12: error: x"])
        results.cells[1].excerpt = []
        #expect(CIAnnotations.github(results) == ["::error title=arm-vexpress-a9/gcc/tiny/initramfs::panic in boot"])
    }

    @Test func escapingAsGitHubDocumentsIt() {
        #expect(CIAnnotations.escapeData("50% done\r\nnext") == "50%25 done%0D%0Anext")
        #expect(CIAnnotations.escapeProperty("a:b,c%") == "a%3Ab%2Cc%25")
        var results = sampleResults(armOutcome: "panic")
        results.cells[1].id = "odd,cell:id"
        results.cells[1].excerpt = ["100% of CPU\rstuck"]
        #expect(CIAnnotations.github(results) == ["::error title=odd%2Ccell%3Aid::panic: 100%25 of CPU%0Dstuck"])
    }

    @Test func onlyUnderGitHubActions() {
        #expect(CIAnnotations.isGitHubActions(["GITHUB_ACTIONS": "true"]))
        #expect(!CIAnnotations.isGitHubActions(["GITHUB_ACTIONS": "false"]))
        #expect(!CIAnnotations.isGitHubActions(["CI": "true"]))
    }
}
