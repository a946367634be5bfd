import Foundation
import KmatrixCore

/// One member of a cpio `newc` archive as its header says it.
public struct NewcMember: Sendable, Equatable {
    public var name: String
    public var inode: UInt32
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var links: UInt32
    public var mtime: UInt32
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    public var rdevMajor: UInt32
    public var rdevMinor: UInt32
    public var data: [UInt8]

    public var fileType: UInt32 { mode & 0o170000 }
    public var permissions: UInt32 { mode & 0o7777 }
}

/// A plain reader of the `newc` format (070701/070702), independent of libarchive, so
/// tests can check what libarchive wrote against what the kernel's tool writes.
public enum NewcReader {
    public static func parse(_ bytes: [UInt8]) throws(KmatrixError) -> [NewcMember] {
        var members: [NewcMember] = []
        var offset = 0
        func field(_ index: Int, at base: Int) throws(KmatrixError) -> UInt32 {
            let start = base + 6 + index * 8
            guard let text = String(bytes: bytes[start..<start + 8], encoding: .ascii), let value = UInt32(text, radix: 16) else {
                throw .badInput("cpio header at byte \(base): field \(index) is not hexadecimal")
            }
            return value
        }
        func align(_ n: Int) -> Int { (n + 3) & ~3 }
        while true {
            guard offset + 110 <= bytes.count else { throw .badInput("cpio archive ends without a TRAILER!!! entry") }
            let magic = String(bytes: bytes[offset..<offset + 6], encoding: .ascii)
            guard magic == "070701" || magic == "070702" else {
                throw .badInput("cpio header at byte \(offset): magic \(magic ?? "?") is not newc")
            }
            let nameSize = Int(try field(11, at: offset))
            let fileSize = Int(try field(6, at: offset))
            let nameStart = offset + 110
            guard nameSize >= 1, nameStart + nameSize <= bytes.count else { throw .badInput("cpio header at byte \(offset): bad name size") }
            let name = String(decoding: bytes[nameStart..<nameStart + nameSize - 1], as: UTF8.self)
            let dataStart = align(nameStart + nameSize)
            guard dataStart + fileSize <= bytes.count else { throw .badInput("cpio member \(name): data runs past the end") }
            if name == "TRAILER!!!" { return members }
            members.append(NewcMember(
                name: name, inode: try field(0, at: offset), mode: try field(1, at: offset), uid: try field(2, at: offset),
                gid: try field(3, at: offset), links: try field(4, at: offset), mtime: try field(5, at: offset),
                deviceMajor: try field(7, at: offset), deviceMinor: try field(8, at: offset),
                rdevMajor: try field(9, at: offset), rdevMinor: try field(10, at: offset),
                data: Array(bytes[dataStart..<dataStart + fileSize])))
            offset = align(dataStart + fileSize)
        }
    }
}
