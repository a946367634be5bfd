import Foundation
import KmatrixCore

/// A kernel's text, data and bss, summed from its ELF section headers as binutils' `size`
/// does by default (the Berkeley format): what a kernel engineer compares between builds.
public struct SectionSizes: Sendable, Codable, Equatable {
    public var text: UInt64
    public var data: UInt64
    public var bss: UInt64

    public init(text: UInt64, data: UInt64, bss: UInt64) {
        self.text = text
        self.data = data
        self.bss = bss
    }

    public var total: UInt64 { text + data + bss }

    /// Reads only the ELF header and the section header table (a vmlinux runs to tens of
    /// megabytes; its section headers are a few kilobytes at its end).
    public static func read(elf path: String) throws(KmatrixError) -> SectionSizes {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .host("cannot open \(path)") }
        defer { try? handle.close() }
        func bytes(at offset: UInt64, count: Int) throws(KmatrixError) -> [UInt8] {
            do {
                try handle.seek(toOffset: offset)
                let data = try handle.read(upToCount: count) ?? Data()
                guard data.count == count else { throw KmatrixError.host("\(path): ELF data at \(offset) lies past the end of the file") }
                return Array(data)
            } catch let error as KmatrixError {
                throw error
            } catch {
                throw .host("cannot read \(path)", underlying: error)
            }
        }
        let header = try bytes(at: 0, count: 64)
        guard header[0..<4] == [0x7f, 0x45, 0x4c, 0x46], [1, 2].contains(header[4]), [1, 2].contains(header[5]) else {
            throw .host("\(path) is not an ELF file")
        }
        let is64 = header[4] == 2
        let reader = FieldReader(littleEndian: header[5] == 1)
        let tableOffset = reader.int(header, is64 ? 40 : 32, is64 ? 8 : 4)
        let entrySize = Int(reader.int(header, is64 ? 58 : 46, 2))
        var count = Int(reader.int(header, is64 ? 60 : 48, 2))
        guard tableOffset > 0, entrySize >= (is64 ? 64 : 40) else { throw .host("\(path) has no section headers (stripped?)") }
        if count == 0 {
            // More than 0xff00 sections: the real count is section 0's size.
            let first = try bytes(at: tableOffset, count: entrySize)
            count = Int(reader.int(first, is64 ? 32 : 20, is64 ? 8 : 4))
        }
        guard count > 0, count < 1 << 20 else { throw .host("\(path): implausible section count \(count)") }
        let table = try bytes(at: tableOffset, count: count * entrySize)
        var sizes = SectionSizes(text: 0, data: 0, bss: 0)
        for index in 0..<count {
            let base = index * entrySize
            let type = reader.int(table, base + 4, 4)
            let flags = reader.int(table, base + 8, is64 ? 8 : 4)
            let size = reader.int(table, base + (is64 ? 32 : 20), is64 ? 8 : 4)
            sizes.add(type: type, flags: flags, size: size)
        }
        return sizes
    }

    /// binutils' rule: only allocated sections count; code or read-only is text, anything
    /// else with contents is data, the rest (SHT_NOBITS) is bss.
    mutating func add(type: UInt64, flags: UInt64, size: UInt64) {
        let write: UInt64 = 0x1, alloc: UInt64 = 0x2, exec: UInt64 = 0x4, noBits: UInt64 = 8
        guard flags & alloc != 0 else { return }
        if flags & exec != 0 || flags & write == 0 {
            text += size
        } else if type != noBits {
            data += size
        } else {
            bss += size
        }
    }

    struct FieldReader {
        var littleEndian: Bool
        /// An unsigned field; the caller has checked the bytes are there.
        func int(_ bytes: [UInt8], _ offset: Int, _ size: Int) -> UInt64 {
            var value: UInt64 = 0
            for i in 0..<size {
                let at = offset + (littleEndian ? size - 1 - i : i)
                value = value << 8 | UInt64(at < bytes.count ? bytes[at] : 0)
            }
            return value
        }
    }
}
