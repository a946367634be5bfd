import ArgumentParser
import Foundation
import KmatrixCore

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List targets, toolchains and the matrix's cells.")

    @OptionGroup var options: ProjectOptions
    @Flag(help: "Print JSON (schema kmatrix-list/1).") var json = false

    struct Listing: Encodable {
        struct TargetRow: Encodable {
            var name, description, arch, image, console, qemu, machine, deviceTree, file: String
            var rootDevices: [String]
            var origin: DescriptorOrigin?
        }
        struct ToolchainRow: Encodable { var name, description, file: String; var architectures: [String]; var origin: DescriptorOrigin? }
        struct CellRow: Encodable { var id, target, toolchain, profile, rootfs: String; var kernel, expect: String? }
        var targets: [TargetRow]
        var toolchains: [ToolchainRow]
        var cells: [CellRow]
    }

    func run() async throws {
        let project = try options.load()
        let cells = try options.selectedCells(in: project)
        let listing = Self.listing(project, cells: cells)
        if json { return try printJSON(listing, schema: "kmatrix-list/1") }

        print(Self.render(listing))
    }

    static func listing(_ project: Project, cells: [Cell]) -> Listing {
        Listing(
            targets: project.targets.values.sorted { $0.name < $1.name }.map {
                .init(name: $0.name, description: $0.description, arch: $0.kernel.arch, image: $0.kernel.image.target,
                      console: $0.console.device, qemu: $0.qemu.binary, machine: $0.qemu.machine,
                      deviceTree: $0.deviceTree.source.rawValue, file: $0.file, rootDevices: $0.rootDevices.keys.sorted(),
                      origin: project.targetOrigins[$0.name])
            },
            toolchains: project.toolchains.values.sorted { $0.name < $1.name }.map {
                .init(name: $0.name, description: $0.description, file: $0.file, architectures: $0.architectures.keys.sorted(),
                      origin: project.toolchainOrigins[$0.name])
            },
            cells: cells.map { .init(id: $0.id, target: $0.target.name, toolchain: $0.toolchain.name, profile: $0.profileName, rootfs: $0.rootName, kernel: $0.kernel.name, expect: $0.expect?.rawValue) })
    }

    /// The text form: targets and toolchains each with where its descriptor came from.
    static func render(_ listing: Listing) -> String {
        var out = "Targets:\n"
        out += table(["name", "ARCH", "image", "console", "qemu -M", "dtb", "root devices", "from"], listing.targets.map {
            [$0.name, $0.arch, $0.image, $0.console, "\($0.qemu) -M \($0.machine)", $0.deviceTree, $0.rootDevices.joined(separator: ","),
             originColumn($0.origin, file: $0.file)]
        })
        out += "\n\nToolchains:\n"
        out += table(["name", "architectures", "from", "description"], listing.toolchains.map {
            [$0.name, $0.architectures.joined(separator: ","), originColumn($0.origin, file: $0.file), $0.description]
        })
        out += "\n\nCells (\(listing.cells.count)):\n"
        // The kernel column only when the matrix names its kernels.
        let kernels = listing.cells.contains { $0.kernel != nil }
        out += table(["cell", "target", "toolchain", "profile", "rootfs"] + (kernels ? ["kernel"] : []), listing.cells.map {
            [$0.id, $0.target, $0.toolchain, $0.profile, $0.rootfs] + (kernels ? [$0.kernel ?? ""] : [])
        })
        return out
    }

    /// "shipped /usr/share/kmatrix/Targets/x.json", "project Targets/x.json (replaces shipped)".
    static func originColumn(_ origin: DescriptorOrigin?, file: String) -> String {
        guard let origin else { return file }
        return "\(origin.place.rawValue) \(origin.path)" + (origin.overrides == nil ? "" : " (replaces shipped)")
    }
}

/// A plain aligned text table.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
    func line(_ row: [String]) -> String {
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    return ([line(header), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)).joined(separator: "\n")
}
