import Foundation
import KmatrixCore

/// Which accelerator each boot gets: KVM only where the target's `kvmHostArch` is this
/// host's architecture and the KVM probe proved Linux boots under it; TCG otherwise.
/// The probe runs at most once per instance (concurrent callers share it) and its
/// verdict is kept on disk, keyed by QEMU's version, the probe kernel's identity and the
/// host kernel, so not every command waits for it.
public actor AcceleratorChoice {
    public struct Choice: Sendable, Equatable {
        public var accelerator: Accelerator
        public var reason: String
    }

    struct CachedVerdict: Codable {
        var key: String
        var probe: KvmProbe
        var date: Date
    }

    let probeKernel: String?
    let cacheFile: String?
    let qemu: String
    let hostArch: String
    /// A verdict on disk older than this is probed again.
    static let cacheLifetime: TimeInterval = 24 * 3600
    private var probeTask: Task<KvmProbe, Never>?

    /// - Parameters:
    ///   - probeKernel: an x86_64 Linux kernel (see `ProbeKernel.find`); without one KVM stays unproven.
    ///   - cacheFile: where the verdict is kept between runs; nil keeps it for this instance only.
    public init(probeKernel: String?, cacheFile: String?, qemu: String = KvmProbe.machine.qemu, hostArch: String = KvmProbe.hostArch) {
        self.probeKernel = probeKernel
        self.cacheFile = cacheFile
        self.qemu = qemu
        self.hostArch = hostArch
    }

    /// The conventional place of the verdict in a workspace.
    public static func cacheFile(in workspace: Workspace) -> String { "\(workspace.root)/probe/kvm-verdict.json" }

    /// The last verdict kept in `workspace`, without probing (what `kmatrix plan` shows).
    public static func lastVerdict(in workspace: Workspace) -> KvmProbe? { read(cacheFile(in: workspace))?.probe }

    public func choose(for target: Target) async -> Choice {
        guard let kvmArch = target.qemu.kvmHostArch else {
            return Choice(accelerator: .tcg, reason: "\(target.name) names no host architecture for KVM")
        }
        guard kvmArch == hostArch else {
            return Choice(accelerator: .tcg, reason: "KVM runs \(target.name) only on \(kvmArch) hosts; this host is \(hostArch)")
        }
        let probe = await kvmProbe()
        return probe.usable ? Choice(accelerator: .kvm, reason: "KVM probe: \(probe.reason)")
            : Choice(accelerator: .tcg, reason: "KVM unusable: \(probe.reason)")
    }

    /// The probe's verdict: from this instance, else from disk, else a fresh probe.
    public func kvmProbe() async -> KvmProbe {
        if let probeTask { return await probeTask.value }
        let task = Task { [probeKernel, cacheFile, qemu] in
            let key = await Self.cacheKey(probeKernel: probeKernel, qemu: qemu)
            if let cacheFile, let key, let cached = Self.read(cacheFile), cached.key == key,
               Date().timeIntervalSince(cached.date) < Self.cacheLifetime {
                var probe = cached.probe
                probe.reason += " (probed \(Self.age(cached.date)) ago; cached in \(cacheFile))"
                return probe
            }
            let probe = await KvmProbe.run(linuxKernel: probeKernel, qemu: qemu)
            if let cacheFile, let key { Self.write(CachedVerdict(key: key, probe: probe, date: Date()), to: cacheFile) }
            return probe
        }
        probeTask = task
        return await task.value
    }

    /// What the verdict depends on; nil when QEMU cannot even say its version.
    static func cacheKey(probeKernel: String?, qemu: String) async -> String? {
        guard let binary = ProcessRunner.which(qemu), let version = await QemuVersions.shared.version(of: binary) else { return nil }
        var kernel = "none"
        if let probeKernel, let attributes = try? FileManager.default.attributesOfItem(atPath: probeKernel) {
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            kernel = "\(probeKernel) \(size) \(Int64(modified))"
        }
        var info = utsname()
        uname(&info)
        let release = withUnsafeBytes(of: &info.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let kvm = FileManager.default.fileExists(atPath: "/dev/kvm") ? "kvm" : "no-kvm"
        return [version, kernel, release, kvm].joined(separator: " | ")
    }

    static func read(_ path: String) -> CachedVerdict? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(CachedVerdict.self, from: data)
    }

    static func write(_ verdict: CachedVerdict, to path: String) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(verdict) else { return }
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Written beside and renamed: a concurrent reader never sees half a file.
        let temporary = path + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, path) != 0 { try? FileManager.default.removeItem(atPath: temporary) }
    }

    static func age(_ date: Date) -> String {
        let seconds = Int(Date().timeIntervalSince(date))
        return seconds < 120 ? "\(seconds) s" : seconds < 7200 ? "\(seconds / 60) min" : "\(seconds / 3600) h"
    }
}
