import Foundation

/// The folder holding the descriptors kmatrix ships (`Targets/`, `Toolchains/`,
/// `matrix.json`, `Matrices/`): `$KMATRIX_DATA` when set, else found from the executable's
/// own location, so an installed `/usr/bin/kmatrix` reads `/usr/share/kmatrix` and a binary
/// built in a clone (`.build/debug/kmatrix`) reads the clone.
public enum DataDirectory {
    public static let environmentVariable = "KMATRIX_DATA"

    /// nil when neither the variable nor the executable's location names one.
    public static func locate(environment: [String: String] = ProcessInfo.processInfo.environment,
                              executable: String? = currentExecutable()) throws(KmatrixError) -> String? {
        if let value = environment[environmentVariable], !value.isEmpty {
            let path = absolutePath(value, relativeTo: FileManager.default.currentDirectoryPath)
            guard holdsDescriptors(path) else {
                throw .badInput("\(environmentVariable)=\(value): \(path) holds no Targets/ and Toolchains/ folders")
            }
            return path
        }
        guard let executable else { return nil }
        var folder = (executable as NSString).deletingLastPathComponent
        while folder != "/" && !folder.isEmpty {
            // <prefix>/bin/kmatrix reads <prefix>/share/kmatrix; <clone>/.build/…/kmatrix the clone.
            let share = (folder as NSString).appendingPathComponent("share/kmatrix")
            if holdsDescriptors(share) { return share }
            if holdsDescriptors(folder) { return folder }
            folder = (folder as NSString).deletingLastPathComponent
        }
        return nil
    }

    static func holdsDescriptors(_ folder: String) -> Bool {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        return ["Targets", "Toolchains"].allSatisfy {
            fm.fileExists(atPath: (folder as NSString).appendingPathComponent($0), isDirectory: &isDir) && isDir.boolValue
        }
    }

    public static func currentExecutable() -> String? {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments.first.map { absolutePath($0, relativeTo: FileManager.default.currentDirectoryPath) }
    }
}
