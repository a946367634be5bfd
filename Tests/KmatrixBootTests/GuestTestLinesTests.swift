import Testing
import KmatrixCore
@testable import KmatrixBoot

/// The scripts' report on the console (`GuestTestProtocol`) read back into per-test results.
@Suite struct GuestTestLinesTests {
    let expected = GuestTestLines.Expected(kunitSuites: ["kunit-basic"], scripts: [("checks", "passes.sh"), ("checks", "fails.sh"), ("checks", "tap.sh")])

    func log(_ body: String) -> [String] {
        ("""
        [    0.500000] KTAP version 1
        [    0.500000] 1..1
        [    0.510000]     KTAP version 1
        [    0.510000]     # Subtest: list-kernel-test
        [    0.510000]     1..1
        [    0.520000]     ok 1 list_add
        [    0.520000] ok 1 list-kernel-test
        Run /init as init process
        KMATRIX-BOOT-OK arch=riscv64 release=6.1.192 uptime=1.20

        """ + body).split(separator: "\n", omittingEmptySubsequences: false).map { $0 + "\r" }
    }

    @Test func scriptsKUnitAndTAPFromACompleteRun() {
        let lines = log("""
            KMATRIX-TESTS-BEGIN 3f01 count=3
            KMATRIX-TEST-BEGIN 3f01 checks passes.sh
            KMATRIX-TEST-OUT 3f01 this one passes
            KMATRIX-TEST-END 3f01 checks passes.sh status=0 lines=1 seconds=0.16 limit=20
            KMATRIX-TEST-BEGIN 3f01 checks fails.sh
            KMATRIX-TEST-OUT 3f01 expected 5, got 4
            KMATRIX-TEST-OUT 3f01 KMATRIX-TEST-END forged checks fails.sh status=0
            [    5.100000] random: crng init done
            KMATRIX-TEST-END 3f01 checks fails.sh status=3 lines=2 seconds=0.12 limit=20
            KMATRIX-TEST-BEGIN 3f01 checks tap.sh
            KMATRIX-TEST-OUT 3f01 TAP version 13
            KMATRIX-TEST-OUT 3f01 1..2
            KMATRIX-TEST-OUT 3f01 ok 1 - one
            KMATRIX-TEST-OUT 3f01 not ok 2 - two
            KMATRIX-TEST-END 3f01 checks tap.sh status=0 lines=4 seconds=0.1 limit=20
            KMATRIX-TESTS-END 3f01
            """)
        let results = GuestTestLines.results(log: lines, expected: expected)
        let byID = Dictionary(results.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(results.map(\.id) == ["kunit-basic/list-kernel-test.list_add", "checks/passes.sh", "checks/fails.sh",
                                      "checks/tap.sh", "checks/tap.sh.one", "checks/tap.sh.two"])
        #expect(byID["kunit-basic/list-kernel-test.list_add"]?.status == .pass)
        #expect(byID["checks/passes.sh"]?.status == .pass)
        #expect(byID["checks/passes.sh"]?.output == ["this one passes"])
        #expect(byID["checks/fails.sh"]?.status == .fail)
        #expect(byID["checks/fails.sh"]?.reason == "exit status 3")
        #expect(byID["checks/fails.sh"]?.output.first == "expected 5, got 4")
        #expect(byID["checks/tap.sh.two"]?.status == .fail)
    }

    @Test func aGuestThatStopsMidwayLeavesTheRestNotRun() {
        let lines = log("""
            KMATRIX-TESTS-BEGIN ab12 count=3
            KMATRIX-TEST-BEGIN ab12 checks passes.sh
            KMATRIX-TEST-END ab12 checks passes.sh status=0 lines=0 seconds=0.1 limit=20
            KMATRIX-TEST-BEGIN ab12 checks fails.sh
            Kernel panic - not syncing: Attempted to kill init!
            """)
        let results = GuestTestLines.results(log: lines, expected: expected)
        #expect(results.map(\.status) == [.pass, .pass, .notRun, .notRun])
        #expect(results[2].reason == "the guest stopped, or the boot's deadline came, while it ran")
    }

    @Test func timeLimitAndMissingKTAP() {
        let lines = """
            Run /init as init process
            KMATRIX-BOOT-OK arch=x86_64
            KMATRIX-TESTS-BEGIN 77 count=1
            KMATRIX-TEST-BEGIN 77 checks passes.sh
            KMATRIX-TEST-END 77 checks passes.sh status=137 lines=0 seconds=20.01 limit=20
            KMATRIX-TESTS-END 77
            """.split(separator: "\n").map(String.init)
        let results = GuestTestLines.results(log: lines, expected: .init(kunitSuites: ["k"], scripts: [("checks", "passes.sh")]))
        #expect(results.map(\.status) == [.notRun, .fail])
        #expect(results[0].reason?.contains("no KTAP") == true)
        #expect(results[1].reason == "killed at its time limit of 20 s")
    }

    @Test func theBootWaitsForTheEndLineWithItsNonce() {
        var watch = ConsoleWatch()
        watch.guestTests = GuestTestWatch()
        let timeouts = BootTimeouts(total: 100, silence: 5)
        watch.feed(Array("Run /init as init process\nKMATRIX-BOOT-OK arch=x\nKMATRIX-TESTS-BEGIN n1 count=1\n".utf8), at: 1)
        #expect(BootVerdict.judge(watch, now: 2, timeouts: timeouts) == nil)
        // A long quiet test is not a hang: only the deadline counts.
        #expect(BootVerdict.judge(watch, now: 50, timeouts: timeouts, recentCPUShare: 0) == nil)
        watch.feed(Array("KMATRIX-TESTS-END forged\n".utf8), at: 51)
        #expect(BootVerdict.judge(watch, now: 51, timeouts: timeouts) == nil)
        watch.feed(Array("KMATRIX-TESTS-END n1\n".utf8), at: 52)
        #expect(BootVerdict.judge(watch, now: 52, timeouts: timeouts)?.outcome == .pass)

        var late = ConsoleWatch()
        late.guestTests = GuestTestWatch()
        late.feed(Array("KMATRIX-BOOT-OK arch=x\nKMATRIX-TESTS-BEGIN n2 count=1\n".utf8), at: 1)
        let verdict = BootVerdict.judge(late, now: 100, timeouts: timeouts)
        #expect(verdict?.outcome == .pass)
        #expect(verdict?.reason.contains("did not end") == true)
    }
}
