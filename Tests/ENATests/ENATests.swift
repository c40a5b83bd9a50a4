import ENA
import Foundation
import Host
import TestSupport
import Testing
import Versions

/// A scratch amzn-drivers tree in the real layout: the driver directory and
/// common/ena_com, with files of known content (sha256 of "abc" and of "").
final class Tree {
    static let ena = "kernel/linux/ena", common = "kernel/linux/common/ena_com"
    static let directories = [ena, common]
    static let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    static let abd = "a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9"
    static let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    let dir: String
    init() throws {
        dir = NSTemporaryDirectory() + "ena-pin-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try write(Tree.ena + "/Makefile", "abc")
        try write(Tree.ena + "/ena_netdev.c", "")
        try write(Tree.common + "/ena_com.c", "abc")
        try write("kernel/linux/rpm/Makefile", "not part of the build: never listed")
    }
    deinit { try? FileManager.default.removeItem(atPath: dir) }
    func write(_ name: String, _ text: String) throws {
        let path = dir + "/" + name
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
    var pins: [String: String] { [Tree.ena + "/Makefile": Tree.abc, Tree.ena + "/ena_netdev.c": Tree.empty, Tree.common + "/ena_com.c": Tree.abc] }
    func check() throws -> [PinProblem] {
        try PinCheck.check(root: dir, directories: Tree.directories, pinned: pins, runner: ProcessRunner(log: nil))
    }
}

@Suite struct PinCheckTests {
    @Test func theExactTreePasses() throws {
        #expect(try Tree().check() == [])
    }

    @Test func oneFlippedByteIsNamed() throws {
        let tree = try Tree()
        try tree.write(Tree.ena + "/Makefile", "abd")
        let problems = try tree.check()
        #expect(problems.count == 1)
        guard case let .different(path, expected, actual) = problems.first else { Issue.record("\(problems)"); return }
        #expect(path == "kernel/linux/ena/Makefile" && expected == Tree.abc && actual != Tree.abc && actual.count == 64)
        #expect(ENAError.pinMismatch(source: "x", problems: problems).description.contains("different: 'kernel/linux/ena/Makefile'"))
    }

    @Test func oneFlippedByteInCommonEnaComIsNamed() throws {
        let tree = try Tree()
        try tree.write(Tree.common + "/ena_com.c", "abd")
        let problems = try tree.check()
        #expect(problems.map(\.description) == ["different: 'kernel/linux/common/ena_com/ena_com.c' has sha256 \(Tree.abd), pinned \(Tree.abc)"])
    }

    @Test func aMissingCommonDirectoryLeavesItsFilesMissing() throws {
        let tree = try Tree()
        try FileManager.default.removeItem(atPath: tree.dir + "/kernel/linux/common")
        #expect(try tree.check() == [.missing("kernel/linux/common/ena_com/ena_com.c")])
    }

    @Test func aSymlinkedCommonDirectoryIsRefusedNotEntered() throws {
        let tree = try Tree()
        try FileManager.default.moveItem(atPath: tree.dir + "/kernel/linux/common", toPath: tree.dir + "/elsewhere")
        try FileManager.default.createSymbolicLink(atPath: tree.dir + "/kernel/linux/common", withDestinationPath: tree.dir + "/elsewhere")
        #expect(try tree.check() == [.notARegularFile("kernel/linux/common"), .missing("kernel/linux/common/ena_com/ena_com.c")])
    }

    @Test func aMissingFileIsNamed() throws {
        let tree = try Tree()
        try FileManager.default.removeItem(atPath: tree.dir + "/kernel/linux/ena/ena_netdev.c")
        #expect(try tree.check() == [.missing("kernel/linux/ena/ena_netdev.c")])
    }

    @Test func extraFilesAnywhereAreFatal() throws {
        let tree = try Tree()
        try tree.write(Tree.ena + "/Kbuild", "obj-m := evil.o\n")
        try tree.write(Tree.ena + "/config/kcompat.h", "#define X\n")
        try tree.write(Tree.common + "/ena_plat.h", "#define kmalloc evil\n")
        #expect(
            try tree.check() == [
                .extra("kernel/linux/common/ena_com/ena_plat.h"), .extra("kernel/linux/ena/Kbuild"), .extra("kernel/linux/ena/config/kcompat.h"),
            ])
    }

    @Test func symlinksAreRefusedNotFollowed() throws {
        let tree = try Tree()
        try FileManager.default.removeItem(atPath: tree.dir + "/kernel/linux/ena/Makefile")
        try FileManager.default.createSymbolicLink(atPath: tree.dir + "/kernel/linux/ena/Makefile", withDestinationPath: "/etc/hostname")
        #expect(try tree.check() == [.notARegularFile("kernel/linux/ena/Makefile")])
    }

    @Test func theComparisonIsPureAndSorted() {
        let problems = PinCheck.problems(
            pinned: ["b": Tree.abc, "a": Tree.abc, "c": Tree.empty],
            actual: ["b": Tree.empty, "c": Tree.empty, "d": Tree.abc])
        #expect(problems == [.missing("a"), .different("b", expected: Tree.abc, actual: Tree.empty), .extra("d")])
    }

