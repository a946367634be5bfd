import ArgumentParser
import Foundation
import KmatrixCore
import KmatrixUserspace

struct InitramfsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "initramfs",
        abstract: "Pack a gen_init_cpio list into a gzip'd cpio newc archive, like the kernel's usr/gen_init_cpio.",
        discussion: """
            Lines: file, dir, nod, slink, pipe, sock (see the kernel's usr/gen_init_cpio). \
            File locations are relative to the list's folder unless absolute. Entries keep the \
            list's order; every mtime is fixed, so the same list gives the same bytes.
            """)

    @Option(help: "The gen_init_cpio list.") var list: String
    @Option(name: [.short, .customLong("output")], help: "The archive to write.") var output: String
    @Flag(help: "Write the cpio archive without gzip.") var noCompress = false
    @Option(help: "The mtime of every entry (seconds since the epoch).") var mtime: Int64 = 0
    @Flag(help: "Print JSON (schema kmatrix-initramfs/1).") var json = false

    func run() async throws {
        let cwd = FileManager.default.currentDirectoryPath
        let listPath = absolutePath(list, relativeTo: cwd)
        let outputPath = absolutePath(output, relativeTo: cwd)
        let tree = try CpioList.parse(file: listPath)
        let record = try InitramfsWriter.write(tree, to: outputPath, mtime: mtime, ordered: false,
                                               compression: noCompress ? .none : InitramfsWriter.compression)
        if json { return try printJSON(record, schema: "kmatrix-initramfs/1") }
        print("\(record.path): \(record.entries) entries, \(record.archiveBytes) bytes")
    }
}
