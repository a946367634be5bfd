import CZlib
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// A gzip compressor that deflates fixed-size blocks of its input on every core, as pigz
/// does: each block is a raw deflate stream primed with the 32 KiB before it and ended by
/// a sync flush (the last one by the final block), so the blocks simply concatenate into
/// one gzip member. Deflate at level 9 is almost all the time of packing an initramfs, and
/// one core of two did it all.
///
/// The output does not depend on the number of cores, on how the input is cut into calls,
/// or on thread timing: blocks start at fixed offsets (`blockSize`), a block is known to be
/// the last one only at `finish()`, and the header is the one `GzipCompressor` writes
/// (mtime 0, no name, XFL 2, OS 3). The bytes differ from `GzipCompressor`'s (one deflate
/// stream): a few bytes per block for the flush markers and the matches lost across them.
public final class ParallelGzipCompressor {
    /// Uncompressed bytes per block: part of the output format, so a constant. 64 KiB
    /// blocks gave the smallest archive of 64, 96 and 128 KiB on the arm64 rootfs (about
    /// 160 bytes under `gzip -9`) and enough blocks to share between cores.
    public static let blockSize = 64 << 10
    static let window = 32 << 10

    private let level: Int32
    private let batch: Int
    private var current: [UInt8] = []
    /// Full blocks known not to be the last (more input came after them).
    private var ready: [[UInt8]] = []
    /// The last 32 KiB before `ready[0]` (or `current`).
    private var dictionary: [UInt8] = []
    private var crc: uLong = crc32(0, nil, 0)
    private var length: UInt64 = 0
    private var started = false
    private var finished = false

    /// `threads`: how many blocks are deflated at once (default: the active cores). It
    /// changes only the speed, never the bytes.
    public init(level: Int32 = 9, threads: Int? = nil) throws(ZlibError) {
        guard (0...9).contains(level) else { throw ZlibError("deflateInit2", code: Z_STREAM_ERROR, message: "level \(level) is not 0-9") }
        self.level = level
        let cores = max(1, threads ?? sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        // Enough blocks per round that uneven blocks (text vs. code) even out across cores.
        batch = max(2, cores * 4)
        current.reserveCapacity(Self.blockSize)
    }

    /// Takes `bytes`; returns whatever compressed output is complete (possibly nothing).
    public func compress(_ bytes: UnsafeRawBufferPointer) throws(ZlibError) -> [UInt8] {
        var out = header()
        guard bytes.count > 0 else { return out }
        crc = crc32(crc, bytes.baseAddress!.assumingMemoryBound(to: Bytef.self), uInt(bytes.count))
        length += UInt64(bytes.count)
        var offset = 0
        while offset < bytes.count {
            if current.count == Self.blockSize {
                ready.append(current)
                current = []
                current.reserveCapacity(Self.blockSize)
            }
            let n = min(Self.blockSize - current.count, bytes.count - offset)
            current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
            offset += n
        }
        if ready.count >= batch { out += try deflateRound(ready, last: nil) }
        return out
    }

    /// Compresses what is left and writes the gzip trailer (CRC-32 and size).
    public func finish() throws(ZlibError) -> [UInt8] {
        guard !finished else { return [] }
        finished = true
        var out = header()
        out += try deflateRound(ready, last: current)
        ready = []
        current = []
        for value in [UInt32(truncatingIfNeeded: crc), UInt32(truncatingIfNeeded: length)] {
            for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }
        return out
    }

    private func header() -> [UInt8] {
        guard !started else { return [] }
        started = true
        // What zlib writes for windowBits 15+16 at level 9: no mtime, no name, XFL 2 (best), OS 3 (Unix).
        return [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, level == 9 ? 2 : (level < 2 ? 4 : 0), 3]
    }

    /// Deflates `blocks` (and `last`, the final block, if given) in parallel; returns the
    /// compressed blocks in order and keeps the window for the next round.
    private func deflateRound(_ blocks: [[UInt8]], last: [UInt8]?) throws(ZlibError) -> [UInt8] {
        ready = []
        let all = last.map { blocks + [$0] } ?? blocks
        guard !all.isEmpty else { return [] }
        // Each block writes only its own slot.
        nonisolated(unsafe) let results = UnsafeMutableBufferPointer<Result<[UInt8], ZlibError>>.allocate(capacity: all.count)
        results.initialize(repeating: .success([]))
        defer { results.deinitialize(); results.deallocate() }
        let first = dictionary
        let level = level
        let lastIndex = last == nil ? -1 : all.count - 1
        DispatchQueue.concurrentPerform(iterations: all.count) { i in
            let before = i == 0 ? first : Array(all[i - 1].suffix(Self.window))
            results[i] = Result { () throws(ZlibError) in try Self.deflateBlock(all[i], dictionary: before, level: level, last: i == lastIndex) }
        }
        dictionary = Array((all.last ?? []).suffix(Self.window))
        var out: [UInt8] = []
        for result in results { out += try result.get() }
        return out
    }

    static func deflateBlock(_ block: [UInt8], dictionary: [UInt8], level: Int32, last: Bool) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        // Raw deflate (the gzip wrapper is ours), 32 KiB window, memLevel 8: a 2^15-entry
        // hash as gzip -9 has (memLevel 9's 2^16 made the arm64 rootfs 0.2% bigger).
        var code = deflateInit2_(&stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard code == Z_OK else { throw ZlibError("deflateInit2", code: code) }
        defer { deflateEnd(&stream) }
        if !dictionary.isEmpty {
            code = dictionary.withUnsafeBufferPointer { deflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
            guard code == Z_OK else { throw ZlibError("deflateSetDictionary", code: code) }
        }
        // Room for the worst case plus the sync-flush marker, so one call does it all.
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(block.count))) + 64)
        var produced = 0
        code = block.withUnsafeBufferPointer { input -> Int32 in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = uInt(input.count)
            return out.withUnsafeMutableBufferPointer { output -> Int32 in
                stream.next_out = output.baseAddress
                stream.avail_out = uInt(output.count)
                let code = deflate(&stream, last ? Z_FINISH : Z_SYNC_FLUSH)
                produced = output.count - Int(stream.avail_out)
                return code
            }
        }
        let done = last ? code == Z_STREAM_END : (code == Z_OK && stream.avail_in == 0 && stream.avail_out > 0)
        guard done else { throw ZlibError("deflate", code: code, message: stream.msg.map { String(cString: $0) }) }
        out.removeSubrange(produced...)
        return out
    }
}

/// A streaming gzip compressor: bytes in, compressed bytes out as they are complete.
public protocol GzipStreaming: AnyObject {
    func compress(_ bytes: UnsafeRawBufferPointer) throws(ZlibError) -> [UInt8]
    func finish() throws(ZlibError) -> [UInt8]
}

extension GzipCompressor: GzipStreaming {}
extension ParallelGzipCompressor: GzipStreaming {}
