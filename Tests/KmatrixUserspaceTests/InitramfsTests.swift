import Foundation
import KmatrixCore
import KmatrixTestSupport
import KmatrixUserspace
import KmatrixZlib
import Testing

/// Runs a program to completion; returns its status (test helper, fixed argv).
@discardableResult
func runTool(_ argv: [String], in directory: String? = nil, environment: [String: String] = [:], stdout: String? = nil) async throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = argv
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    if let stdout {
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
    }
    try process.run()
    await process.exited()
    return process.terminationStatus
}

func scratchFolder(_ name: String) throws -> String {
    let dir = NSTemporaryDirectory() + "kmatrix-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func gunzip(_ path: String) throws -> [UInt8] {
    try Gzip.decompress(Array(Data(contentsOf: URL(fileURLWithPath: path))))
}

/// The kernel's own usr/gen_init_cpio, compiled from the kernel source with the host gcc.
enum KernelGenInitCpio {
    static let tarball = "/usr/src/linux-source-6.1.tar.xz"

    /// The file in the shared test cache's unpacked kernel tree, if there is one.
    static var unpackedSource: String? { TestCache.shared.unpackedKernel.map { "\($0)/usr/gen_init_cpio.c" } }

    /// The unpacked tree, or else the tarball and tar to read the one file from it.
    static let source = Needs.Item("the kernel source (\(tarball), apt-get install linux-source-6.1)") {
        unpackedSource != nil || (FileManager.default.fileExists(atPath: tarball) && ProcessRunner.which("tar") != nil)
    }

    static func build(in directory: String) async throws -> String {
        var source = unpackedSource
        if source == nil {
            source = "\(directory)/gen_init_cpio.c"
            try #require(try await runTool(["tar", "-xJOf", tarball, "linux-source-6.1/usr/gen_init_cpio.c"], stdout: source) == 0)
        }
        let binary = "\(directory)/gen_init_cpio"
        try #require(try await runTool(["gcc", "-O2", "-o", binary, try #require(source)]) == 0, "gcc builds gen_init_cpio.c")
        return binary
    }
}

