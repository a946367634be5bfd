import Foundation

/// The matrix `kmatrix init` writes at the top of a kernel tree: the shipped matrix's
/// busybox source, profiles and tests, with that tree as the kernel source and, as cells,
/// the shipped matrix's targets whose compiler (from the toolchain descriptor) is installed
/// here. Only the default matrix's: the other shipped boards (Matrices/boards.json) are a
/// longer run, one of which does not boot yet, and are added by naming them.
public struct KernelTreeMatrix {
    /// A shipped target left out, and why.
    public struct Skipped: Sendable, Equatable {
        public var target: String
        public var reason: String
        /// The Debian packages that would add it.
        public var packages: [String]
    }

    public var targets: [String]
    public var skipped: [Skipped]
    public var toolchain: String

    /// The toolchain of the shipped matrix's first cell entry; targets in name order.
    public static func pick(_ shipped: Project, isInstalled: (String) -> Bool) throws(KmatrixError) -> KernelTreeMatrix {
        guard let entry = shipped.matrix.cells.first, let name = entry.toolchains.first, let toolchain = shipped.toolchains[name] else {
            throw .badInput("\(shipped.matrix.file): cells[0] names no toolchain to start from")
        }
        var picked: [String] = []
        var skipped: [Skipped] = []
        let inMatrix = Set(shipped.cells.map(\.target.name))
        for target in shipped.targets.values.sorted(by: { $0.name < $1.name }) where inMatrix.contains(target.name) {
            guard let arch = toolchain.architectures[target.userspace.debianArch] else {
                skipped.append(Skipped(target: target.name, reason: "toolchain \(name) does not build for \(target.userspace.debianArch)", packages: []))
                continue
            }
            let compiler = toolchain.compilerPath(for: arch)
            if isInstalled(compiler) { picked.append(target.name) } else {
                skipped.append(Skipped(target: target.name, reason: "\(compiler) is not installed", packages: arch.packages))
            }
        }
        return KernelTreeMatrix(targets: picked, skipped: skipped, toolchain: name)
    }

    /// The checks before writing anything: `tree` is the top of a kernel tree, not configured
    /// in place, and holds no matrix file yet.
    public static func checkTree(_ tree: String, file: String, matrixNames: [String]) throws(KmatrixError) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let missing = ["Makefile", "Kconfig", "arch/"].filter { item in
            !fm.fileExists(atPath: (tree as NSString).appendingPathComponent(item), isDirectory: &isDir) || isDir.boolValue != item.hasSuffix("/")
        }
        guard missing.isEmpty else {
            throw .badInput("\(tree) is not the top of a kernel tree: it has no \(missing.joined(separator: ", ")); run kmatrix init where the kernel's Makefile, Kconfig and arch/ are")
        }
        try SourceIdentity.checkNotConfiguredInPlace(tree, field: "kmatrix init")
        for name in Set(matrixNames + [file]).sorted() where fm.fileExists(atPath: (tree as NSString).appendingPathComponent(name)) {
            throw .badInput("\((tree as NSString).appendingPathComponent(name)) exists; kmatrix init does not overwrite it (remove it to start again)")
        }
    }

    /// The shipped matrix file, rewritten: the kernel source is `tree`, paths it names
    /// relative to itself become absolute (they are not beside the new file), and one cell
    /// entry, the shipped first one with these targets.
    public func render(shippedMatrix path: String, tree: String) throws(KmatrixError) -> Data {
        let base = (path as NSString).deletingLastPathComponent
        let fm = FileManager.default
        func absolute(_ value: Any) -> Any {
            guard let relative = value as? String, !relative.hasPrefix("/"), !relative.hasPrefix("~"), !relative.hasPrefix("{") else { return value }
            let full = ((base as NSString).appendingPathComponent(relative) as NSString).standardizingPath
            return fm.fileExists(atPath: full) ? full : relative
        }
        guard let data = fm.contents(atPath: path),
              var matrix = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              var sources = matrix["sources"] as? [String: Any],
              let cells = matrix["cells"] as? [[String: Any]], var cell = cells.first else {
            throw .badInput("\(path): not a matrix kmatrix init can start from")
        }
        sources["kernel"] = ["paths": [tree]]
        matrix["sources"] = sources
        if let fragments = matrix["fragments"] as? [Any] { matrix["fragments"] = fragments.map(absolute) }
        if var profiles = matrix["profiles"] as? [String: [String: Any]] {
            for (name, var profile) in profiles {
                if let fragments = profile["fragments"] as? [Any] { profile["fragments"] = fragments.map(absolute) }
                if let base = profile["base"] { profile["base"] = absolute(base) }
                profiles[name] = profile
            }
            matrix["profiles"] = profiles
        }
        if var tests = matrix["tests"] as? [String: [String: Any]] {
            for (name, var suite) in tests {
                if let scripts = suite["scripts"] as? [Any] { suite["scripts"] = scripts.map(absolute) }
                tests[name] = suite
            }
            matrix["tests"] = tests
        }
        cell["target"] = targets
        cell["toolchain"] = toolchain
        cell["expect"] = nil
        cell["kernel"] = nil  // the new matrix has one unnamed kernel: this tree
        matrix["cells"] = [cell]
        do {
            return try JSONSerialization.data(withJSONObject: matrix, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) + Data("\n".utf8)
        } catch {
            throw .host("cannot render the matrix for \(tree)", underlying: error)
        }
    }
}
