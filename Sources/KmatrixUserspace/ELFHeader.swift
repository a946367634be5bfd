import Foundation
import KmatrixCore

/// What an ELF file's header says about it: read from the bytes, not trusted from a name.
public struct ELFHeader: Sendable, Codable, Equatable {
    /// 32 or 64.
    public var elfClass: Int
    public var littleEndian: Bool
    /// `e_machine` as the number and as the name kmatrix's descriptors use.
    public var machineNumber: UInt16
    public var machine: String
    /// `ET_EXEC` (2) or `ET_DYN` (3)...
    public var type: UInt16
    /// No `PT_INTERP` program header: runs without a dynamic loader.
    public var isStatic: Bool

    /// `e_machine` numbers (elf.h's `EM_*`, a fact of the ELF format) and the names a
    /// target's `userspace.elfMachine` uses for them.
    static let machineNames: [UInt16: String] = [
        2: "sparc", 3: "i386", 4: "m68k", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 42: "sh",
        43: "sparcv9", 62: "x86_64", 183: "aarch64", 243: "riscv", 258: "loongarch",
    ]

    public var isExecutable: Bool { type == 2 || type == 3 }

    public static func read(_ path: String) throws(KmatrixError) -> ELFHeader {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .host("cannot open \(path)") }
        defer { try? handle.close() }
        let bytes: [UInt8]
        do { bytes = Array(try handle.read(upToCount: 1 << 20) ?? Data()) } catch {
            throw .host("cannot read \(path)", underlying: error)
        }
        return try parse(bytes, path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String = "<bytes>") throws(KmatrixError) -> ELFHeader {
        guard bytes.count >= 52, bytes[0..<4] == [0x7f, 0x45, 0x4c, 0x46] else { throw .host("\(path) is not an ELF file") }
        let is64: Bool
        switch bytes[4] {
        case 1: is64 = false
        case 2: is64 = true
        default: throw .host("\(path): unknown ELF class \(bytes[4])")
        }
        guard bytes[5] == 1 || bytes[5] == 2 else { throw .host("\(path): unknown ELF byte order \(bytes[5])") }
        let little = bytes[5] == 1
        func int(_ offset: Int, _ size: Int) throws(KmatrixError) -> UInt64 {
            guard offset >= 0, offset + size <= bytes.count else { throw .host("\(path): ELF header field at \(offset) lies past the bytes read") }
            var value: UInt64 = 0
            for i in 0..<size {
                let byte = UInt64(bytes[offset + (little ? size - 1 - i : i)])
                value = value << 8 | byte
            }
            return value
        }
        let type = UInt16(try int(16, 2))
        let machine = UInt16(try int(18, 2))
        let phoff = Int(try int(is64 ? 32 : 28, is64 ? 8 : 4))
        let phentsize = Int(try int(is64 ? 54 : 42, 2))
        let phnum = Int(try int(is64 ? 56 : 44, 2))
        var interp = false
        for i in 0..<phnum where try int(phoff + i * phentsize, 4) == 3 { interp = true }
        return ELFHeader(elfClass: is64 ? 64 : 32, littleEndian: little, machineNumber: machine,
                         machine: machineNames[machine] ?? "machine-\(machine)", type: type, isStatic: !interp)
    }
}
