import Foundation

/// A key that matches any JSON object member, used to list what a file really contains.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.stringValue = String(intValue); self.intValue = intValue }
}

/// Raised while decoding; turned into a `DescriptorError` with the file name at the top.
struct FieldProblem: Error {
    var path: [String]
    var message: String
}

/// One problem in one descriptor file: which file, which field, what is wrong, what is valid.
public struct DescriptorError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var field: String
    public var message: String

    public init(file: String, field: String, message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String {
        field.isEmpty ? "\(file): \(message)" : "\(file): \(field): \(message)"
    }

    public var asKmatrixError: KmatrixError { .badInput(description) }
}

extension Decoder {
    /// Rejects members the type does not know, suggesting the nearest known name: a
    /// misspelled optional field must not silently fall back to its default.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_: Keys.Type) throws {
        guard let all = try? container(keyedBy: AnyCodingKey.self) else { return }
        let known = Keys.allCases.map(\.stringValue)
        for key in all.allKeys where !known.contains(key.stringValue) {
            var message = "unknown field '\(key.stringValue)'"
            if let near = nearest(key.stringValue, in: known) { message += " (did you mean '\(near)'?)" }
            message += "; known fields: \(known.joined(separator: ", "))"
            throw FieldProblem(path: codingPath.map(fieldName) + [key.stringValue], message: message)
        }
    }

    func problem(_ message: String, at key: (any CodingKey)? = nil) -> FieldProblem {
        FieldProblem(path: codingPath.map(fieldName) + (key.map { [fieldName($0)] } ?? []), message: message)
    }
}

func fieldName(_ key: any CodingKey) -> String {
    if let index = key.intValue { return "[\(index)]" }
    return key.stringValue
}

/// Joins a path as `qemu.args[2]`.
func joinFieldPath(_ parts: [String]) -> String {
    var out = ""
    for part in parts {
        if part.hasPrefix("[") || out.isEmpty { out += part } else { out += "." + part }
    }
    return out
}

/// The closest name by edit distance, if it is close enough to be a plausible typo.
public func nearest(_ word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

/// Decodes one JSON descriptor strictly and maps every failure to file + field + reason.
public func decodeDescriptor<T: Decodable>(_ type: T.Type, from data: Data, file: String) throws(DescriptorError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch let problem as FieldProblem {
        throw DescriptorError(file: file, field: joinFieldPath(problem.path), message: problem.message)
    } catch let error as DecodingError {
        if case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
            throw DescriptorError(file: file, field: "", message: "not valid JSON: \(syntaxErrorLocation(data))")
        }
        throw describe(error, file: file)
    } catch {
        throw DescriptorError(file: file, field: "", message: "cannot decode: \(error)")
    }
}

/// JSONDecoder on Linux gives no position; JSONSerialization gives a character offset,
/// which people need as a line and column.
private func syntaxErrorLocation(_ data: Data) -> String {
    do {
        _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return "the top level must be an object"
    } catch {
        let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        guard let range = detail.range(of: #"character (\d+)"#, options: .regularExpression),
              let offset = Int(detail[range].dropFirst("character ".count)) else { return detail }
        let prefix = data.prefix(offset)
        let line = prefix.filter { $0 == UInt8(ascii: "\n") }.count + 1
        let column = offset - (prefix.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
        let reason = detail.replacingOccurrences(of: #" around character \d+\.?"#, with: "", options: .regularExpression)
        return "\(reason) at line \(line), column \(column)"
    }
}

private func describe(_ error: DecodingError, file: String) -> DescriptorError {
    switch error {
    case .keyNotFound(let key, let context):
        let path = joinFieldPath(context.codingPath.map(fieldName) + [key.stringValue])
        return DescriptorError(file: file, field: path, message: "required field is missing")
    case .typeMismatch(let type, let context):
        return DescriptorError(file: file, field: joinFieldPath(context.codingPath.map(fieldName)),
                               message: "wrong type: expected \(jsonTypeName(type))")
    case .valueNotFound(let type, let context):
        return DescriptorError(file: file, field: joinFieldPath(context.codingPath.map(fieldName)),
                               message: "null where \(jsonTypeName(type)) is required")
    case .dataCorrupted(let context):
        var message = context.debugDescription
        if let underlying = context.underlyingError as NSError?,
           let detail = underlying.userInfo[NSDebugDescriptionErrorKey] as? String {
            message = "not valid JSON: \(detail)"
        } else if context.codingPath.isEmpty {
            message = "not valid JSON: \(message)"
        }
        return DescriptorError(file: file, field: joinFieldPath(context.codingPath.map(fieldName)), message: message)
    @unknown default:
        return DescriptorError(file: file, field: "", message: "\(error)")
    }
}

private func jsonTypeName(_ type: Any.Type) -> String {
    if type is String.Type { return "a string" }
    if type is Int.Type || type is UInt.Type || type is Int32.Type || type is UInt32.Type || type is UInt64.Type { return "an integer" }
    if type is Double.Type { return "a number" }
    if type is Bool.Type { return "true or false" }
    let name = String(describing: type)
    if name.hasPrefix("Array") { return "an array" }
    if name.hasPrefix("Dictionary") { return "an object" }
    return "an object"
}

extension KeyedDecodingContainer {
    /// `decodeIfPresent(...) ?? default`, the swift-format pattern that keeps JSON short.
    func value<T: Decodable>(_ key: Key, default fallback: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback()
    }
}
