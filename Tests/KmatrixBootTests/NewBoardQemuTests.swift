import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixTestSupport
import Testing

/// A board kmatrix has no code for: the QEMU command line follows its Targets file alone.
@Suite("A new board's QEMU command line")
struct NewBoardQemuTests {
    @Test func appendLineAndMachineComeFromTheDescriptor() throws {
        let board = try MadeUpBoard.target()
        let root = try #require(board.rootDevices["initramfs"])
        var invocation = QemuInvocation(target: board, rootDevice: root, kernel: "K", initrd: "I")
        #expect(invocation.append == "console=\(MadeUpBoard.console) panic=-1 rdinit=/init")
        invocation.earlycon = true
        #expect(invocation.append.hasPrefix("console=\(MadeUpBoard.console) earlycon=ec_imx6q,0x021e8000 "))
        let argv = invocation.command.argv
        #expect(argv.first == "qemu-system-acme")
        #expect(argv.containsPair(["-M", "acme-imx6q"]) && argv.containsPair(["-cpu", "cortex-a9"]) && argv.containsPair(["-m", "512"]), "\(argv)")
        #expect(argv.filter { $0 == "-serial" }.count == 1 && argv.containsPair(["-serial", "stdio"]))
    }

    @Test func theConsolesSerialPortComesAfterNullOnes() throws {
        // SABRE Lite's console is its second UART: QEMU's first serial port gets null.
        let json = MadeUpBoard.json.replacingOccurrences(of: #""binary": "qemu-system-acme","#,
                                                         with: #""binary": "qemu-system-acme", "consoleSerialPort": 1,"#)
        let board = try decodeDescriptor(Target.self, from: Data(json.utf8), file: "Targets/acme-imx6q.json")
        let root = try #require(board.rootDevices["initramfs"])
        let argv = QemuInvocation(target: board, rootDevice: root, kernel: "K", initrd: "I").command.argv
        let serials = argv.indices.filter { argv[$0] == "-serial" }.map { argv[$0 + 1] }
        #expect(serials == ["null", "stdio"], "\(argv)")
        let tooHigh = MadeUpBoard.json.replacingOccurrences(of: #""binary": "qemu-system-acme","#,
                                                            with: #""binary": "qemu-system-acme", "consoleSerialPort": 7,"#)
        #expect(throws: (any Error).self) { try decodeDescriptor(Target.self, from: Data(tooHigh.utf8), file: "Targets/acme-imx6q.json") }
    }
}

extension [String] {
    /// Whether `pair` occurs as two adjacent words (an option and its value).
    func containsPair(_ pair: [String]) -> Bool {
        indices.dropLast().contains { self[$0] == pair[0] && self[$0 + 1] == pair[1] }
    }
}
