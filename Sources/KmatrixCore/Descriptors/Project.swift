import Foundation

/// Where a target or toolchain descriptor came from: the descriptors kmatrix ships (its
/// data folder) or the project's own `Targets/` and `Toolchains/`, which add to the shipped
/// ones and replace those of the same name.
public struct DescriptorOrigin: Sendable, Equatable, Codable {
    public enum Place: String, Sendable, Codable { case shipped, project }
    public var place: Place
    /// The descriptor's absolute path.
    public var path: String
    /// The shipped descriptor this project one replaces.
    public var overrides: String?

    public init(place: Place, path: String, overrides: String? = nil) {
        self.place = place; self.path = path; self.overrides = overrides
    }
}

/// Everything kmatrix reads from a project folder: `Targets/*.json`, `Toolchains/*.json`
/// and `matrix.json`, decoded strictly and cross-checked, with the matrix expanded to cells.
public struct Project: Sendable {
    public var root: String
    public var targets: [String: Target]
    public var toolchains: [String: Toolchain]
    public var matrix: Matrix
    public var cells: [Cell]
    /// Per target name and per toolchain name, where its descriptor came from.
    public var targetOrigins: [String: DescriptorOrigin] = [:]
    public var toolchainOrigins: [String: DescriptorOrigin] = [:]

    /// Loads and validates a project. Every problem in every file is collected, so one
    /// run of the tool shows them all. With `dataDirectory` (the shipped descriptors) other
    /// than `root`, the shipped targets and toolchains come first and the project's own
    /// folders, which may be absent, add to them or replace them by name.
    public static func load(root: String, matrixFile: String? = nil, dataDirectory: String? = nil) throws(KmatrixErrors) -> Project {
        var problems: [DescriptorError] = []
        let root = (root as NSString).standardizingPath
        let shipped = dataDirectory.map { ($0 as NSString).standardizingPath }.flatMap { $0 == root ? nil : $0 }
        let projectPlace: DescriptorOrigin.Place = dataDirectory.map { ($0 as NSString).standardizingPath } == root ? .shipped : .project

        func merged<T>(name: (T) -> String, file: (T) -> String,
                       load: (String, Bool) -> [T]) -> ([String: T], [String: DescriptorOrigin]) {
            var byName: [String: T] = [:]
            var origins: [String: DescriptorOrigin] = [:]
            let layers: [(String, DescriptorOrigin.Place, Bool)] = (shipped.map { [($0, .shipped, true)] } ?? [])
                + [(root, projectPlace, shipped == nil)]
            for (directory, place, required) in layers {
                var seen: [String: String] = [:]
                for descriptor in load(directory, required) {
                    let key = name(descriptor)
                    if let other = seen[key] {
                        problems.append(DescriptorError(file: file(descriptor), field: "name", message: "'\(key)' is also the name of \(other)"))
                    }
                    seen[key] = file(descriptor)
                    let path = absolutePath(file(descriptor), relativeTo: root)
                    origins[key] = DescriptorOrigin(place: place, path: path, overrides: origins[key]?.path)
                    byName[key] = descriptor
                }
            }
            return (byName, origins)
        }
        let (byName, targetOrigins) = merged(name: { (t: Target) in t.name }, file: { $0.file }) { directory, required in
            loadFolder(directory, folder: "Targets", root: root, required: required, problems: &problems) { (t: Target, file) in
                var t = t; t.file = file; return t
            }
        }
        let (toolchainsByName, toolchainOrigins) = merged(name: { (t: Toolchain) in t.name }, file: { $0.file }) { directory, required in
            loadFolder(directory, folder: "Toolchains", root: root, required: required, problems: &problems) { (t: Toolchain, file) in
                var t = t; t.file = file; return t
            }
        }
        let targets = byName.values.sorted { $0.name < $1.name }
        let toolchains = toolchainsByName.values.sorted { $0.name < $1.name }
        let matrixPath = matrixFile.map { absolutePath($0, relativeTo: root) } ?? (root as NSString).appendingPathComponent("matrix.json")
        let matrixName = displayName(matrixPath, root: root)
        var matrix: Matrix?
        if let data = FileManager.default.contents(atPath: matrixPath) {
            do throws(DescriptorError) {
                matrix = try decodeDescriptor(Matrix.self, from: data, file: matrixName)
                matrix?.file = matrixName
            } catch { problems.append(error) }
        } else {
            problems.append(DescriptorError(file: matrixName, field: "", message: "cannot read the matrix file"))
        }

        for target in targets {
            checkPathNames(target, problems: &problems)
            for (index, fragment) in target.kernel.fragments.enumerated() {
                checkFragment(fragment, descriptor: target.file, root: root, field: "kernel.fragments[\(index)]", problems: &problems)
            }
        }
        for toolchain in toolchains {
            if let other = toolchain.userspaceToolchain, toolchainsByName[other] == nil {
                problems.append(DescriptorError(file: toolchain.file, field: "userspaceToolchain",
                    message: "unknown toolchain '\(other)'; known: \(toolchainsByName.keys.sorted().joined(separator: ", "))"))
            }
        }

        var cells: [Cell] = []
        if let matrix {
            cells = expandCells(matrix, targets: byName, toolchains: toolchainsByName, root: root, problems: &problems)
        }
        guard problems.isEmpty, let matrix else {
            throw KmatrixErrors(problems.map(\.asKmatrixError))
        }
        return Project(root: root, targets: byName, toolchains: toolchainsByName, matrix: matrix, cells: cells,
                       targetOrigins: targetOrigins, toolchainOrigins: toolchainOrigins)
    }

