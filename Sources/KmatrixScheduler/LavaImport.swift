import Foundation
import KmatrixBoot
import KmatrixCore
import KmatrixCrypto

/// `kmatrix lava import`: what LAVA produced for one cell's job (`kmatrix lava --cell`) turned
/// into the run directory `run --cell ID --out DIR` writes, so that `merge` combines it with
/// cells booted anywhere else. The folder is lava-run's `--output-dir` (result.yaml,
/// description.yaml) with the job log, which lava-run prints on standard error and a LAVA
/// server keeps, saved in it as `output.yaml`.
///
/// The verdict is kmatrix's own: the console lines of the log through the classifier `boot`
/// uses (marker with arch and release, panics, init failures), then checked against LAVA's
/// job result and its `kmatrix_boot` monitor, so a job LAVA failed never becomes a pass.
public struct LavaImport: Sendable {
    public static let logName = "output.yaml"
    public static let resultName = "result.yaml"
    public static let descriptionName = "description.yaml"
    /// LAVA's monitor test case for the marker (`kmatrix-boot` in the job, `_` in results).
    public static let monitorCase = "kmatrix_boot"

    public let project: Project
    public let cell: Cell
    public let workspace: Workspace
    public let folder: String
    public let jobID: String?

    public init(project: Project, cell: Cell, workspace: Workspace, folder: String, jobID: String? = nil) {
        self.project = project
        self.cell = cell
        self.workspace = workspace
        self.folder = folder.hasSuffix("/") && folder.count > 1 ? String(folder.dropLast()) : folder
        self.jobID = jobID
    }

    /// The device type the cell's job names (what `LavaJob` renders).
    public var deviceType: String { cell.target.lava?.deviceType ?? "qemu" }

