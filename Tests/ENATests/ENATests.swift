import ENA
import Foundation
import Host
import Testing
import Versions

func golden(_ name: String) throws -> String {
    let url = Bundle.module.url(forResource: "Golden", withExtension: nil)!.appendingPathComponent(name)
    return try String(contentsOf: url, encoding: .utf8)
}

/// A scratch tree with two files of known content (sha256 of "abc" and of "").
final class Tree {
    static let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    static let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    let dir: String
    init() throws {
        dir = NSTemporaryDirectory() + "ena-pin-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try write("Makefile", "abc")
        try write("ena_netdev.c", "")
    }
    deinit { try? FileManager.default.removeItem(atPath: dir) }
    func write(_ name: String, _ text: String) throws {
        let path = dir + "/" + name
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
    var pins: [String: String] { ["Makefile": Tree.abc, "ena_netdev.c": Tree.empty] }
    func check() throws -> [PinProblem] { try PinCheck.check(directory: dir, pinned: pins, runner: ProcessRunner(log: nil)) }
}

@Suite struct PinCheckTests {
    @Test func theExactTreePasses() throws {
        #expect(try Tree().check() == [])
    }

    @Test func oneFlippedByteIsNamed() throws {
        let tree = try Tree()
        try tree.write("Makefile", "abd")
        let problems = try tree.check()
        #expect(problems.count == 1)
        guard case let .different(path, expected, actual) = problems.first else { Issue.record("\(problems)"); return }
        #expect(path == "Makefile" && expected == Tree.abc && actual != Tree.abc && actual.count == 64)
        #expect(ENAError.pinMismatch(source: "x", problems: problems).description.contains("different: 'Makefile'"))
    }

    @Test func aMissingFileIsNamed() throws {
        let tree = try Tree()
        try FileManager.default.removeItem(atPath: tree.dir + "/ena_netdev.c")
        #expect(try tree.check() == [.missing("ena_netdev.c")])
    }

    @Test func extraFilesAnywhereAreFatal() throws {
        let tree = try Tree()
        try tree.write("Kbuild", "obj-m := evil.o\n")
        try tree.write("config/kcompat.h", "#define X\n")
        #expect(try tree.check() == [.extra("Kbuild"), .extra("config/kcompat.h")])
    }

    @Test func symlinksAreRefusedNotFollowed() throws {
        let tree = try Tree()
        try FileManager.default.removeItem(atPath: tree.dir + "/Makefile")
        try FileManager.default.createSymbolicLink(atPath: tree.dir + "/Makefile", withDestinationPath: "/etc/hostname")
        #expect(try tree.check() == [.notARegularFile("Makefile")])
    }

    @Test func theComparisonIsPureAndSorted() {
        let problems = PinCheck.problems(pinned: ["b": Tree.abc, "a": Tree.abc, "c": Tree.empty],
                                         actual: ["b": Tree.empty, "c": Tree.empty, "d": Tree.abc])
        #expect(problems == [.missing("a"), .different("b", expected: Tree.abc, actual: Tree.empty), .extra("d")])
    }

