import Foundation

/// How large the artifact cache may grow: `KMATRIX_CACHE_MAX_SIZE` (e.g. `20G`), else
/// `maxSize` in `<cache root>/config.json`, else no limit. A run collects garbage down to
/// it when it ends.
public enum CacheLimit {
    public static let environmentVariable = "KMATRIX_CACHE_MAX_SIZE"

    public static func configured(workspaceRoot: String,
                                  environment: [String: String] = ProcessInfo.processInfo.environment) throws(KmatrixError) -> UInt64? {
        if let value = environment[environmentVariable], !value.isEmpty {
            return try parse(value, field: environmentVariable)
        }
        let file = "\(workspaceRoot)/config.json"
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .badInput("\(file): not a JSON object")
        }
        for field in object.keys where field != "maxSize" {
            throw .badInput("\(file): unknown field '\(field)' (known: maxSize)")
        }
        switch object["maxSize"] {
        case nil: return nil
        case let text as String: return try parse(text, field: "\(file): maxSize")
        case let number as NSNumber where number.int64Value > 0: return UInt64(number.int64Value)
        default: throw .badInput("\(file): maxSize must be a size such as \"20G\" or a number of bytes")
        }
    }

    /// `500M`, `20G`, `1.5T`, `4096`, `64K` (powers of 1024; a trailing `B` or `iB` is allowed).
    public static func parse(_ text: String, field: String) throws(KmatrixError) -> UInt64 {
        var body = text.trimmingCharacters(in: .whitespaces).uppercased()
        if body.hasSuffix("IB") { body.removeLast(2) } else if body.hasSuffix("B") { body.removeLast() }
        let units: [Character: Double] = ["K": 1024, "M": 1024 * 1024, "G": 1024 * 1024 * 1024, "T": 1024 * 1024 * 1024 * 1024]
        var multiplier = 1.0
        if let last = body.last, let unit = units[last] {
            multiplier = unit
            body.removeLast()
        }
        guard let number = Double(body), number.isFinite, number > 0, number * multiplier < 1e19 else {
            throw .badInput("\(field): '\(text)' is not a size (examples: 500M, 20G, 1.5T, 1048576)")
        }
        return UInt64(number * multiplier)
    }

    /// `1.2 GiB`-style text for people.
    public static func describe(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), index = 0
        while value >= 1024, index < units.count - 1 { value /= 1024; index += 1 }
        return index == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[index])
    }
}
