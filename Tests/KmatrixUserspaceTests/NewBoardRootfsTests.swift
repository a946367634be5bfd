import Foundation
import KmatrixCore
import KmatrixTestSupport
import KmatrixUserspace
import Testing

extension RootfsTests {
    /// A board kmatrix has no code for: its console's node and the interactive shell come
    /// from its Targets file alone.
    @Test func newBoardGetsItsConsoleNodeAndShellFromTheDescriptor() throws {
        let dir = try scratchFolder("rootfs-board")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let board = try MadeUpBoard.target()
        let options = RootfsOptions(busyboxInstall: try fakeBusybox(dir), rootDevice: .initramfs, console: board.console.device,
                                    consoleNode: board.console.node, initMode: .interactive)
        _ = try InitramfsWriter.write(try Rootfs.assemble(options), to: "\(dir)/initramfs.cpio.gz")
        let members = try NewcReader.parse(try gunzip("\(dir)/initramfs.cpio.gz"))
        let byName = Dictionary(members.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        let uart = try #require(byName["dev/\(MadeUpBoard.console)"], "\(members.map(\.name).filter { $0.hasPrefix("dev/") })")
        #expect(uart.fileType == 0o020000)
        #expect(uart.rdevMajor == MadeUpBoard.node.major && uart.rdevMinor == MadeUpBoard.node.minor)
        let inittab = String(decoding: try #require(byName["etc/inittab"]).data, as: UTF8.self)
        #expect(inittab.contains("\(MadeUpBoard.console)::respawn:-/bin/sh"), "\(inittab)")
        // Only the board's own console: the generic nodes plus one.
        let special = members.filter { $0.fileType == 0o020000 }
        #expect(special.count == Rootfs.deviceNodes.count + 1)
    }
}
