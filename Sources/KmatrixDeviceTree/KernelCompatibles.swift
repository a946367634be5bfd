import Foundation
import KmatrixCore

/// The device tree `compatible` strings a built kernel can bind without modules, read
/// from its `vmlinux`.
///
/// A built-in driver's match table is an array of `struct of_device_id { char name[32];
/// char type[32]; char compatible[128]; const void *data; }`, and the early tables
/// (`CLK_OF_DECLARE`, `TIMER_OF_DECLARE`, `IRQCHIP_DECLARE`, `OF_EARLYCON_DECLARE`'s
/// `struct earlycon_id`) hold the same 128-byte `compatible` array. So rather than every
/// printable string of the read-only data, this takes the strings that fill such a field:
/// 4-byte aligned, preceded by a NUL, and followed by zero padding to 128 bytes. A plain
/// string literal (`of_machine_is_compatible("arm,vexpress")`, a quirk list) is packed
/// against its neighbours and does not qualify, which keeps false positives rare.
///
/// AMBA (PrimeCell) drivers match peripheral IDs, not compatibles: those are found by their
/// `amba_id` table's name in the symbol table (`pl011_ids`; see `DeviceTreeRules.ambaIDTables`).
/// What it misses: code that compares strings, buses populated by `for_each_compatible_node`.
/// When no field-shaped string is found at all (a vmlinux laid out differently), every
/// printable string of the data sections is taken instead, and the report says so.
public enum KernelCompatibles {
    /// The length of `of_device_id.compatible` and `earlycon_id.compatible`.
    static let fieldLength = 128

    /// Reads `vmlinux` (or `BUILD_DIR/vmlinux` when given a directory): its compatibles.
    public static func load(vmlinux: String) throws(KmatrixError) -> Set<String> {
        try drivers(vmlinux: vmlinux).compatibles
    }

    /// Reads `vmlinux` (or `BUILD_DIR/vmlinux` when given a directory): the compatibles of
    /// its match tables and the names in its symbol table (AMBA drivers' id tables).
    public static func drivers(vmlinux: String) throws(KmatrixError) -> KernelDrivers {
        var path = vmlinux
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            path = (path as NSString).appendingPathComponent("vmlinux")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw KmatrixError.badInput("cannot read the kernel \(path)")
        }
        defer { try? handle.close() }
        let layout: ELFSection.Layout
        do {
            layout = try ELFSection.layout(of: handle)
        } catch {
            throw KmatrixError.badInput("\(path) is not a vmlinux: \(error.message)")
        }
        var symbols: Set<String>?
        if let names = layout.symbolNames, let bytes = try? names.read(from: handle) {
            symbols = Set(bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
        }
        var fields = Set<String>()
        for section in layout.data {
            guard let bytes = try? section.read(from: handle) else { continue }
            fields.formUnion(compatibleFields(in: bytes, address: section.address))
        }
        guard fields.isEmpty else { return KernelDrivers(compatibles: fields, symbols: symbols) }
        var strings = Set<String>()
        for section in layout.data {
            guard let bytes = try? section.read(from: handle) else { continue }
            strings.formUnion(printableStrings(in: bytes))
        }
        return KernelDrivers(compatibles: strings, symbols: symbols, fromEveryString: true)
    }

    /// Strings that fill a zero-padded 128-byte `compatible` array (see the type's note).
    static func compatibleFields(in bytes: [UInt8], address: UInt64) -> Set<String> {
        var found = Set<String>()
        let n = bytes.count
        var p = 0
        while p + fieldLength <= n {
            // Fields start 4-byte aligned in memory, after a NUL (the end of `type` or `name_term`).
            guard (address &+ UInt64(p)) % 4 == 0, p == 0 || bytes[p - 1] == 0, isCompatibleByte(bytes[p]) else { p += 1; continue }
            var end = p
            while end < p + fieldLength, bytes[end] != 0 { end += 1 }
            let length = end - p
            if length >= 2, length < fieldLength,
               bytes[p..<end].allSatisfy(isCompatibleByte),
               bytes[end..<(p + fieldLength)].allSatisfy({ $0 == 0 }) {
                let text = String(decoding: bytes[p..<end], as: UTF8.self)
                if isCompatibleText(text) { found.insert(text) }
                p += fieldLength
                continue
            }
            p += 1
        }
        return found
    }

