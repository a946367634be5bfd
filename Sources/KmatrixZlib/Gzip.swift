import CZlib

/// A zlib failure with zlib's own message (`z_stream.msg`) when it gave one.
public struct ZlibError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var code: Int32
    public var message: String

    public init(_ operation: String, code: Int32, message: String? = nil) {
        self.operation = operation
        self.code = code
        self.message = message ?? Self.name(code)
    }

    static func name(_ code: Int32) -> String {
        switch code {
        case Z_STREAM_ERROR: "stream error"
        case Z_DATA_ERROR: "data error"
        case Z_MEM_ERROR: "out of memory"
        case Z_BUF_ERROR: "buffer error"
        case Z_VERSION_ERROR: "zlib version mismatch"
        default: "zlib returned \(code)"
        }
    }

    public var description: String { "\(operation): \(message)" }
}

/// A streaming gzip compressor. The gzip header zlib writes through `deflateInit2` with a
/// window of 15+16 has mtime 0, no name and a fixed OS byte, so the same input always
/// gives the same bytes (unlike `gzip`, which records the file's mtime and name).
public final class GzipCompressor {
    private var stream = z_stream()
    private var finished = false
    private var output: [UInt8] = []

    public init(level: Int32 = 9) throws(ZlibError) {
        let code = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY,
                                 ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard code == Z_OK else { throw ZlibError("deflateInit2", code: code) }
    }

    deinit { deflateEnd(&stream) }

    /// Compresses `bytes`; returns what zlib produced so far (possibly nothing).
    public func compress(_ bytes: UnsafeRawBufferPointer) throws(ZlibError) -> [UInt8] {
        try run(bytes, flush: Z_NO_FLUSH)
    }

    public func compress(_ bytes: [UInt8]) throws(ZlibError) -> [UInt8] {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(ZlibError) -> [UInt8] in try run(raw, flush: Z_NO_FLUSH) } }
        return try result.get()
    }

    /// Flushes everything and writes the gzip trailer (CRC-32 and size).
    public func finish() throws(ZlibError) -> [UInt8] {
        guard !finished else { return [] }
        finished = true
        return try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH)
    }

    private func run(_ input: UnsafeRawBufferPointer, flush: Int32) throws(ZlibError) -> [UInt8] {
        var produced: [UInt8] = []
        let chunk = 1 << 16
        if output.count < chunk { output = [UInt8](repeating: 0, count: chunk) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        while true {
            let code = output.withUnsafeMutableBufferPointer { buffer -> Int32 in
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(chunk)
                return deflate(&stream, flush)
            }
            guard code == Z_OK || code == Z_STREAM_END || code == Z_BUF_ERROR else {
                throw ZlibError("deflate", code: code, message: stream.msg.map { String(cString: $0) })
            }
            let count = chunk - Int(stream.avail_out)
            produced.append(contentsOf: output[0..<count])
            if flush == Z_FINISH {
                if code == Z_STREAM_END { break }
            } else if stream.avail_in == 0 && stream.avail_out != 0 {
                break
            }
        }
        stream.next_in = nil
        return produced
    }
}

extension GzipCompressor {
    /// What decides the bytes besides the input: for cache keys.
    public static func identity(level: Int32) -> String { "zlib \(String(cString: zlibVersion())) gzip level \(level), one stream" }
}

public enum Gzip {
    /// gzip of `bytes` in one call, deterministic (see `GzipCompressor`).
    public static func compress(_ bytes: [UInt8], level: Int32 = 9) throws(ZlibError) -> [UInt8] {
        let compressor = try GzipCompressor(level: level)
        var out = try compressor.compress(bytes)
        out += try compressor.finish()
        return out
    }

    /// Decompresses a whole gzip file, every member of it (used to check what kmatrix wrote), or a zlib one
    /// (a PNG's image data): zlib tells them apart by their headers (window bits + 32).
    public static func decompress(_ bytes: [UInt8]) throws(ZlibError) -> [UInt8] {
        try inflateAll(bytes).output
    }

    /// Where each member of a gzip file ends (offsets just past its trailer), in order.
    public static func memberEnds(_ bytes: [UInt8]) throws(ZlibError) -> [Int] {
        try inflateAll(bytes).memberEnds
    }

    private static func inflateAll(_ bytes: [UInt8]) throws(ZlibError) -> (output: [UInt8], memberEnds: [Int]) {
        var memberEnds: [Int] = []
        var stream = z_stream()
        var code = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard code == Z_OK else { throw ZlibError("inflateInit2", code: code) }
        defer { inflateEnd(&stream) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var input = bytes
        code = input.withUnsafeMutableBufferPointer { inBuffer -> Int32 in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            while true {
                let step = chunk.withUnsafeMutableBufferPointer { outBuffer -> Int32 in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                result.append(contentsOf: chunk[0..<produced])
                if step == Z_STREAM_END {
                    memberEnds.append(inBuffer.count - Int(stream.avail_in))
                    // A .gz may be several members one after another (kmatrix's initramfs
                    // is): read on, as gzip -d does.
                    guard stream.avail_in > 0 else { return Z_STREAM_END }
                    let reset = inflateReset(&stream)
                    if reset != Z_OK { return reset }
                    continue
                }
                if step != Z_OK { return step }
                if stream.avail_in == 0 && produced == 0 { return Z_BUF_ERROR }
            }
        }
        guard code == Z_STREAM_END else {
            throw ZlibError("inflate", code: code, message: stream.msg.map { String(cString: $0) })
        }
        return (result, memberEnds)
    }
}
