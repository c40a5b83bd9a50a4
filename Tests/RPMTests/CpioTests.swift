import Foundation
@testable import RPM
@testable import Signature
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

@Suite struct CpioTests {
    /// Extracts `archive` into a fresh `DIR/root`; returns DIR (the root's parent, to check nothing escaped).
    func extract(_ archive: NewcArchive, options: ExtractOptions = ExtractOptions(applyOwnership: false)) throws -> (String, Result<ExtractReport, Error>) {
        let dir = try Fixture.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        let path = dir + "/archive.cpio"
        try Data(archive.bytes).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let result = Result { try CpioExtractor(root: dir + "/root", input: fd, file: "test.rpm", options: options).extract() }
        return (dir, result)
    }

    func entries(_ dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).sorted()
    }

    @Test func extractsFilesDirectoriesSymlinksAndHardLinks() throws {
        var a = NewcArchive()
        a.dir("./usr")
        a.dir("./usr/bin")
        a.file("./usr/bin/tool", "#!/bin/sh\necho hi\n", mode: 0o4755)
        a.symlink("./usr/bin/alias", "tool")
        // A hard-link set: data with the last name only (newc convention).
        a.add("./usr/bin/h1", mode: 0o100640, data: [], ino: 77, nlink: 3)
        a.add("./usr/bin/h2", mode: 0o100640, data: [], ino: 77, nlink: 3)
        a.add("./usr/bin/h3", mode: 0o100640, data: Array("shared".utf8), ino: 77, nlink: 3)
        // A hard-link set of empty files (no member carries data).
        a.add("./e1", mode: 0o100600, ino: 90, nlink: 2)
        a.add("./e2", mode: 0o100600, ino: 90, nlink: 2)
        a.file("./etc/deep/missing-parents.conf", "x=1\n")
        a.add("./dev/null", mode: 0o020666, rdev: (1, 3))
        a.trailer()
        let (dir, result) = try extract(a)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let report = try result.get()
        let root = dir + "/root"
        #expect(try String(contentsOfFile: root + "/usr/bin/tool", encoding: .utf8) == "#!/bin/sh\necho hi\n")
        var st = stat()
        #expect(lstat(root + "/usr/bin/tool", &st) == 0 && Int(st.st_mode) & 0o7777 == 0o4755)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/usr/bin/alias") == "tool")
        #expect(lstat(root + "/usr/bin/alias", &st) == 0 && Int(st.st_mode) & 0o170000 == 0o120000)
        var inodes = Set<UInt>()
        for h in ["h1", "h2", "h3"] {
            #expect(try String(contentsOfFile: root + "/usr/bin/" + h, encoding: .utf8) == "shared")
            #expect(lstat(root + "/usr/bin/" + h, &st) == 0 && st.st_nlink == 3 && Int(st.st_mode) & 0o7777 == 0o640)
            inodes.insert(UInt(st.st_ino))
        }
        #expect(inodes.count == 1)
        #expect(lstat(root + "/e1", &st) == 0 && st.st_nlink == 2 && st.st_size == 0)
        #expect(lstat(root + "/usr", &st) == 0 && st.st_mtim.tv_sec == 1_500_000_000)
        #expect(FileManager.default.fileExists(atPath: root + "/etc/deep/missing-parents.conf"))
        #expect(!FileManager.default.fileExists(atPath: root + "/dev/null"))
        #expect(report.skipped == ["/dev/null"])
        #expect(report.hardLinks == 3 && report.symlinks == 1 && report.directories == 2)
        // No temporary names left behind.
        #expect(!entries(root).contains { $0.contains(".centos6-ami-") })
    }

    @Test(arguments: ["../escape", "./../escape", "./a/../../escape", "/etc/escape", "a/b/../../../escape"])
    func refusesDotDotAndAbsolute(_ name: String) throws {
        var a = NewcArchive()
        a.file("./ok", "fine")
        a.file(name, "evil")
        a.trailer()
        let (dir, result) = try extract(a)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard case .failure(let error) = result, case RPMError.unsafeEntry(_, let entry, _)? = error as? RPMError else {
            Issue.record("'\(name)' was not refused: \(result)"); return
        }
        #expect(entry == name)
        #expect("\(error)".contains("refusing entry '\(name)'"))
        // Nothing of the refused entry was written, inside or outside the root.
        #expect(entries(dir).filter { $0.contains("escape") }.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "/etc/escape"))
        #expect(entries(dir + "/root") == ["ok"])
    }

    @Test func refusesPathsThroughSymlinksOutOfTheRoot() throws {
        // A symlink from the archive itself, and one already in the root.
        var a = NewcArchive()
        a.symlink("./up", "../../..")
        a.file("./up/escape", "evil")
        a.trailer()
        let (dir, result) = try extract(a)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard case .failure(RPMError.unsafeEntry(_, "./up/escape", _)) = result.mapError({ $0 as! RPMError }) else {
            Issue.record("not refused: \(result)"); return
        }
        #expect(entries(dir).filter { $0.contains("escape") }.isEmpty)

        var b = NewcArchive()
        b.file("./pre/escape", "evil")
        b.trailer()
        let dir2 = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir2) }
        try FileManager.default.createDirectory(atPath: dir2 + "/root", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir2 + "/outside", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir2 + "/root/pre", withDestinationPath: "../outside")
        try Data(b.bytes).write(to: URL(fileURLWithPath: dir2 + "/a.cpio"))
        let fd = open(dir2 + "/a.cpio", O_RDONLY)
        defer { close(fd) }
        #expect(throws: RPMError.self) {
            try CpioExtractor(root: dir2 + "/root", input: fd, file: "t", options: ExtractOptions(applyOwnership: false)).extract()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir2 + "/outside").isEmpty)
    }

    @Test func absoluteSymlinksResolveInsideTheRoot() throws {
        // /lib -> /usr/lib style links (chroot semantics): writing through them stays in the root.
        var a = NewcArchive()
        a.dir("./usr")
        a.dir("./usr/lib")
        a.symlink("./lib", "/usr/lib")
        a.dir("./lib") // rpm keeps an existing symlink where a directory goes
        a.file("./lib/libx.so", "elf")
        a.file("./lib", "not allowed to replace the link's directory") // replaces the symlink itself (rename)
        a.trailer()
        let (dir, result) = try extract(a)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try result.get()
        #expect(try String(contentsOfFile: dir + "/root/usr/lib/libx.so", encoding: .utf8) == "elf")
        var st = stat()
        #expect(lstat(dir + "/root/lib", &st) == 0 && Int(st.st_mode) & 0o170000 == 0o100000)
    }

    @Test func replacingAnExistingSymlinkNeverWritesThroughIt() throws {
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: dir + "/precious"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/root/target", withDestinationPath: "../precious")
        var a = NewcArchive()
        a.file("./target", "new")
        a.trailer()
        try Data(a.bytes).write(to: URL(fileURLWithPath: dir + "/a.cpio"))
        let fd = open(dir + "/a.cpio", O_RDONLY)
        defer { close(fd) }
        try CpioExtractor(root: dir + "/root", input: fd, file: "t", options: ExtractOptions(applyOwnership: false)).extract()
        #expect(try String(contentsOfFile: dir + "/precious", encoding: .utf8) == "precious")
        #expect(try String(contentsOfFile: dir + "/root/target", encoding: .utf8) == "new")
    }

    @Test func truncatedAndCorruptArchives() throws {
        var a = NewcArchive()
        a.file("./a", String(repeating: "x", count: 1000))
        a.trailer()
        var cut = a
        cut.bytes = Array(a.bytes.prefix(600))
        let (d1, r1) = try extract(cut)
        defer { try? FileManager.default.removeItem(atPath: d1) }
        guard case .failure(RPMError.cpio) = r1.mapError({ $0 as! RPMError }) else { Issue.record("truncation not reported: \(r1)"); return }
        #expect(!entries(d1 + "/root").contains("a"))

        var noTrailer = NewcArchive()
        noTrailer.file("./a", "x")
        let (d2, r2) = try extract(noTrailer)
        defer { try? FileManager.default.removeItem(atPath: d2) }
        #expect((try? r2.get()) == nil)

        var badCRC = NewcArchive()
        badCRC.crc = true
        badCRC.add("./c", mode: 0o100644, data: Array("abc".utf8), check: 1)
        badCRC.trailer()
        let (d3, r3) = try extract(badCRC)
        defer { try? FileManager.default.removeItem(atPath: d3) }
        #expect((try? r3.get()) == nil)

        var goodCRC = NewcArchive()
        goodCRC.crc = true
        goodCRC.file("./c", "abc")
        goodCRC.trailer()
        let (d4, r4) = try extract(goodCRC)
        defer { try? FileManager.default.removeItem(atPath: d4) }
        _ = try r4.get()

        // Random garbage: an error, never a crash or hang.
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            var g = a
            for _ in 0..<3 { g.bytes[Int.random(in: 0..<g.bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            let (d, _) = try extract(g)
            try? FileManager.default.removeItem(atPath: d)
        }
    }

    /// A real package through the whole pipeline: xz payload, hard links, a setuid file.
    @Test func extractsARealPackage() throws {
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let verified = try SignatureVerifier(key: try PinnedKey(path: Fixture.path("fixture-key.asc"))).verified(
            try RPMFile(path: Fixture.path("tinyfix-signed.rpm")))
        let report = try Payload.extract(verified, into: dir, options: ExtractOptions(applyOwnership: false))
        #expect(report.files == 4 && report.hardLinks == 1 && report.symlinks == 1)
        var st = stat()
        #expect(lstat(dir + "/usr/bin/tiny-suid", &st) == 0 && Int(st.st_mode) & 0o7777 == 0o4755)
        #expect(try String(contentsOfFile: dir + "/usr/bin/tiny-link", encoding: .utf8) == "same bytes\n")
        // And the gzip-compressed one.
        let lib = try SignatureVerifier(key: try PinnedKey(path: Fixture.path("fixture-key.asc"))).verified(
            try RPMFile(path: Fixture.path("repo/Packages/tinylib-1.0-1.el6.noarch.rpm")))
        try Payload.extract(lib, into: dir, options: ExtractOptions(applyOwnership: false))
        #expect(FileManager.default.fileExists(atPath: dir + "/bin/sh"))
    }
}