    /// Every NUL-terminated run of compatible characters: the fallback.
    static func printableStrings(in bytes: [UInt8]) -> Set<String> {
        var found = Set<String>()
        var start = 0
        for (i, byte) in bytes.enumerated() where !isCompatibleByte(byte) {
            if byte == 0, i - start >= 2, i - start < fieldLength {
                let text = String(decoding: bytes[start..<i], as: UTF8.self)
                if isCompatibleText(text) { found.insert(text) }
            }
            start = i + 1
        }
        return found
    }

    static func isCompatibleByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "/"): true
        default: false
        }
    }

    /// Looks like a compatible: starts with a letter or digit and has a letter.
    static func isCompatibleText(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.properties.isAlphabetic || ("0"..."9").contains(first) else { return false }
        return text.unicodeScalars.contains { $0.properties.isAlphabetic }
    }
}

/// A section of an ELF file with the bytes it holds in the image: just enough ELF to find
/// a kernel's data, with every offset and size checked against the file.
struct ELFSection {
    struct Problem: Error { var message: String }

    var name: String
    var address: UInt64
    var offset: UInt64
    var size: UInt64

    static let progbits: UInt32 = 1
    static let alloc: UInt64 = 0x2
    static let execinstr: UInt64 = 0x4

    /// What the driver check reads: the data sections, and the symbol table's names.
    struct Layout {
        /// Allocated, non-executable sections with contents (`.rodata`, `.init.data`, `.data`...).
        var data: [ELFSection]
        /// The string table of `.symtab` (every symbol's name), if the file has one.
        var symbolNames: ELFSection?
    }

    static let symtab: UInt32 = 2

    static func layout(of handle: FileHandle) throws(Problem) -> Layout {
        let fileSize: UInt64
        do { fileSize = try handle.seekToEnd() } catch { throw Problem(message: "cannot seek: \(error)") }
        let ident = try read(handle, at: 0, count: 64, fileSize: fileSize)
        guard ident.count >= 52, ident[0] == 0x7f, ident[1] == UInt8(ascii: "E"), ident[2] == UInt8(ascii: "L"), ident[3] == UInt8(ascii: "F") else {
            throw Problem(message: "no ELF magic")
        }
        let is64: Bool
        switch ident[4] { case 1: is64 = false; case 2: is64 = true; default: throw Problem(message: "unknown ELF class \(ident[4])") }
        let little: Bool
        switch ident[5] { case 1: little = true; case 2: little = false; default: throw Problem(message: "unknown ELF byte order \(ident[5])") }
        let reader = FieldReader(little: little)
        guard !is64 || ident.count >= 64 else { throw Problem(message: "truncated ELF header") }
        let shoff = is64 ? reader.u64(ident, 0x28) : UInt64(reader.u32(ident, 0x20))
        let shentsize = UInt64(reader.u16(ident, is64 ? 0x3a : 0x2e))
        let shnum = UInt64(reader.u16(ident, is64 ? 0x3c : 0x30))
        let shstrndx = UInt64(reader.u16(ident, is64 ? 0x3e : 0x32))
        guard shnum > 0, shentsize >= (is64 ? 64 : 40), shnum <= 65535,
              shoff < fileSize, shentsize * shnum <= fileSize - shoff else {
            throw Problem(message: "section headers lie outside the file")
        }
        let table = try read(handle, at: shoff, count: Int(shentsize * shnum), fileSize: fileSize)
        struct Header { var name: UInt32; var type: UInt32; var flags, address, offset, size: UInt64; var link: UInt32 }
        let headers: [Header] = (0..<Int(shnum)).map { i in
            let b = i * Int(shentsize)
            return is64
                ? Header(name: reader.u32(table, b), type: reader.u32(table, b + 4), flags: reader.u64(table, b + 8),
                         address: reader.u64(table, b + 16), offset: reader.u64(table, b + 24), size: reader.u64(table, b + 32),
                         link: reader.u32(table, b + 40))
                : Header(name: reader.u32(table, b), type: reader.u32(table, b + 4), flags: UInt64(reader.u32(table, b + 8)),
                         address: UInt64(reader.u32(table, b + 12)), offset: UInt64(reader.u32(table, b + 16)), size: UInt64(reader.u32(table, b + 20)),
                         link: reader.u32(table, b + 24))
        }
        var names: [UInt8] = []
        if shstrndx < shnum {
            let h = headers[Int(shstrndx)]
            if h.offset <= fileSize, h.size <= min(fileSize - h.offset, 1 << 24) {
                names = try read(handle, at: h.offset, count: Int(h.size), fileSize: fileSize)
            }
        }
        func name(_ at: UInt32) -> String {
            guard Int(at) < names.count else { return "" }
            return String(decoding: names[Int(at)...].prefix { $0 != 0 }, as: UTF8.self)
        }
        let data: [ELFSection] = headers.compactMap { h in
            guard h.type == progbits, h.flags & alloc != 0, h.flags & execinstr == 0, h.size > 0,
                  h.offset <= fileSize, h.size <= fileSize - h.offset else { return nil }
            return ELFSection(name: name(h.name), address: h.address, offset: h.offset, size: h.size)
        }
        var symbolNames: ELFSection?
        if let table = headers.first(where: { $0.type == symtab }), Int(table.link) < headers.count {
            let h = headers[Int(table.link)]
            if h.size > 0, h.offset <= fileSize, h.size <= fileSize - h.offset {
                symbolNames = ELFSection(name: name(h.name), address: 0, offset: h.offset, size: h.size)
            }
        }
        return Layout(data: data, symbolNames: symbolNames)
    }

