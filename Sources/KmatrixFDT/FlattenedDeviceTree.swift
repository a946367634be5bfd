import CFDT

/// A libfdt failure: the operation, libfdt's error code and its own text (`fdt_strerror`).
public struct FDTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The positive `FDT_ERR_*` code.
    public var code: Int32
    /// libfdt's message for `code`.
    public var message: String
    /// What kmatrix asked libfdt to do.
    public var operation: String

    public init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = abs(code)
        self.message = String(cString: fdt_strerror(-abs(code)))
    }

    public var description: String { "\(operation): \(message)" }

    public static let truncatedCode = FDT_ERR_TRUNCATED
}

/// One property of a node, copied out of the blob.
public struct FDTProperty: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]
}

/// A flattened device tree blob held in memory this object owns, validated with
/// `fdt_check_full` before anything else reads it: the blob is untrusted input.
///
/// Immutable after `init`, so sharing it across tasks is safe (hence `@unchecked`).
public final class FlattenedDeviceTree: @unchecked Sendable {
    /// Slack after the blob: libfdt reads header fields by the version the header claims
    /// before it can compare sizes, so a short file must not let it read past the buffer.
    private static let slack = 64
    private let buffer: UnsafeMutableRawBufferPointer
    /// The number of bytes of the blob (the file's size, not the header's `totalsize`).
    public let size: Int

    /// Copies `bytes` into an 8-byte aligned buffer and checks header and structure.
    public init(bytes: [UInt8]) throws(FDTError) {
        // Validated in a local buffer: `self.buffer` is set only once the blob passed, so a
        // failed init frees it here and `deinit` never sees it (no double free).
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + Self.slack, alignment: 8)
        local.initializeMemory(as: UInt8.self, repeating: 0)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress, let target = local.baseAddress { target.copyMemory(from: base, byteCount: source.count) }
        }
        // Below the smallest header, libfdt's answer is "truncated": say so without asking it.
        var failure: FDTError?
        if bytes.count < 40 {
            failure = FDTError("fdt_check_header", code: FDT_ERR_TRUNCATED)
        } else if case let header = fdt_check_header(local.baseAddress), header != 0 {
            failure = FDTError("fdt_check_header", code: header)
        } else if case let full = fdt_check_full(local.baseAddress, bytes.count), full != 0 {
            failure = FDTError("fdt_check_full", code: full)
        }
        if let failure {
            local.deallocate()
            throw failure
        }
        size = bytes.count
        buffer = local
    }

    deinit { buffer.deallocate() }

    private var base: UnsafeRawPointer { UnsafeRawPointer(buffer.baseAddress!) }

    /// A big-endian header field (offset in bytes into `struct fdt_header`).
    private func header(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The header's `totalsize` (at most `size`: checked in `init`).
    public var totalSize: Int { Int(header(4)) }
    /// The header's `version`.
    public var version: Int { Int(header(20)) }

    /// Every node in structure order with its depth (the root is depth 0).
    public func nodes() -> [(offset: Int32, depth: Int)] {
        var result: [(Int32, Int)] = []
        var depth: Int32 = 0
        var offset: Int32 = 0
        // The root is at offset 0 in a blob that passed fdt_check_full.
        result.append((0, 0))
        while true {
            offset = fdt_next_node(base, offset, &depth)
            guard offset >= 0, depth >= 0 else { break }
            result.append((offset, Int(depth)))
            // fdt_check_full bounds the structure; this bounds the loop whatever happens.
            if result.count > size { break }
        }
        return result
    }

    /// The node's name with its unit address (`uart@9000`); empty for the root.
    public func name(of node: Int32) throws(FDTError) -> String {
        var length: Int32 = 0
        guard let name = fdt_get_name(base, node, &length) else { throw FDTError("fdt_get_name", code: length) }
        return string(UnsafeRawPointer(name), length: Int(length))
    }

    /// Every property of the node, in blob order.
    public func properties(of node: Int32) throws(FDTError) -> [FDTProperty] {
        var result: [FDTProperty] = []
        var offset = fdt_first_property_offset(base, node)
        while offset >= 0 {
            var length: Int32 = 0
            var namePointer: UnsafePointer<CChar>?
            guard let value = fdt_getprop_by_offset(base, offset, &namePointer, &length) else {
                throw FDTError("fdt_getprop_by_offset", code: length)
            }
            let name = namePointer.map { String(cString: $0) } ?? ""
            result.append(FDTProperty(name: name, value: try bytes(at: UnsafeRawPointer(value), length: Int(length))))
            offset = fdt_next_property_offset(base, offset)
        }
        guard offset == -FDT_ERR_NOTFOUND else { throw FDTError("fdt_next_property_offset", code: offset) }
        return result
    }

    /// The node at a path, or an alias name (libfdt resolves aliases for paths without '/').
    public func offset(ofPath path: String) -> Int32? {
        let offset = fdt_path_offset(base, path)
        return offset >= 0 ? offset : nil
    }

    /// The node carrying `phandle`.
    public func offset(ofPhandle phandle: UInt32) -> Int32? {
        let offset = fdt_node_offset_by_phandle(base, phandle)
        return offset >= 0 ? offset : nil
    }

    /// The full path of the node at `offset`.
    public func path(of node: Int32) throws(FDTError) -> String {
        var capacity = 256
        while capacity <= 1 << 16 {
            var text = [CChar](repeating: 0, count: capacity)
            let result = fdt_get_path(base, node, &text, Int32(capacity))
            if result == 0 { return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            guard result == -FDT_ERR_NOSPACE else { throw FDTError("fdt_get_path", code: result) }
            capacity *= 4
        }
        throw FDTError("fdt_get_path", code: FDT_ERR_NOSPACE)
    }

    /// Bytes libfdt pointed at, after checking they lie inside the blob.
    private func bytes(at pointer: UnsafeRawPointer, length: Int) throws(FDTError) -> [UInt8] {
        let start = pointer - base
        guard length >= 0, start >= 0, start <= size, length <= size - start else {
            throw FDTError("bounds check", code: FDT_ERR_TRUNCATED)
        }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    private func string(_ pointer: UnsafeRawPointer, length: Int) -> String {
        guard let raw = try? bytes(at: pointer, length: length) else { return "" }
        return String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }
}
