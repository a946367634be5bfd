import Foundation
import KmatrixZlib

/// The pixels of an 8-bit RGB or RGBA PNG (what Chromium's screenshots are), decoded
/// here so a test can tell a rendered page from a blank one.
struct PNGPixels {
    var width: Int
    var height: Int
    /// RGB per pixel, row by row (alpha dropped: screenshots are opaque).
    var rgb: [UInt8]

    enum Failure: Error, CustomStringConvertible {
        case notPNG(String)
        var description: String { if case .notPNG(let why) = self { return why }; return "" }
    }

    init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw Failure.notPNG("\(file): cannot read it") }
        try self.init(bytes: Array(data))
    }

    init(bytes: [UInt8]) throws {
        guard bytes.count > 8, bytes[0..<8] == [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] else { throw Failure.notPNG("no PNG signature") }
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[at + $1]) } }
        var offset = 8, compressed: [UInt8] = []
        var header: (width: Int, height: Int, depth: UInt8, color: UInt8, interlace: UInt8)?
        while offset + 12 <= bytes.count {
            let length = u32(offset), type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
            let body = offset + 8
            guard body + length + 4 <= bytes.count else { throw Failure.notPNG("chunk \(type) runs past the end") }
            if type == "IHDR" { header = (u32(body), u32(body + 4), bytes[body + 8], bytes[body + 9], bytes[body + 12]) }
            if type == "IDAT" { compressed += bytes[body..<body + length] }
            if type == "IEND" { break }
            offset = body + length + 4
        }
        guard let header, header.depth == 8, [2, 6].contains(header.color), header.interlace == 0 else {
            throw Failure.notPNG("only 8-bit RGB/RGBA non-interlaced PNGs are read here")
        }
        let channels = header.color == 6 ? 4 : 3, stride = header.width * channels
        let raw = try Gzip.decompress(compressed)
        guard raw.count == header.height * (stride + 1) else { throw Failure.notPNG("image data is \(raw.count) bytes, not \(header.height * (stride + 1))") }
        var previous = [UInt8](repeating: 0, count: stride), pixels: [UInt8] = []
        pixels.reserveCapacity(header.width * header.height * 3)
        for row in 0..<header.height {
            let start = row * (stride + 1), filter = raw[start]
            var line = Array(raw[start + 1..<start + 1 + stride])
            // The five PNG filters, undone left to right against the row above.
            for i in 0..<stride {
                let a = i >= channels ? Int(line[i - channels]) : 0, b = Int(previous[i])
                let c = i >= channels ? Int(previous[i - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Failure.notPNG("row \(row) has filter \(filter)")
                }
                line[i] = UInt8(truncatingIfNeeded: Int(line[i]) + predictor)
            }
            for x in 0..<header.width { pixels += line[x * channels..<x * channels + 3] }
            previous = line
        }
        (width, height, rgb) = (header.width, header.height, pixels)
    }

    /// How many pixels have each colour, as 0xRRGGBB.
    var histogram: [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for i in Swift.stride(from: 0, to: rgb.count, by: 3) {
            counts[UInt32(rgb[i]) << 16 | UInt32(rgb[i + 1]) << 8 | UInt32(rgb[i + 2]), default: 0] += 1
        }
        return counts
    }
}
