import Testing
@testable import KmatrixBoot

/// The KTAP/TAP parser on streams as the kernel (KUnit, 6.1's layout) and scripts print them.
@Suite struct KTAPTests {
    func statuses(_ parser: KTAPParser) -> [String: GuestTestResult.Status] {
        Dictionary(parser.results.map { ($0.name, $0.status) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func nestedSubtestsWithPrintkTimestampsAndOtherKernelLines() {
        let log = """
            [    0.512000] KTAP version 1
            [    0.512100] 1..2
            [    0.512200]     KTAP version 1
            [    0.512300]     # Subtest: example
            [    0.512400]     1..3
            [    0.512500]     ok 1 example_simple_test
            [    0.512600] random: crng init done
            [    0.512700]         KTAP version 1
            [    0.512800]         # Subtest: example_params_test
            [    0.512900]         ok 1 example value 3
            [    0.513000]         ok 2 example value 2
            [    0.513100]     ok 2 example_params_test
            [    0.513200]     ok 3 example_skip_test # SKIP this test should be skipped
            [    0.513300] # example: pass:2 fail:0 skip:1 total:3
            [    0.513400] ok 1 example
            [    0.513500] Freeing unused kernel memory: 1024K
            [    0.513600]     KTAP version 1
            [    0.513700]     # Subtest: list-kernel-test
            [    0.513800]     1..2
            [    0.513900]     ok 1 list_add
            [    0.514000]     ok 2 list_del
            [    0.514100] ok 2 list-kernel-test
            [    0.600000] Run /init as init process
            """
        let parser = KTAPParser.parse(log, suite: "kunit")
        #expect(parser.sawStream)
        #expect(statuses(parser) == [
            "example.example_simple_test": .pass,
            "example.example_params_test.example value 3": .pass,
            "example.example_params_test.example value 2": .pass,
            "example.example_skip_test": .skip,
            "list-kernel-test.list_add": .pass,
            "list-kernel-test.list_del": .pass,
        ])
        #expect(parser.results.first { $0.name == "example.example_skip_test" }?.reason == "SKIP this test should be skipped")
        #expect(parser.results.allSatisfy { $0.suite == "kunit" })
        // Nothing after the finished document is taken for a test's output.
        #expect(parser.results.allSatisfy { !$0.output.contains { $0.contains("Freeing") || $0.contains("crng") } })
    }

    @Test func notOkKeepsItsDiagnostics() {
        let log = """
            KTAP version 1
            1..1
                KTAP version 1
                # Subtest: math
                1..2
                # add: EXPECTATION FAILED at lib/math_kunit.c:12
                Expected 1 + 1 == 3, but
                    1 + 1 == 2 (0x2)
                not ok 1 add
                ok 2 sub
            # math: pass:1 fail:1 skip:0 total:2
            not ok 1 math
            """
        let parser = KTAPParser.parse(log, suite: "kunit")
        let add = parser.results.first { $0.name == "math.add" }
        #expect(add?.status == .fail)
        #expect(add?.output == ["# add: EXPECTATION FAILED at lib/math_kunit.c:12", "Expected 1 + 1 == 3, but", "1 + 1 == 2 (0x2)"])
        #expect(statuses(parser)["math.sub"] == .pass)
        #expect(parser.results.count == 2)
    }

    @Test func skippedSuiteAndCases() {
        let log = """
            KTAP version 1
            1..2
                KTAP version 1
                # Subtest: needs-hw
                1..1
                ok 1 probe # SKIP no device
            ok 1 needs-hw # SKIP
            ok 2 empty-suite # SKIP nothing to test
            """
        let parser = KTAPParser.parse(log, suite: "kunit")
        #expect(statuses(parser) == ["needs-hw.probe": .skip, "empty-suite": .skip])
    }

    @Test func suiteThatCrashesMidwayLeavesTheRestNotRun() {
        let log = """
            [    0.500000] KTAP version 1
            [    0.500000] 1..2
            [    0.510000]     KTAP version 1
            [    0.510000]     # Subtest: fragile
            [    0.510000]     1..4
            [    0.520000]     ok 1 first
            [    0.520000]     ok 2 second
            [    0.530000] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000
            [    0.530000] Kernel panic - not syncing: Oops: Fatal exception
            """
        let parser = KTAPParser.parse(log, suite: "kunit")
        #expect(statuses(parser) == [
            "fragile.first": .pass, "fragile.second": .pass,
            "fragile.#3": .notRun, "fragile.#4": .notRun,
            "#2": .notRun,
        ])
        #expect(!parser.results.contains { $0.status == .pass && $0.name.contains("#") })
    }

    @Test func tapVersion13FromAScript() {
        let out = """
            TAP version 13
            1..4
            ok 1 - cpuinfo names the architecture
            not ok 2 - tmpfs mounts
            # mount: permission denied
            ok 3 - pipeline # skip no sort here
            not ok 4 - known bug # TODO fix later
            """
        let parser = KTAPParser.parse(out, suite: "shell")
        #expect(statuses(parser) == ["cpuinfo names the architecture": .pass, "tmpfs mounts": .fail,
                                     "pipeline": .skip, "known bug": .skip])
    }

    @Test func tapVersion13SubtestsAndBailOut() {
        let out = """
            TAP version 13
            1..2
                # Subtest: group
                1..2
                ok 1 - inner
                ok 2 - inner two
            ok 1 - group
            Bail out! lost the disk
            """
        let parser = KTAPParser.parse(out, suite: "s")
        #expect(statuses(parser) == ["group.inner": .pass, "group.inner two": .pass, "#2": .notRun])
        #expect(parser.results.last?.reason == "Bail out! lost the disk")
    }

    @Test func textWithoutTAPHasNoTests() {
        let parser = KTAPParser.parse("hello\nok then\n1..x\n", suite: "s")
        #expect(!parser.sawStream)
        #expect(parser.results.isEmpty)
    }
}
