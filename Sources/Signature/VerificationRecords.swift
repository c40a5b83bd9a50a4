import Fetch
import Foundation
import Host
import RPM
#if canImport(Glibc)
    import Glibc
#endif

/// Signature verifications remembered in the download cache, so a blob
/// verified once under the pinned key is not handed to gpgv again by every
/// install (a batch re-verified every package once per install).
///
///     <cache>/verified/<FINGERPRINT>/<kind>/<hex>.json
///
/// A record is used only when everything it was made from is unchanged:
/// - the key: the directory is the primary key's fingerprint and the record
///   holds the sha256 of the whole keyring (a changed subkey misses too);
/// - the blob: the caller hashes the file on EVERY use and compares it with
///   the content address first (`SignatureVerifier.verifiedUsingRecords`),
///   so a blob altered in the cache is refused before any record is read;
/// - the cache entry: device, inode, size and mtime of the blob file must be
///   those recorded (a blob removed and fetched again is verified again).
/// An unreadable or malformed record is a miss, never an error.
public struct VerificationRecords: Sendable {
    public let directory: URL

    public init(cacheRoot: URL) {
        directory = cacheRoot.standardizedFileURL.appendingPathComponent("verified")
    }

    struct Record: Codable, Equatable {
        var format = 1
        var checksum: String
        var fingerprint: String
        var keyringSHA256: String
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var mtimeNanoseconds: Int64
        var method: String
        var signatureTag: Int32
        var signedAt: Int
        var keyExpiredAt: Int?
    }

    func path(_ checksum: Checksum, key: PinnedKey) -> URL {
        directory.appendingPathComponent("\(key.fingerprint)/\(checksum.kind.rawValue)/\(checksum.hex).json")
    }

    /// What identifies the blob file on disk now.
    static func identity(of file: String) -> (device: UInt64, inode: UInt64, size: Int64, mtime: Int64)? {
        var st = stat()
        guard stat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino), Int64(st.st_size), Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    static func keyringDigest(_ key: PinnedKey) -> String { Checksum.of(Data(key.keyring), kind: .sha256).hex }

    /// The remembered report for `rpm` (stored as `checksum`) under `key`, nil when there is none or it no longer applies.
    func lookup(_ rpm: RPMFile, checksum: Checksum, key: PinnedKey) -> VerificationReport? {
        guard let data = FileManager.default.contents(atPath: path(checksum, key: key).path),
            let record = try? JSONDecoder().decode(Record.self, from: data),
            record.format == 1, record.checksum == checksum.description,
            record.fingerprint == key.fingerprint, record.keyringSHA256 == VerificationRecords.keyringDigest(key),
            let now = VerificationRecords.identity(of: rpm.path),
            now.device == record.device, now.inode == record.inode, now.size == record.size, now.mtime == record.mtimeNanoseconds,
            rpm.signature.has(record.signatureTag), let bytes = rpm.signature.binary(record.signatureTag),
            let packet = try? SignaturePacket(parsing: bytes, file: rpm.path)
        else { return nil }
        return VerificationReport(method: record.method, packet: packet, signedAt: record.signedAt, keyExpiredAt: record.keyExpiredAt, payloadVerified: true)
    }

    /// Remembers a full (header and payload) verification. Written whole or not
    /// at all (`AtomicFile`), so readers see a whole record or none. A failure to
    /// write only costs a gpgv run next time.
    func remember(_ rpm: RPMFile, checksum: Checksum, key: PinnedKey, report: VerificationReport, tag: Int32) {
        guard report.payloadVerified, let id = VerificationRecords.identity(of: rpm.path) else { return }
        let record = Record(
            checksum: checksum.description, fingerprint: key.fingerprint, keyringSHA256: VerificationRecords.keyringDigest(key),
            device: id.device, inode: id.inode, size: id.size, mtimeNanoseconds: id.mtime,
            method: report.method, signatureTag: tag, signedAt: report.signedAt, keyExpiredAt: report.keyExpiredAt)
        let target = path(checksum, key: key)
        guard let data = try? JSONEncoder().encode(record),
            (try? FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)) != nil
        else { return }
        try? AtomicFile.write(data, to: target.path)
    }
}

extension SignatureVerifier {
    /// The signature tag `verify` uses for a full verification of `rpm`.
    static func fullVerificationTag(_ rpm: RPMFile) -> Int32? {
        if let tag = [SigTag.pgp, SigTag.gpg].first(where: { rpm.signature.has($0) }) { return tag }
        return [SigTag.rsaHeader, SigTag.dsaHeader].first(where: { rpm.signature.has($0) })
    }

    /// `verified(_:)` for a blob of the download cache: first the file's
    /// checksum is recomputed and must be its content address (every use, so a
    /// blob altered in the cache is caught), then a remembered verification
    /// under this key is used if it still applies, else gpgv runs and the result
    /// is remembered. Returns the token and whether gpgv ran.
    public func verifiedUsingRecords(_ rpm: RPMFile, checksum: Checksum, records: VerificationRecords) throws -> (VerifiedRPM, checkedNow: Bool) {
        let actual = try Checksum.of(file: rpm.path, kind: checksum.kind)
        guard actual == checksum else {
            throw SignatureError.digestMismatch(file: rpm.path, what: "cached file (\(checksum.kind.rawValue))", expected: checksum.hex, actual: actual.hex)
        }
        if let report = records.lookup(rpm, checksum: checksum, key: key) {
            log?.write("signature: \((rpm.path as NSString).lastPathComponent): remembered good under \(key.fingerprint) (\(report.method))")
            return (VerifiedRPM(remembered: rpm, report: report), false)
        }
        let verified = try verified(rpm)
        if let tag = SignatureVerifier.fullVerificationTag(rpm) {
            records.remember(rpm, checksum: checksum, key: key, report: verified.report, tag: tag)
        }
        return (verified, true)
    }
}
