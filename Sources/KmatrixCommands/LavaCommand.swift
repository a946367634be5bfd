import ArgumentParser
import Foundation
import KmatrixBoot
import KmatrixCore

/// `kmatrix lava --cell ID`: print a LAVA job definition that boots the cell's built images
/// in a LAVA lab (see `LavaJob`).
struct LavaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lava",
        abstract: "Print a LAVA job definition (YAML) that boots one built cell: its kernel, DTB and initramfs as artifact URLs, the marker as the pass pattern.")

    @OptionGroup var options: ProjectOptions
    @Option(help: "Where the lab downloads the cell's files (BASE/zImage, BASE/initramfs.cpio.gz, ...); default: file:// URLs of the cached files.")
    var artifactURL: String?

    func run() async throws {
        if let base = artifactURL, URL(string: base)?.scheme == nil || base.contains(where: \.isWhitespace) {
            throw KmatrixError.badInput("--artifact-url '\(base)' is not a URL (https://host/path, file:///path)")
        }
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        guard cells.count == 1, let cell = cells.first else {
            throw KmatrixError.badInput("a LAVA job boots one cell; \(cells.count) cells are selected: pick one with --cell")
        }
        let images = try BootImages.forCell(cell, workspace: options.workspace)
        print(try LavaJob(cell: cell, images: images, artifactBase: artifactURL).render(), terminator: "")
    }
}
