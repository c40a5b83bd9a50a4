import Fetch
import Foundation
import RPM
@testable import Signature
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// A blob verified once under a key is not re-verified; a change of key,
/// blob or cache entry brings gpgv back (or refuses the blob).
@Suite struct VerificationRecordsTests {
    /// A cache with the signed fixture as its only blob.
    func makeCache() throws -> (root: String, blob: String, checksum: Checksum) {
        let root = try Fixture.temporaryDirectory()
        let source = Fixture.path("tinyfix-signed.rpm")
        let checksum = try Checksum.of(file: source, kind: .sha256)
        try FileManager.default.createDirectory(atPath: root + "/blobs/sha256", withIntermediateDirectories: true)
        let blob = root + "/blobs/sha256/" + checksum.hex
        try FileManager.default.copyItem(atPath: source, toPath: blob)
        return (root, blob, checksum)
    }

    func verify(_ blob: String, _ checksum: Checksum, root: String, key: PinnedKey) throws -> Bool {
        let verifier = SignatureVerifier(key: key)
        return try verifier.verifiedUsingRecords(
            try RPMFile(path: blob), checksum: checksum,
            records: VerificationRecords(cacheRoot: URL(fileURLWithPath: root))
        ).checkedNow
    }

    @Test func verifiedOnceThenRemembered() throws {
        let (root, blob, checksum) = try makeCache()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let key = try PinnedKey(path: Fixture.path("fixture-key.asc"))
        #expect(try verify(blob, checksum, root: root, key: key) == true)
        let record = root + "/verified/\(key.fingerprint)/sha256/\(checksum.hex).json"
        #expect(FileManager.default.fileExists(atPath: record))
        #expect(try verify(blob, checksum, root: root, key: key) == false)
        // The remembered token unpacks like a fresh one.
        let (token, _) = try SignatureVerifier(key: key).verifiedUsingRecords(
            try RPMFile(path: blob), checksum: checksum,
            records: VerificationRecords(cacheRoot: URL(fileURLWithPath: root)))
        #expect(token.report.method.hasPrefix("SIGPGP"))
        #expect(token.report.packet.keyID == key.keyID)
    }

    @Test func anotherKeyIsNotAnsweredFromTheRecord() throws {
        let (root, blob, checksum) = try makeCache()
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try verify(blob, checksum, root: root, key: try PinnedKey(path: Fixture.path("fixture-key.asc"))) == true)
        // The same blob under the CentOS 6 key: gpgv runs and refuses it.
        #expect(throws: SignatureError.self) { try verify(blob, checksum, root: root, key: try PinnedKey.embeddedCentOS6()) }
    }

    @Test func aTamperedBlobIsCaughtDespiteItsRecord() throws {
        let (root, blob, checksum) = try makeCache()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let key = try PinnedKey(path: Fixture.path("fixture-key.asc"))
        #expect(try verify(blob, checksum, root: root, key: key) == true)
        // Flip the last byte in place (same inode, size; mtime restored as a careful attacker would).
        var st = stat()
        stat(blob, &st)
        let fd = open(blob, O_RDWR)
        var byte: UInt8 = 0
        pread(fd, &byte, 1, off_t(st.st_size - 1))
        byte ^= 0xff
        pwrite(fd, &byte, 1, off_t(st.st_size - 1))
        var times = [st.st_atim, st.st_mtim]
        futimens(fd, &times)
        close(fd)
        #expect { try verify(blob, checksum, root: root, key: key) } throws: { error in
            guard case SignatureError.digestMismatch = error else { return false }
            return "\(error)".contains(checksum.hex)
        }
    }

    @Test func aChangedCacheEntryOrRecordIsVerifiedAgain() throws {
        let (root, blob, checksum) = try makeCache()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let key = try PinnedKey(path: Fixture.path("fixture-key.asc"))
        #expect(try verify(blob, checksum, root: root, key: key) == true)
        // The blob removed and admitted again (same bytes, new inode): verified again.
        let copy = blob + ".again"
        try FileManager.default.copyItem(atPath: blob, toPath: copy)
        try FileManager.default.removeItem(atPath: blob)
        try FileManager.default.moveItem(atPath: copy, toPath: blob)
        #expect(try verify(blob, checksum, root: root, key: key) == true)
        #expect(try verify(blob, checksum, root: root, key: key) == false)
        // A damaged record is a miss, not an error, and is replaced.
        let record = root + "/verified/\(key.fingerprint)/sha256/\(checksum.hex).json"
        try "{not json".write(toFile: record, atomically: true, encoding: .utf8)
        #expect(try verify(blob, checksum, root: root, key: key) == true)
        #expect(try verify(blob, checksum, root: root, key: key) == false)
        // A record edited to name another key's keyring is a miss.
        var text = try String(contentsOfFile: record, encoding: .utf8)
        text = text.replacingOccurrences(of: VerificationRecords.keyringDigest(key), with: String(repeating: "0", count: 64))
        try text.write(toFile: record, atomically: true, encoding: .utf8)
        #expect(try verify(blob, checksum, root: root, key: key) == true)
    }
}