    /// The LAVA folder read and checked: its log, and `result.yaml`'s job result when it has one.
    public func read() throws(KmatrixError) -> LavaLog {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .badInput("\(folder): no such directory (give the folder lava-run wrote with --output-dir)")
        }
        let logFile = "\(folder)/\(Self.logName)", resultFile = "\(folder)/\(Self.resultName)"
        guard let data = fm.contents(atPath: logFile) else {
            let known = [Self.resultName, Self.descriptionName].filter { fm.fileExists(atPath: "\(folder)/\($0)") }
            if known.isEmpty {
                throw .badInput("\(folder): not a LAVA output folder: it holds none of \(Self.logName) (the job log), \(Self.resultName), \(Self.descriptionName)")
            }
            throw .badInput("\(logFile): missing: the job log (lava-run prints it on standard error: lava-run --output-dir \(folder) ... 2> \(logFile); a LAVA server's job log is the same file)")
        }
        let log = try LavaLog.parse(String(decoding: data, as: UTF8.self), file: logFile)
        guard let job = log.jobResult else {
            throw .badInput("\(logFile): no job result ({\"definition\": \"lava\", \"case\": \"job\"}): the log of a job that had not finished, or not a LAVA job log")
        }
        if let text = try? String(contentsOfFile: resultFile, encoding: .utf8) {
            let written = Self.topLevelScalar("result", in: text)
            guard let written else { throw .badInput("\(resultFile): no 'result:' line (lava-run writes 'case: job', 'result: pass|fail')") }
            guard written == job.result else {
                throw .badInput("\(resultFile) says the job's result is '\(written)', \(logFile) says '\(job.result)': they come from different jobs")
            }
        }
        return log
    }

    /// `key: value` at the top of a small YAML mapping (lava-run's result.yaml), unquoted.
    static func topLevelScalar(_ key: String, in text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("\(key):") {
            var value = line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, (first == "'" || first == "\""), value.last == first { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    /// The cell's built files and the sha256 LAVA computed for what it deployed must agree:
    /// a log of another cell, or of a kernel built since, is bad input.
    func checkIdentity(_ log: LavaLog, images: BootImages) throws(KmatrixError) {
        let logFile = "\(folder)/\(Self.logName)"
        let deployed = log.deployedFiles
        guard deployed["kernel"] != nil else {
            throw .badInput("\(logFile): LAVA deployed no kernel it names with a sha256 (a file-download or http-download result labelled 'kernel'), so it cannot be told which kernel it booted")
        }
        for (label, path) in [("kernel", images.kernel), ("dtb", images.dtb), ("ramdisk", images.initrd)] {
            guard let path else { continue }
            guard let lavaSHA = deployed[label] else {
                throw .badInput("\(logFile): LAVA deployed no \(label), but cell \(cell.id) boots \(path): the log of another cell's job")
            }
            let ours: String
            do { ours = try SHA256.hex(fileAt: path) } catch {
                throw KmatrixError(.hostFailure, "cannot read \(path) to compare it with what LAVA booted", underlying: error)
            }
            guard ours == lavaSHA else {
                throw .badInput("\(logFile): LAVA booted another \(label) than cell \(cell.id)'s: sha256 \(lavaSHA.prefix(16)) in the log, \(ours.prefix(16)) for \(path) (the log of another cell or of an older build)")
            }
        }
    }

    /// What was imported: the run's results and the cell's LAVA facts.
    public struct Imported: Sendable {
        public var results: RunResults
        public var directory: String
    }

    /// Reads, checks and judges the LAVA folder, then writes the run directory `directory`
    /// (empty or new): results.json, junit.xml, report.md, report.html, the console as the
    /// boot log, and LAVA's files under logs/lava/.
    public func write(into directory: String, command: [String] = [], now: Date = Date()) throws(KmatrixError) -> Imported {
        let log = try read()
        let images = try BootImages.forCell(cell, workspace: workspace)
        try checkIdentity(log, images: images)

        let id = StepID(.boot, cell.id)
        let name = cell.id.replacingOccurrences(of: "/", with: "_")
        let bootLog = "\(directory)/logs/boot/\(name).log"
        let lavaFolder = "\(directory)/logs/lava/\(name)"
        do {
            try FileManager.default.createDirectory(atPath: "\(directory)/logs/boot", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: lavaFolder, withIntermediateDirectories: true)
            try Data(log.consoleText.utf8).write(to: URL(fileURLWithPath: bootLog))
            for file in [Self.logName, Self.resultName, Self.descriptionName] where FileManager.default.fileExists(atPath: "\(folder)/\(file)") {
                try FileManager.default.copyItem(atPath: "\(folder)/\(file)", toPath: "\(lavaFolder)/\(file)")
            }
        } catch {
            throw .host("cannot write the imported run into \(directory) (is the disk full?)", underlying: error)
        }

        let step = BootStep(cell: cell, dependencies: [])
        let vmlinux = images.buildDirectory.map { "\($0)/vmlinux" }
        let expected = MarkerExpectation(arch: cell.target.userspace.unameMachine, release: vmlinux.flatMap(KernelRelease.read))
        var record = log.consoleRecord(target: cell.target, rootDevice: cell.rootDevice, expected: expected,
                                       timeouts: step.testTimeouts(BootSettings()), awaitsTests: cell.hasGuestScripts, logPath: bootLog)
        record.tests = step.guestTestResults(record, marker: BootMarker.prefix)
        let lava = summary(log, logPath: "\(lavaFolder)/\(Self.logName)")
        var outcome = Self.outcome(record, lava: lava)
        outcome.logPath = bootLog
        outcome.output = .boot(record)
        outcome.seconds = record.seconds
        if outcome.status == .passed, let failed = step.testsFailure(record, commands: [], phases: Self.phases(record)) {
            outcome = failed
            outcome.output = .boot(record)
        }

        var cellResult = CellResult(cell: cell, steps: [id], outcomes: [id: outcome], project: project)
        cellResult.boot?.lava = lava
        cellResult.boot?.accelerator = "lava"
        for (name, path) in [("image", images.kernel), ("dtb", images.dtb), ("initramfs", images.initrd)] {
            if let path, let artifact = Artifact(name: name, path: path) { cellResult.artifacts.append(artifact) }
        }

        let times = log.entries.compactMap(\.time)
        let started = times.min() ?? now, finished = times.max() ?? now
        var info = RunInfo(id: "lava-\(jobID ?? MatrixRun.runID(now))", started: started, finished: finished,
                           wallSeconds: finished.timeIntervalSince(started), cpuSeconds: 0, floorSeconds: 0, jobs: 0, cores: 0,
                           host: "LAVA \(deviceType)" + (jobID.map { " job \($0)" } ?? ""),
                           hostArch: log.extra(of: "execute-qemu", "host_arch") ?? "", kvm: "not probed (booted by LAVA)",
                           matrix: project.matrix.file, cache: workspace.root, command: command, interrupted: false)
        info.directory = directory
        info.matrixDigest = MatrixDigest.of(project)
        info.matrixCells = project.cells.map(\.id)
        let results = RunResults(run: info, cells: [cellResult], steps: [StepResult(id: id, outcome: outcome)])
        do { try Reports.write(results, to: directory) } catch {
            throw .host("cannot write the reports into \(directory) (is the disk full?)", underlying: error)
        }
        return Imported(results: results, directory: directory)
    }

    func summary(_ log: LavaLog, logPath: String) -> LavaBootSummary {
        let job = log.jobResult
        let monitor = log.results.last { $0.testCase == Self.monitorCase }
        return LavaBootSummary(deviceType: deviceType, jobID: jobID, job: job?.result ?? "unknown",
                               errorType: job?.fields["error_type"]?.text, errorMessage: job?.fields["error_msg"]?.text,
                               monitor: monitor?.result, log: logPath)
    }

    /// LAVA's error types that blame the lab, not the kernel.
    static let labErrors: Set<String> = ["Infrastructure", "Bug", "Configuration", "Canceled", "MultinodeTimeout"]

    /// The boot step's outcome: the console's verdict, and LAVA's where they disagree. A
    /// kernel failure on the console stands whatever LAVA says; a console that shows no
    /// kernel output in a job LAVA failed for the lab's reasons is the lab's; a console pass
    /// stands only when LAVA passed the job and its monitor saw the marker, and is
    /// `infrastructure` otherwise (the console and LAVA disagree; neither can be trusted).
    static func outcome(_ record: BootRecord, lava: LavaBootSummary) -> StepOutcome {
        let said = "LAVA: job \(lava.job)" + (lava.errorType.map { " (\($0): \(lava.errorMessage ?? ""))" } ?? "")
            + ", kmatrix_boot \(lava.monitor ?? "not recorded")"
        let phases = Self.phases(record)
        guard let failure = record.outcome.failureClass else {
            if lava.job == "pass" && lava.monitor == "pass" {
                return .passed("lava \(lava.deviceType): \(phases)", output: .boot(record))
            }
            return .failed(.infrastructure, "the console shows the marker, but \(said) [\(phases)]",
                           excerpt: [record.reason, said])
        }
        let excerpt = record.trace.isEmpty ? record.lastLines : record.trace
        if record.outcome == .noConsoleOutput || record.outcome == .qemuError, lava.job != "pass", labErrors.contains(lava.errorType ?? "") {
            return .failed(.infrastructure, "\(said); the console: \(record.reason) [\(phases)]", excerpt: excerpt + [said])
        }
        return .failed(failure, "\(record.reason); \(said) [\(phases)]", excerpt: excerpt)
    }

    static func phases(_ record: BootRecord) -> String {
        [("linux", record.phases.linuxVersion), ("init", record.phases.initStarted), ("marker", record.phases.userspace)]
            .compactMap { name, value in value.map { "\(name) \(String(format: "%.2f", $0)) s" } }.joined(separator: ", ")
    }
}