    /// Descriptors of `directory/folder`, each named in messages relative to the project
    /// root when it lies inside it (absolute otherwise). A folder that is not `required`
    /// may be absent.
    private static func loadFolder<T: Decodable>(_ directory: String, folder: String, root: String, required: Bool,
                                                 problems: inout [DescriptorError], finish: (T, String) -> T) -> [T] {
        let dir = (directory as NSString).appendingPathComponent(folder)
        var isDir: ObjCBool = false
        if !required && !FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) { return [] }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            problems.append(DescriptorError(file: folder, field: "", message: "cannot read the folder \(dir)"))
            return []
        }
        var out: [T] = []
        for name in names.sorted() where name.hasSuffix(".json") {
            let file = displayName((dir as NSString).appendingPathComponent(name), root: root)
            guard let data = FileManager.default.contents(atPath: (dir as NSString).appendingPathComponent(name)) else {
                problems.append(DescriptorError(file: file, field: "", message: "cannot read the file"))
                continue
            }
            do throws(DescriptorError) {
                out.append(finish(try decodeDescriptor(T.self, from: data, file: file), file))
            } catch { problems.append(error) }
        }
        return out
    }

    private static func expandCells(_ matrix: Matrix, targets: [String: Target], toolchains: [String: Toolchain],
                                    root: String, problems: inout [DescriptorError]) -> [Cell] {
        let file = matrix.file
        for (index, fragment) in matrix.fragments.enumerated() {
            checkFragment(fragment, descriptor: file, root: root, field: "fragments[\(index)]", problems: &problems)
        }
        for (name, profile) in matrix.profiles.sorted(by: { $0.key < $1.key }) {
            for (index, fragment) in profile.fragments.enumerated() {
                checkFragment(fragment, descriptor: file, root: root, field: "profiles.\(name).fragments[\(index)]", problems: &problems)
            }
            if !profile.baseIsMakeTarget {
                checkFragment(profile.base, descriptor: file, root: root, field: "profiles.\(name).base", problems: &problems)
            }
        }
        checkTestSuites(matrix, root: root, problems: &problems)
        var cells: [Cell] = []
        var seen: Set<String> = []
        for (index, spec) in matrix.cells.enumerated() {
            let at = "cells[\(index)]"
            var ok = true
            func unknown(_ field: String, _ name: String, _ kind: String, _ known: [String]) {
                var message = "unknown \(kind) '\(name)'"
                if let near = nearest(name, in: known) { message += " (did you mean '\(near)'?)" }
                message += "; known: \(known.sorted().joined(separator: ", "))"
                problems.append(DescriptorError(file: file, field: "\(at).\(field)", message: message))
                ok = false
            }
            for name in spec.targets where targets[name] == nil { unknown("target", name, "target", Array(targets.keys)) }
            for name in spec.toolchains where toolchains[name] == nil { unknown("toolchain", name, "toolchain", Array(toolchains.keys)) }
            for name in spec.profiles where matrix.profiles[name] == nil { unknown("profile", name, "profile", Array(matrix.profiles.keys)) }
            let kernelNames = matrix.sources.kernels.compactMap(\.name)
            for name in spec.kernels ?? [] where !kernelNames.contains(name) {
                unknown("kernel", name, "kernel", kernelNames.isEmpty ? ["(none: sources.kernel is one unnamed source)"] : kernelNames)
            }
            let kernels = spec.kernels.map { names in matrix.sources.kernels.filter { names.contains($0.name ?? "") } } ?? matrix.sources.kernels
            guard ok else { continue }
            for targetName in spec.targets {
                let target = targets[targetName]!
                for rootName in spec.rootfs where target.rootDevices[rootName] == nil {
                    unknown("rootfs", rootName, "root device of target \(targetName)", Array(target.rootDevices.keys))
                }
                for toolchainName in spec.toolchains {
                    let toolchain = toolchains[toolchainName]!
                    if toolchain.architectures[target.userspace.debianArch] == nil {
                        problems.append(DescriptorError(file: file, field: "\(at).toolchain",
                            message: "toolchain '\(toolchainName)' (\(toolchain.file)) cannot build for \(target.userspace.debianArch), the architecture of target '\(targetName)'; it builds for: \(toolchain.architectures.keys.sorted().joined(separator: ", "))"))
                        ok = false
                    }
                }
            }
            guard ok else { continue }
            for targetName in spec.targets {
                for toolchainName in spec.toolchains {
                    for profileName in spec.profiles {
                        for rootName in spec.rootfs {
                            for kernel in kernels {
                                let target = targets[targetName]!
                                var cell = Cell(target: target, toolchain: toolchains[toolchainName]!,
                                                profileName: profileName, profile: matrix.profiles[profileName]!,
                                                rootName: rootName, rootDevice: target.rootDevices[rootName]!,
                                                extraOptions: spec.options, expect: spec.expect, kernel: kernel)
                                cell.tests = testSuites(profile: profileName, spec: spec, at: at, matrix: matrix, root: root, problems: &problems)
                                if seen.insert(cell.id).inserted { cells.append(cell) } else {
                                    problems.append(DescriptorError(file: file, field: at, message: "cell \(cell.id) is listed twice"))
                                }
                            }
                        }
                    }
                }
            }
        }
        return cells
    }

    /// Root-device names become file and folder names, make targets become make arguments:
    /// both are checked here so `../x` or `-f x` is bad input naming the file and field.
    private static func checkPathNames(_ target: Target, problems: inout [DescriptorError]) {
        for name in target.rootDevices.keys.sorted() where !isValidName(name) {
            problems.append(DescriptorError(file: target.file, field: "rootDevices",
                message: "'\(name)' is not a valid root device name (letters, digits, '_', '-')"))
        }
        let products = [("kernel.image.target", target.kernel.image.target)]
            + target.kernel.dtbs.enumerated().map { ("kernel.dtbs[\($0.offset)].target", $0.element.target) }
        for (field, makeTarget) in products where !isValidMakeTarget(makeTarget) {
            problems.append(DescriptorError(file: target.file, field: field,
                message: "'\(makeTarget)' is not a make target (no spaces, no '=', no '..', not starting with '-')"))
        }
    }

    private static func checkFragment(_ path: String, descriptor: String, root: String, field: String,
                                      problems: inout [DescriptorError]) {
        let full = resolveFragment(path, descriptor: descriptor, root: root)
        var isDir: ObjCBool = false
        if !FileManager.default.fileExists(atPath: full, isDirectory: &isDir) || isDir.boolValue {
            problems.append(DescriptorError(file: descriptor, field: field, message: "fragment file '\(path)' does not exist (looked at \(full))"))
            return
        }
        guard let text = try? String(contentsOfFile: full, encoding: .utf8) else {
            problems.append(DescriptorError(file: descriptor, field: field, message: "fragment file '\(path)' is not readable text"))
            return
        }
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            do throws(KernelOptionSyntaxError) { _ = try KernelOption.parseLine(String(line)) } catch {
                problems.append(DescriptorError(file: "\(full):\(number + 1)", field: field, message: error.description))
            }
        }
    }

    /// A fragment path is relative to the descriptor file that names it.
    public static func resolveFragment(_ path: String, descriptor: String, root: String) -> String {
        if path.hasPrefix("/") { return path }
        let dir = ((descriptor.hasPrefix("/") ? descriptor : (root as NSString).appendingPathComponent(descriptor)) as NSString).deletingLastPathComponent
        return ((dir as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }

    /// Cells selected by `--target`, `--toolchain` and `--cell`; an unknown name is bad input.
    public func select(targets wantedTargets: [String] = [], toolchains wantedToolchains: [String] = [],
                       cells wantedCells: [String] = []) throws(KmatrixError) -> [Cell] {
        for name in wantedTargets where targets[name] == nil {
            throw unknownSelection("--target", name, Array(targets.keys))
        }
        for name in wantedToolchains where toolchains[name] == nil {
            throw unknownSelection("--toolchain", name, Array(toolchains.keys))
        }
        for name in wantedCells where !cells.contains(where: { $0.id == name }) {
            throw unknownSelection("--cell", name, cells.map(\.id))
        }
        let picked = cells.filter { cell in
            (wantedTargets.isEmpty || wantedTargets.contains(cell.target.name))
                && (wantedToolchains.isEmpty || wantedToolchains.contains(cell.toolchain.name))
                && (wantedCells.isEmpty || wantedCells.contains(cell.id))
        }
        if picked.isEmpty { throw .badInput("the selection matches no cell of \(matrix.file); cells: \(cells.map(\.id).joined(separator: ", "))") }
        return picked
    }

    private func unknownSelection(_ flag: String, _ name: String, _ known: [String]) -> KmatrixError {
        var message = "\(flag) \(name): no such name"
        if let near = nearest(name, in: known) { message += " (did you mean '\(near)'?)" }
        return .badInput(message + "; known: \(known.sorted().joined(separator: ", "))")
    }
}

func displayName(_ path: String, root: String) -> String {
    let prefix = root.hasSuffix("/") ? root : root + "/"
    return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
}

public func absolutePath(_ path: String, relativeTo base: String) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    if expanded.hasPrefix("/") { return (expanded as NSString).standardizingPath }
    return ((base as NSString).appendingPathComponent(expanded) as NSString).standardizingPath
}
