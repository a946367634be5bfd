import Foundation
import KmatrixCore

/// LAVA's own schema (Debian's lava-common, for the system Python) as the oracle.
public enum LavaSchema {
    public static let python = "/usr/bin/python3"
    static let script = """
        import sys, yaml
        from lava_common.schemas import validate
        validate(yaml.safe_load(open(sys.argv[1])), strict=True, extra_context_variables=[])
        """

    public static let needed = Needs.Item("lava_common for \(python) (apt-get install lava-common; Scripts/bootstrap installs it)") {
        FileManager.default.isExecutableFile(atPath: python) && ((try? TestPython.run(python, ["-c", "import lava_common.schemas, yaml"]))?.status == 0)
    }

    /// The validator's status and message for `yaml`.
    public static func validate(_ yaml: String) throws -> (status: Int32, output: String) {
        let file = NSTemporaryDirectory() + "kmatrix-lava-\(UUID().uuidString).yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return try TestPython.run(python, ["-c", script, file])
    }
}

/// Debian's real `lava-run` (lava-dispatcher, which Scripts/test installs) on a job that
/// `kmatrix lava` printed, with the device configuration Tests/Fixtures/lava/qemu-device.py
/// makes from the job's context (what LAVA's qemu device type renders on a server).
public enum LavaDispatcher {
    public static let executable = "/usr/bin/lava-run"

    /// lava-run keeps its files under /var/lib/lava/dispatcher.
    public static let dispatcherFolder = Needs.Item("a writable /var/lib/lava/dispatcher (lava-run keeps its files there; CI runs as root)") {
        FileManager.default.isWritableFile(atPath: "/var/lib/lava/dispatcher")
    }

    public struct Run: Sendable {
        /// lava-run's `--output-dir`, with the job log it printed on standard error saved in it
        /// as output.yaml: what `kmatrix lava import` reads.
        public var outputDirectory: String
        public var status: Int32
        /// lava-run's result lines (`{"lvl": "results", "msg": {"case": ..., "result": ...}}`) as case: result.
        public var results: [String: String]
        /// The job log (standard error) and whatever lava-run printed on standard output.
        public var log: String, standardOutput: String
        public var seconds: Double
    }

    /// Runs `job` under `folder` (job-NAME.yaml, device-NAME.yaml, output folder NAME).
    public static func run(_ job: String, in folder: String, name: String = "out") async throws -> Run {
        let jobFile = "\(folder)/job-\(name).yaml", deviceFile = "\(folder)/device-\(name).yaml", output = "\(folder)/\(name)"
        try job.write(toFile: jobFile, atomically: true, encoding: .utf8)
        let device = try await TestProcess.run(LavaSchema.python, ["\(repositoryRoot)/Tests/Fixtures/lava/qemu-device.py", jobFile])
        guard device.status == 0 else { throw KmatrixError.badInput("Tests/Fixtures/lava/qemu-device.py failed: \(device.output)") }
        try device.output.write(toFile: deviceFile, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)

        let logFile = "\(output)/output.yaml", stdoutFile = "\(folder)/\(name).stdout"
        for file in [logFile, stdoutFile] { _ = FileManager.default.createFile(atPath: file, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutFile))
        defer { try? log.close(); try? stdout.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--job-id", "kmatrix-\(UUID().uuidString.prefix(8))", "--output-dir", output, "--device", deviceFile, jobFile]
        process.standardError = log
        process.standardOutput = stdout
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        await process.exited()
        let seconds = Date().timeIntervalSince(start)

        let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
        var results: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["lvl"] as? String == "results", let message = object["msg"] as? [String: Any],
                  let name = message["case"] as? String, let result = message["result"] as? String else { continue }
            results[name] = result
        }
        return Run(outputDirectory: output, status: process.terminationStatus, results: results, log: text,
                   standardOutput: (try? String(contentsOfFile: stdoutFile, encoding: .utf8)) ?? "", seconds: seconds)
    }
}
