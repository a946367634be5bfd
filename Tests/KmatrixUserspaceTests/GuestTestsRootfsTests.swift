import Foundation
import KmatrixCore
@testable import KmatrixUserspace
import Testing

/// Test scripts go into the rootfs with a runner init calls after the marker; the tree's
/// digest (the rootfs key) follows the scripts' bytes.
@Suite("Guest test scripts in the rootfs")
struct GuestTestsRootfsTests {
    func scratch() throws -> (root: String, busybox: String, script: String) {
        let root = NSTemporaryDirectory() + "kmatrix-guesttests-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(root)/install/bin", withIntermediateDirectories: true)
        fm.createFile(atPath: "\(root)/install/bin/busybox", contents: Data(), attributes: [.posixPermissions: 0o755])
        fm.createFile(atPath: "\(root)/check.sh", contents: Data("#!/bin/sh\necho one\n".utf8), attributes: [.posixPermissions: 0o644])
        return (root, "\(root)/install", "\(root)/check.sh")
    }

    @Test func scriptsAndRunnerAreInTheTreeAndInitRunsThem() throws {
        let s = try scratch(); defer { try? FileManager.default.removeItem(atPath: s.root) }
        var options = RootfsOptions(busyboxInstall: s.busybox, rootDevice: .initramfs)
        let plain = try Rootfs.assemble(options)
        options.tests = [GuestScript(suite: "basic", name: "check.sh", source: s.script, timeoutSeconds: 7)]
        let tree = try Rootfs.assemble(options)

        let script = try #require(tree["kmatrix/tests/basic/check.sh"])
        #expect(script.mode & 0o111 != 0, "runnable whatever its mode on the host")
        guard case .contents(let runner)? = tree["kmatrix/run-tests"]?.kind else { Issue.record("no runner"); return }
        let text = String(decoding: runner, as: UTF8.self)
        #expect(text.contains("run basic check.sh 7 /kmatrix/tests/basic/check.sh"))
        #expect(text.contains("kill -KILL \"$pid\""))
        guard case .contents(let initBytes)? = tree["init"]?.kind else { Issue.record("no init"); return }
        let initText = String(decoding: initBytes, as: UTF8.self)
        let marker = try #require(initText.range(of: BootMarker.prefix))
        let run = try #require(initText.range(of: "/kmatrix/run-tests"))
        let reboot = try #require(initText.range(of: "reboot -f"))
        #expect(marker.lowerBound < run.lowerBound && run.lowerBound < reboot.lowerBound)
        // Without tests, the init and the tree are what they were.
        #expect(plain["kmatrix/run-tests"] == nil)
        guard case .contents(let plainInit)? = plain["init"]?.kind else { Issue.record("no init"); return }
        #expect(!String(decoding: plainInit, as: UTF8.self).contains("run-tests"))

        let before = try tree.digest()
        try "#!/bin/sh\necho two\n".write(toFile: s.script, atomically: true, encoding: .utf8)
        #expect(try Rootfs.assemble(options).digest() != before, "the rootfs key follows the script's bytes")
    }
}
