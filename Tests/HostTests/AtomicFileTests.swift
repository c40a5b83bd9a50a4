import Foundation
import Testing
@testable import Host
#if canImport(Glibc)
    import Glibc
#endif

@Suite struct AtomicFileTests {
    @Test func replacesTheFileWholeWithItsModeAndLeavesNoTemporary() throws {
        let dir = try TemporaryDirectory.make("atomic-test")
        defer { TemporaryDirectory.remove(dir) }
        let path = dir + "/results.json"
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        try AtomicFile.write(Data("new".utf8), to: path, mode: 0o600)
        #expect(FileManager.default.contents(atPath: path) == Data("new".utf8))
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["results.json"])
    }

    /// rename(2) over a directory fails: the error names the path, the temporary file is gone.
    @Test func aFailureNamesThePathAndRemovesTheTemporary() throws {
        let dir = try TemporaryDirectory.make("atomic-test")
        defer { TemporaryDirectory.remove(dir) }
        let path = dir + "/taken"
        try FileManager.default.createDirectory(atPath: path + "/inside", withIntermediateDirectories: true)
        do {
            try AtomicFile.write(Data("x".utf8), to: path)
            Issue.record("wrote over a directory")
        } catch let error as HostError {
            #expect(error.description.hasPrefix("cannot write '\(path)': rename: "), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["taken"])
        #expect(throws: HostError.self) { try AtomicFile.write(Data("x".utf8), to: dir + "/missing/file") }
    }
}

extension AtomicFileTests {
    /// Without a mode, a new file reads as open(2) would have made it: 0666 less the umask.
    @Test func withoutAModeTheUmaskDecides() throws {
        let dir = try TemporaryDirectory.make("atomic-test")
        defer { TemporaryDirectory.remove(dir) }
        try AtomicFile.write(Data("x".utf8), to: dir + "/f")
        let mask = umask(0o022)
        umask(mask)
        #expect(AtomicFile.processUmask == mask)
        var st = stat()
        #expect(stat(dir + "/f", &st) == 0 && st.st_mode & 0o777 == 0o666 & ~mask)
    }
}