@Suite("initramfs")
struct InitramfsTests {
    /// A list using every line type, hard links, a `${VAR}` location, relative and absolute paths.
    func fixture(_ dir: String) throws -> String {
        try FileManager.default.createDirectory(atPath: "\(dir)/files/sub", withIntermediateDirectories: true)
        try "#!/bin/sh\necho hello\n".write(toFile: "\(dir)/files/init.sh", atomically: true, encoding: .utf8)
        try Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: URL(fileURLWithPath: "\(dir)/files/sub/blob"))
        try "linked\n".write(toFile: "\(dir)/files/linked", atomically: true, encoding: .utf8)
        try "".write(toFile: "\(dir)/files/empty", atomically: true, encoding: .utf8)
        let list = """
            # a kernel-style list
            dir /dev 0755 0 0
            nod /dev/console 0600 0 0 c 5 1
            nod /dev/ram0 0660 0 6 b 1 0
            dir /root 0700 0 0
            dir /bin 0755 0 0

            file /init files/init.sh 0755 0 0
            file /bin/blob ${KMATRIX_FIXTURE}/files/sub/blob 0644 1000 100
            file /bin/linked files/linked 0640 0 0 /bin/link2 /root/link3
            file /empty \(dir)/files/empty 0600 0 0
            slink /bin/sh busybox 0777 0 0
            pipe /dev/fifo 0644 0 0
            sock /dev/socket 0755 2 3
            """
        try list.write(toFile: "\(dir)/list", atomically: true, encoding: .utf8)
        return "\(dir)/list"
    }

    @Test("kmatrix's initramfs matches the kernel's gen_init_cpio",
          .needs(tools: ["gcc"], KernelGenInitCpio.source))
    func matchesKernelGenInitCpio() async throws {
        let dir = try scratchFolder("cpio")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = try fixture(dir)
        let tool = try await KernelGenInitCpio.build(in: dir)
        let env = ["KMATRIX_FIXTURE": dir]
        try #require(try await runTool([tool, "-t", "0", list], in: dir, environment: env, stdout: "\(dir)/kernel.cpio") == 0)

        let tree = try CpioList.parse(file: list, environment: env)
        let record = try InitramfsWriter.write(tree, to: "\(dir)/kmatrix.cpio.gz", ordered: false)
        #expect(record.entries == 14, "11 lines, one of them a file with 2 more names")

        let kernel = try NewcReader.parse(Array(Data(contentsOf: URL(fileURLWithPath: "\(dir)/kernel.cpio"))))
        let ours = try NewcReader.parse(try gunzip("\(dir)/kmatrix.cpio.gz"))
        #expect(ours.map(\.name) == kernel.map(\.name))
        try #require(ours.count == kernel.count)
        for (a, b) in zip(ours, kernel) {
            #expect(a.mode == b.mode, "mode of \(a.name)")
            #expect(a.uid == b.uid && a.gid == b.gid, "owner of \(a.name)")
            #expect(a.rdevMajor == b.rdevMajor && a.rdevMinor == b.rdevMinor, "device numbers of \(a.name)")
            #expect(a.links == b.links, "link count of \(a.name)")
            if a.fileType == 0o120000 {
                // gen_init_cpio stores a symlink's target with its NUL, libarchive (and GNU cpio)
                // without; the kernel reads both the same.
                #expect(a.data == Array(b.data.prefix { $0 != 0 }), "target of \(a.name)")
            } else {
                #expect(a.data == b.data, "contents of \(a.name)")
            }
        }
        // Hard links share one inode in both archives, and only the last carries the data.
        func linkGroups(_ members: [NewcMember]) -> [[String]] {
            Dictionary(grouping: members.filter { $0.links > 1 && $0.fileType == 0o100000 }, by: \.inode).values.map { $0.map(\.name).sorted() }.sorted { $0[0] < $1[0] }
        }
        #expect(linkGroups(ours) == linkGroups(kernel))
        #expect(linkGroups(ours) == [["bin/link2", "bin/linked", "root/link3"]])
        // Inode numbers are distinct per file.
        #expect(Set(ours.map(\.inode)).count == ours.count - 2)
    }

    @Test func sameInputsGiveIdenticalBytes() throws {
        let dir = try scratchFolder("cpio-det")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = try fixture(dir)
        let env = ["KMATRIX_FIXTURE": dir]
        _ = try InitramfsWriter.write(try CpioList.parse(file: list, environment: env), to: "\(dir)/one.cpio.gz")
        // A newer mtime on a source must not leak into the archive.
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: "\(dir)/files/init.sh")
        _ = try InitramfsWriter.write(try CpioList.parse(file: list, environment: env), to: "\(dir)/two.cpio.gz")
        let one = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/one.cpio.gz"))
        let two = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/two.cpio.gz"))
        #expect(one == two)
        // A gzip header with mtime 0 (bytes 4-7), and a real archive inside.
        #expect(Array(one.prefix(3)) == [0x1f, 0x8b, 0x08])
        #expect(Array(one[4..<8]) == [0, 0, 0, 0])
        let members = try NewcReader.parse(try gunzip("\(dir)/one.cpio.gz"))
        #expect(members.allSatisfy { $0.mtime == 0 })
        // ordered: directories come before what they contain.
        let names = members.map(\.name)
        for (i, name) in names.enumerated() where name.contains("/") {
            let parent = (name as NSString).deletingLastPathComponent
            #expect(names.firstIndex(of: parent).map { $0 < i } == true, "\(parent) before \(name)")
        }
    }

    @Test func malformedListsNameFileAndLine() throws {
        let dir = try scratchFolder("cpio-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = """
            dir /dev 0755 0 0
            nod /dev/console 0600 0 0 x 5 1
            dir /root 0700 0
            file /init missing.sh 0755 0 0
            slink /bin/sh busybox 0999 0 0
            fifo /dev/p 0644 0 0
            dir /../etc 0755 0 0
            pipe /dev/p 0644 root 0
            """
        try list.write(toFile: "\(dir)/bad.list", atomically: true, encoding: .utf8)
        let error = #expect(throws: KmatrixError.self) { _ = try CpioList.parse(file: "\(dir)/bad.list") }
        #expect(error?.kind == .badInput)
        let lines = error?.message.split(separator: "\n").map(String.init) ?? []
        #expect(lines.count == 7, "one message per bad line: \(lines)")
        let expectations: [(Int, String)] = [(2, "must be 'b' or 'c'"), (3, "takes 4 fields, found 3"), (4, "does not exist"),
                                             (5, "not an octal mode"), (6, "unknown entry type 'fifo'"), (7, "'..'"), (8, "not a numeric uid")]
        for (line, text) in expectations {
            #expect(lines.contains { $0.hasPrefix("\(dir)/bad.list:\(line): ") && $0.contains(text) }, "line \(line): \(text)")
        }
        let missing = #expect(throws: KmatrixError.self) { _ = try CpioList.parse(file: "\(dir)/absent.list") }
        #expect(missing?.message.contains("absent.list") == true)
    }

    @Test func newcReaderRejectsTruncatedArchives() throws {
        #expect(throws: KmatrixError.self) { _ = try NewcReader.parse(Array("070701".utf8)) }
        #expect(throws: KmatrixError.self) { _ = try NewcReader.parse(Array(repeating: 0x30, count: 200)) }
    }
}