    /// versions.json's pin is the reference list of ENA 2.9.1's two directories, file for file.
    @Test func versionsJSONPinsTheReferenceLists() throws {
        let ena = PinCheck.parseList(try golden("ena_linux_2.9.1-kernel-linux-ena.sha256"))
        let common = PinCheck.parseList(try golden("ena_linux_2.9.1-kernel-linux-common-ena_com.sha256"))
        let pin = try VersionsFile.embedded().ena
        #expect(ena.count == 24 && common.count == 8)
        #expect(pin.files == ena.merging(common) { a, _ in a })
        #expect(pin.files(in: "kernel/linux/common/ena_com").contains("kernel/linux/common/ena_com/ena_com.c"))
        #expect(pin.version == "2.9.1" && pin.buildDirectory == "kernel/linux/ena")
        #expect(pin.sourceDirectories == ["kernel/linux/ena", "kernel/linux/common/ena_com"])
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
        let spec = KmodSpec(
            version: "2.9.1", kernelRelease: "2.6.32-696.el6.x86_64", kernelVersion: "2.6.32-696.el6",
            builtModule: "/usr/src/centos6-ami-ena/src/kernel/linux/ena/ena.ko")
        try expectGolden(spec.render(), "kmod-ena.spec")
        #expect(spec.modulePath == "/lib/modules/2.6.32-696.el6.x86_64/extra/ena/ena.ko")
    }
}

@Suite struct KBuildTests {
    @Test func makeUsesTheMakefilesInterfaceInACleanEnvironment() {
        let command = KBuild.make(sourceDirectory: "/usr/src/x/ena", kernelRelease: "2.6.32-754.el6.x86_64").inChroot("/b")
        #expect(
            command.shellLine
                == "chroot /b env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C make -C /usr/src/x/ena -j2 BUILD_KERNEL=2.6.32-754.el6.x86_64 KERNEL_BUILD_DIR=/usr/src/kernels/2.6.32-754.el6.x86_64"
        )
    }

    @Test func vermagicIsReadFromModinfo() {
        var bytes = Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2])
        bytes.append(Data("license=GPL\0vermagic=2.6.32-696.el6.x86_64 SMP mod_unload modversions \0name=ena\0".utf8))
        #expect(KBuild.vermagic(ofModule: bytes) == "2.6.32-696.el6.x86_64 SMP mod_unload modversions ")
        #expect(KBuild.release(ofVermagic: "2.6.32-696.el6.x86_64 SMP mod_unload modversions ") == "2.6.32-696.el6.x86_64")
        #expect(KBuild.vermagic(ofModule: Data("xvermagic=1\0".utf8)) == nil, "only at a string start")
        #expect(KBuild.modinfo("version", ofModule: bytes) == nil)
        #expect(KBuild.modinfo("version", ofModule: Data("srcversion=AB\0version=2.9.1g\0".utf8)) == "2.9.1g")
    }

    /// amzn-drivers' module version is "<release>g" (DRV_MODULE_GENERATION); nothing else passes.
    @Test func theModuleVersionMustBeThePinnedRelease() {
        #expect(KBuild.isPinnedVersion("2.9.1g", pinned: "2.9.1"))
        #expect(KBuild.isPinnedVersion("2.9.1", pinned: "2.9.1"))
        #expect(!KBuild.isPinnedVersion("2.9.10g", pinned: "2.9.1"))
        #expect(!KBuild.isPinnedVersion("2.10.0g", pinned: "2.9.1"))
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
        let archive = ENASource.archive("/a/ena.tar.gz").fetchCommands(scratch: "/s", directories: Tree.directories)
        #expect(archive.map(\.shellLine) == ["mkdir -p /s/source", "tar -xzf /a/ena.tar.gz -C /s/source --no-same-owner --no-same-permissions"])
        // From a tree or git checkout: the two directories at their relative paths, nothing else.
        let dir = ENASource.directory("/d").fetchCommands(scratch: "/s", directories: Tree.directories)
        #expect(
            dir.map(\.shellLine) == [
                "mkdir -p /s/source/kernel/linux", "cp -RP /d/kernel/linux/ena /s/source/kernel/linux/",
                "mkdir -p /s/source/kernel/linux/common", "cp -RP /d/kernel/linux/common/ena_com /s/source/kernel/linux/common/",
            ])
    }

    /// The tree top is `source/` (a copied tree) or the archive's one top directory.
    @Test func theTreeIsFoundAtTheTopOrInsideTheArchivesTopDirectory() throws {
        let scratch = NSTemporaryDirectory() + "ena-locate-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try FileManager.default.createDirectory(atPath: scratch + "/source/amzn-drivers-ena_linux_2.9.1/kernel/linux/ena", withIntermediateDirectories: true)
        #expect(try ENASource.locateTree(scratch: scratch, buildDirectory: "kernel/linux/ena") == scratch + "/source/amzn-drivers-ena_linux_2.9.1")
        #expect(throws: ENAError.self) { try ENASource.locateTree(scratch: scratch, buildDirectory: "kernel/linux/nope") }
    }
}