    func read(from handle: FileHandle) throws(Problem) -> [UInt8] {
        let fileSize: UInt64
        do { fileSize = try handle.seekToEnd() } catch { throw Problem(message: "cannot seek: \(error)") }
        return try Self.read(handle, at: offset, count: Int(size), fileSize: fileSize)
    }

    static func read(_ handle: FileHandle, at offset: UInt64, count: Int, fileSize: UInt64) throws(Problem) -> [UInt8] {
        guard offset <= fileSize else { throw Problem(message: "offset \(offset) beyond the file") }
        do {
            try handle.seek(toOffset: offset)
            let data = try handle.read(upToCount: count) ?? Data()
            return [UInt8](data)
        } catch {
            throw Problem(message: "cannot read at \(offset): \(error)")
        }
    }

    /// Fixed-width fields at checked offsets (out of range reads as zero).
    struct FieldReader {
        var little: Bool
        func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(truncatingIfNeeded: value(b, at, 2)) }
        func u32(_ b: [UInt8], _ at: Int) -> UInt32 { UInt32(truncatingIfNeeded: value(b, at, 4)) }
        func u64(_ b: [UInt8], _ at: Int) -> UInt64 { value(b, at, 8) }
        private func value(_ b: [UInt8], _ at: Int, _ width: Int) -> UInt64 {
            guard at >= 0, at + width <= b.count else { return 0 }
            var result: UInt64 = 0
            for i in 0..<width {
                let byte = UInt64(b[little ? at + width - 1 - i : at + i])
                result = result << 8 | byte
            }
            return result
        }
    }
}

/// What a built kernel can drive without modules, as the device-tree check reads it.
public struct KernelDrivers: Sendable, Equatable {
    /// The compatibles of its match tables.
    public var compatibles: Set<String>
    /// The names in its ELF symbol table; nil when it has none (a stripped vmlinux).
    public var symbols: Set<String>?
    /// No string shaped like an `of_device_id` field was found, so `compatibles` is every
    /// printable string of the data sections: a missing driver may then go unnoticed.
    public var fromEveryString: Bool

    public init(compatibles: Set<String>, symbols: Set<String>? = nil, fromEveryString: Bool = false) {
        self.compatibles = compatibles
        self.symbols = symbols
        self.fromEveryString = fromEveryString
    }
}
