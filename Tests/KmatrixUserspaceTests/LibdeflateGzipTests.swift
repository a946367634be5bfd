import Foundation
import KmatrixArchive
import KmatrixCore
import KmatrixTestSupport
import KmatrixUserspace
import KmatrixZlib
import Testing

@Suite("libdeflate gzip")
struct LibdeflateGzipTests {
    /// Bytes that compress like a rootfs: text repeated across block boundaries, mixed with noise.
    static func sample(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
        var state = seed
        var out: [UInt8] = []
        out.reserveCapacity(count)
        let text = Array("root:x:0:0:root:/root:/bin/sh\n#!/bin/sh\nmount -t proc proc /proc\n".utf8)
        while out.count < count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            if state >> 60 < 9 {
                out += text.prefix(Int(state >> 40) % text.count + 1)
            } else {
                for _ in 0..<(Int(state >> 33) % 300) { state = state &* 6364136223846793005 &+ 1; out.append(UInt8(truncatingIfNeeded: state >> 56)) }
            }
        }
        return Array(out.prefix(count))
    }

    static func compress(_ input: [UInt8], piece: Int) throws -> [UInt8] {
        let compressor = try LibdeflateGzipCompressor(level: 9)
        var out: [UInt8] = []
        var offset = 0
        while offset < input.count {
            let n = min(piece, input.count - offset)
            out += try input[offset..<(offset + n)].withUnsafeBytes { try compressor.compress($0) }
            offset += n
        }
        out += try compressor.finish()
        return out
    }

    @Test("gzip -d of the real tool reads back every byte", .needs(tools: ["gzip"]))
    func realGzipReadsItBack() async throws {
        let dir = try scratchFolder("pgzip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for size in [0, 1, 65_535, 65_536, 3 * 65_536 + 12_345, 5_000_011] {
            let input = Self.sample(size, seed: UInt64(size))
            let packed = try Self.compress(input, piece: 4096 + 17)
            try Data(packed).write(to: URL(fileURLWithPath: "\(dir)/x.gz"))
            #expect(try await runTool(["gzip", "-t", "\(dir)/x.gz"]) == 0, "gzip -t, \(size) bytes")
            try #require(try await runTool(["gzip", "-dc", "\(dir)/x.gz"], stdout: "\(dir)/x") == 0)
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/x"))) == input, "\(size) bytes through gzip -d")
            #expect(try Gzip.decompress(packed) == input, "\(size) bytes through zlib")
        }
    }

    @Test func oneMemberWhateverTheCallSizes() throws {
        let input = Self.sample(4_700_001)
        let reference = try Self.compress(input, piece: input.count)
        #expect(try Self.compress(input, piece: 512) == reference)
        #expect(try Self.compress(input, piece: 100_003) == reference)
        // libdeflate's header: no mtime, no name, XFL 2 (level 9), OS 255 ("unknown"; zlib
        // writes 3, and neither gzip nor the kernel reads it).
        #expect(Array(reference.prefix(10)) == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255])
        // One member: the kernel unpacks a second one only if the first ends a whole cpio archive.
        #expect(try Gzip.memberEnds(reference) == [reference.count])
        // libdeflate at level 9 against zlib at level 9: no bigger.
        let single = try Gzip.compress(input)
        #expect(reference.count <= single.count, "\(reference.count) against \(single.count)")
    }

    @Test("an initramfs holds the same cpio bytes as the single-stream writer made", .needs(tools: ["gzip", "cpio"]))
    func initramfsSameCpioAsSingleStream() async throws {
        let dir = try scratchFolder("pgzip-cpio")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: "\(dir)/files", withIntermediateDirectories: true)
        for i in 0..<6 {
            try Data(Self.sample(70_000 + i * 31_000, seed: UInt64(i))).write(to: URL(fileURLWithPath: "\(dir)/files/f\(i)"))
        }
        let list = (["dir /bin 0755 0 0", "nod /dev/console 0600 0 0 c 5 1", "slink /bin/sh busybox 0777 0 0"]
            + (0..<6).map { "file /bin/f\($0) files/f\($0) 075\($0) \($0) 0" }).joined(separator: "\n") + "\n"
        try list.write(toFile: "\(dir)/list", atomically: true, encoding: .utf8)
        let tree = try CpioList.parse(file: "\(dir)/list")
        let new = try InitramfsWriter.write(tree, to: "\(dir)/new.cpio.gz", ordered: false)
        let old = try InitramfsWriter.write(tree, to: "\(dir)/old.cpio.gz", ordered: false, compression: .gzipSingleStream(level: 9))
        #expect(new.entries == old.entries && new.dataBytes == old.dataBytes)
        // The real tools read the archive: gzip -d, then cpio lists it.
        try #require(try await runTool(["gzip", "-dc", "\(dir)/new.cpio.gz"], stdout: "\(dir)/new.cpio") == 0)
        try #require(try await runTool(["gzip", "-dc", "\(dir)/old.cpio.gz"], stdout: "\(dir)/old.cpio") == 0)
        let newCpio = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/new.cpio"))
        #expect(newCpio == (try Data(contentsOf: URL(fileURLWithPath: "\(dir)/old.cpio"))))
        try #require(try await runTool(["sh", "-c", "cpio -it --quiet < '\(dir)/new.cpio'"], stdout: "\(dir)/names") == 0)
        let names = try String(contentsOfFile: "\(dir)/names", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(names == ["bin", "dev/console", "bin/sh"] + (0..<6).map { "bin/f\($0)" })
    }
}