    /// versions.json's pin is the reference list of ENA 2.9.1's kernel/linux/ena, file for file.
    @Test func versionsJSONPinsTheReferenceList() throws {
        let reference = PinCheck.parseList(try golden("ena_linux_2.9.1-kernel-linux-ena.sha256"), stripPrefix: "kernel/linux/ena/")
        let pin = try VersionsFile.embedded().ena
        #expect(reference.count == 24)
        #expect(pin.files == reference)
        #expect(pin.version == "2.9.1" && pin.sourceDirectory == "kernel/linux/ena")
    }
}

@Suite struct EligibilityTests {
    @Test func releasesBefore6_6AreRefusedWithVersionsJSONsReason() throws {
        let versions = try VersionsFile.embedded()
        for name in ["6.0", "6.4", "6.5"] {
            let release = try versions.require(name)
            do {
                try ENAEligibility.check(release, pin: versions.ena)
                Issue.record("\(name) was accepted")
            } catch let error as ENAError {
                let text = error.description
                #expect(text.hasPrefix("ENA 2.9.1 cannot be built for CentOS \(name): "))
                #expect(text.contains(release.ena.reason!), "the reason from versions.json")
            }
        }
        #expect(try versions.require("6.5").ena.reason!.contains("busy_poll"))
        for name in ["6.6", "6.9", "6.10"] { try ENAEligibility.check(try versions.require(name), pin: versions.ena) }
    }
}

@Suite struct KmodSpecTests {
    @Test func theSpecIsTheGolden() throws {
        let spec = KmodSpec(version: "2.9.1", kernelRelease: "2.6.32-696.el6.x86_64", kernelVersion: "2.6.32-696.el6",
                            builtModule: "/usr/src/centos6-ami-ena/ena/ena.ko")
        #expect(spec.render() == (try golden("kmod-ena.spec")))
        #expect(spec.modulePath == "/lib/modules/2.6.32-696.el6.x86_64/extra/ena/ena.ko")
    }
}

@Suite struct KBuildTests {
    @Test func makeUsesTheMakefilesInterfaceInACleanEnvironment() {
        let command = KBuild.make(sourceDirectory: "/usr/src/x/ena", kernelRelease: "2.6.32-754.el6.x86_64").inChroot("/b")
        #expect(command.shellLine == "chroot /b env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C make -C /usr/src/x/ena -j2 BUILD_KERNEL=2.6.32-754.el6.x86_64 KERNEL_BUILD_DIR=/usr/src/kernels/2.6.32-754.el6.x86_64")
    }

    @Test func vermagicIsReadFromModinfo() {
        var bytes = Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2])
        bytes.append(Data("license=GPL\0vermagic=2.6.32-696.el6.x86_64 SMP mod_unload modversions \0name=ena\0".utf8))
        #expect(KBuild.vermagic(ofModule: bytes) == "2.6.32-696.el6.x86_64 SMP mod_unload modversions ")
        #expect(KBuild.release(ofVermagic: "2.6.32-696.el6.x86_64 SMP mod_unload modversions ") == "2.6.32-696.el6.x86_64")
        #expect(KBuild.vermagic(ofModule: Data("xvermagic=1\0".utf8)) == nil, "only at a string start")
    }

    @Test func utsReleaseIsReadFromTheHeader() {
        #expect(KBuild.utsRelease(header: "#define UTS_RELEASE \"6.1.0-56-cloud-amd64\"\n") == "6.1.0-56-cloud-amd64")
        #expect(KBuild.utsRelease(header: "/* nothing */\n") == nil)
    }
}

@Suite struct SourceTests {
    @Test func sourceKinds() throws {
        #expect(try ENASource.from(option: nil, pinnedURL: "https://x/a.tar.gz") == .download("https://x/a.tar.gz"))
        #expect(try ENASource.from(option: NSTemporaryDirectory(), pinnedURL: "https://x") == .directory(NSTemporaryDirectory()))
        #expect(throws: ENAError.self) { try ENASource.from(option: "/nonexistent/ena.tar.gz", pinnedURL: "https://x") }
    }

    @Test func fetchCommandsStayInTheScratchDirectory() {
        let archive = ENASource.archive("/a/ena.tar.gz").fetchCommands(scratch: "/s", sourceDirectory: "kernel/linux/ena")
        #expect(archive.map(\.shellLine) == ["mkdir -p /s/source", "tar -xzf /a/ena.tar.gz -C /s/source --no-same-owner --no-same-permissions"])
        let dir = ENASource.directory("/d").fetchCommands(scratch: "/s", sourceDirectory: "kernel/linux/ena")
        #expect(dir.map(\.shellLine) == ["mkdir -p /s/source/kernel/linux", "cp -RP /d/kernel/linux/ena /s/source/kernel/linux/"])
    }
}
