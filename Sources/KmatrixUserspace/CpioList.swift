import Foundation
import KmatrixCore

/// The kernel's `usr/gen_init_cpio` list format (seed 004):
///
///     # a comment
///     file <name> <location> <mode> <uid> <gid> [<hard links>...]
///     dir <name> <mode> <uid> <gid>
///     nod <name> <mode> <uid> <gid> <b|c> <maj> <min>
///     slink <name> <target> <mode> <uid> <gid>
///     pipe <name> <mode> <uid> <gid>
///     sock <name> <mode> <uid> <gid>
///
/// `<location>` expands `${VAR}` from the environment, like the kernel's tool; a relative
/// location is taken from the list's folder (the kernel's tool uses its working directory).
public enum CpioList {
    public static func parse(file path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(KmatrixError) -> RootfsTree {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .badInput("cannot read the cpio list \(path): \(error.localizedDescription)")
        }
        let folder = ((path as NSString).standardizingPath as NSString).deletingLastPathComponent
        return try parse(text, file: path, baseDirectory: folder, environment: environment)
    }

    public static func parse(_ text: String, file: String, baseDirectory: String,
                             environment: [String: String] = [:]) throws(KmatrixError) -> RootfsTree {
        var tree = RootfsTree()
        var errors: [KmatrixError] = []
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            let number = offset + 1
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let type = words.first, !type.hasPrefix("#") else { continue }
            do throws(LineProblem) {
                tree.add(try entry(type: type, Array(words.dropFirst()), baseDirectory: baseDirectory, environment: environment))
            } catch {
                errors.append(.badInput("\(file):\(number): \(error.message): '\(line)'"))
            }
        }
        if let first = errors.first {
            guard errors.count > 1 else { throw first }
            throw KmatrixError(.badInput, errors.map(\.message).joined(separator: "\n"))
        }
        return tree
    }

    struct LineProblem: Error { var message: String }

    static let usage: [String: String] = [
        "file": "file <name> <location> <mode> <uid> <gid> [<hard links>...]",
        "dir": "dir <name> <mode> <uid> <gid>",
        "nod": "nod <name> <mode> <uid> <gid> <b|c> <maj> <min>",
        "slink": "slink <name> <target> <mode> <uid> <gid>",
        "pipe": "pipe <name> <mode> <uid> <gid>",
        "sock": "sock <name> <mode> <uid> <gid>",
    ]

    static func entry(type: String, _ args: [String], baseDirectory: String, environment: [String: String]) throws(LineProblem) -> RootfsEntry {
        guard let form = usage[type] else {
            throw LineProblem(message: "unknown entry type '\(type)' (valid: \(usage.keys.sorted().joined(separator: ", ")))")
        }
        func need(_ count: Int, exactly: Bool = true) throws(LineProblem) {
            if args.count < count || (exactly && args.count > count) {
                throw LineProblem(message: "'\(type)' takes \(count) fields, found \(args.count) (\(form))")
            }
        }
        func mode(_ word: String) throws(LineProblem) -> UInt32 {
            guard let value = UInt32(word, radix: 8), value <= 0o7777 else {
                throw LineProblem(message: "'\(word)' is not an octal mode like 0755")
            }
            return value
        }
        func id(_ word: String, _ what: String) throws(LineProblem) -> UInt32 {
            guard let value = UInt32(word) else { throw LineProblem(message: "'\(word)' is not a numeric \(what)") }
            return value
        }
        func name(_ word: String) throws(LineProblem) -> String {
            let normalized = RootfsTree.normalize(word)
            if word.split(separator: "/").contains("..") { throw LineProblem(message: "'\(word)' leaves the archive root with '..'") }
            if normalized.isEmpty { throw LineProblem(message: "'\(word)' names the archive root itself") }
            return normalized
        }
        switch type {
        case "dir":
            try need(4)
            return RootfsEntry(try name(args[0]), .directory, mode: try mode(args[1]), uid: try id(args[2], "uid"), gid: try id(args[3], "gid"))
        case "pipe", "sock":
            try need(4)
            return RootfsEntry(try name(args[0]), type == "pipe" ? .fifo : .socket, mode: try mode(args[1]),
                               uid: try id(args[2], "uid"), gid: try id(args[3], "gid"))
        case "slink":
            try need(5)
            return RootfsEntry(try name(args[0]), .symlink(target: args[1]), mode: try mode(args[2]),
                               uid: try id(args[3], "uid"), gid: try id(args[4], "gid"))
        case "nod":
            try need(7)
            guard let major = UInt32(args[5]), let minor = UInt32(args[6]) else {
                throw LineProblem(message: "device numbers '\(args[5]) \(args[6])' are not numbers")
            }
            let kind: RootfsEntry.Kind
            switch args[4] {
            case "c": kind = .characterDevice(major: major, minor: minor)
            case "b": kind = .blockDevice(major: major, minor: minor)
            default: throw LineProblem(message: "device type '\(args[4])' must be 'b' or 'c'")
            }
            return RootfsEntry(try name(args[0]), kind, mode: try mode(args[1]), uid: try id(args[2], "uid"), gid: try id(args[3], "gid"))
        default: // file
            try need(5, exactly: false)
            var location = expand(args[1], environment)
            if !location.hasPrefix("/") { location = "\(baseDirectory)/\(location)" }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: location, isDirectory: &isDir) else {
                throw LineProblem(message: "the file \(location) does not exist")
            }
            guard !isDir.boolValue else { throw LineProblem(message: "\(location) is a folder; use a 'dir' line") }
            var links: [String] = []
            for word in args.dropFirst(5) { links.append(try name(word)) }
            return RootfsEntry(try name(args[0]), .file(source: location), mode: try mode(args[2]),
                               uid: try id(args[3], "uid"), gid: try id(args[4], "gid"), hardLinks: links)
        }
    }

    /// `${VAR}` expansion as the kernel's tool does it (unset variables expand to nothing).
    static func expand(_ location: String, _ environment: [String: String]) -> String {
        var result = location
        while let start = result.range(of: "${"), let end = result[start.upperBound...].firstIndex(of: "}") {
            let name = String(result[start.upperBound..<end])
            result.replaceSubrange(start.lowerBound...end, with: environment[name] ?? "")
        }
        return result
    }
}
