import Fetch
import Foundation
import RPM
@testable import Signature
import TestSupport
import Testing

@Suite struct SignatureTests {
    static let expiry = 1625020067 // the CentOS 6 key's expiry, 2021-06-30 02:27:47 UTC

    @Test func embeddedKeyIsTheCentOS6Key() throws {
        let key = try PinnedKey.embeddedCentOS6()
        #expect(key.fingerprint == PinnedKey.centOS6Fingerprint)
        #expect(key.keyID == "0946fca2c105b9de")
        let fixture = try PinnedKey(path: Fixture.path("fixture-key.asc"))
        #expect(fixture.fingerprint != key.fingerprint)
        #expect(fixture.fingerprint.count == 40)
    }

    @Test func badKeysAreRefused() throws {
        #expect(throws: SignatureError.self) { try PinnedKey(bytes: Array("not a key".utf8), source: "x") }
        // Damaged armor: one base64 character changed breaks the CRC-24.
        var armored = embeddedCentOS6KeyArmored
        let i = armored.index(armored.startIndex, offsetBy: 200)
        armored.replaceSubrange(i...i, with: armored[i] == "A" ? "B" : "A")
        #expect(throws: SignatureError.self) { try PinnedKey(bytes: Array(armored.utf8), source: "damaged") }
    }

    /// The genuine CentOS 6 headers verify with the embedded (expired) key:
    /// signatures made in 2012-2013, before the 2021 expiry, are accepted.
    @Test(arguments: Fixture.genuine.map(\.file))
    func genuineHeaderSignaturesVerify(_ file: String) throws {
        let rpm = try RPMFile(path: Fixture.genuinePath(file))
        let report = try SignatureVerifier(key: try PinnedKey.embeddedCentOS6()).verify(rpm, allowHeaderOnly: true)
        #expect(report.method.hasPrefix("RSAHEADER"))
        #expect(report.payloadVerified == false)
        #expect(report.keyExpiredAt == SignatureTests.expiry)
        #expect(report.signedAt < SignatureTests.expiry)
        #expect(report.signedAt == report.packet.creationTime)
        // For install (payload required) the header-only file is refused.
        #expect(throws: RPMError.self) { try SignatureVerifier(key: try PinnedKey.embeddedCentOS6()).verified(rpm) }
    }

    @Test func flippedHeaderByteIsRejected() throws {
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let name = "el6-rpm-headers/snappy-1.1.0-1.el6.x86_64.header-only.rpm"
        let original = try RPMFile(path: Fixture.path(name))
        // A byte in the middle of the main header's data store (the description text).
        let flipAt = original.header.range.upperBound - 200
        let path = try Fixture.mutatedCopy(name, in: dir) { $0[flipAt] ^= 0x01 }
        let rpm = try RPMFile(path: path)
        do {
            _ = try SignatureVerifier(key: try PinnedKey.embeddedCentOS6()).verify(rpm, allowHeaderOnly: true)
            Issue.record("a flipped header byte verified")
        } catch let error as SignatureError {
            guard case .badSignature(_, let reason) = error else { Issue.record("unexpected \(error)"); return }
            #expect(reason.contains("BAD signature"))
        }
    }

    @Test func fullPackageSignatures() throws {
        let key = try PinnedKey(path: Fixture.path("fixture-key.asc"))
        let verifier = SignatureVerifier(key: key)
        let signed = try verifier.verified(try RPMFile(path: Fixture.path("tinyfix-signed.rpm")))
        #expect(signed.report.method == "SIGPGP over header+payload")
        #expect(signed.report.packet.version == 4)
        #expect(signed.report.packet.keyID == key.keyID)
        let headerOnly = try verifier.verified(try RPMFile(path: Fixture.path("tinyfix-headersig.rpm")))
        #expect(headerOnly.report.method.hasPrefix("RSAHEADER over the header + PAYLOADDIGEST sha256"))
    }

    @Test func refusals() throws {
        let dir = try Fixture.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try PinnedKey(path: Fixture.path("fixture-key.asc"))
        let verifier = SignatureVerifier(key: key)
        func failure(_ path: String, key: PinnedKey? = nil) -> (any Error)? {
            do {
                _ = try SignatureVerifier(key: key ?? verifier.key).verified(try RPMFile(path: path))
                return nil
            } catch { return error }
        }
        // Unsigned.
        guard case .unsigned? = failure(Fixture.path("tinyfix-unsigned.rpm")) as? SignatureError else { Issue.record("unsigned accepted"); return }
        // Another key (the embedded CentOS key is pinned; the package is signed by the fixture key).
        guard case .wrongKey(_, let keyID, _)? = failure(Fixture.path("tinyfix-signed.rpm"), key: try PinnedKey.embeddedCentOS6()) as? SignatureError else {
            Issue.record("wrong key accepted"); return
        }
        #expect(keyID == key.keyID)
        // A flipped payload byte: SIGPGP covers it.
        let rpm = try RPMFile(path: Fixture.path("tinyfix-signed.rpm"))
        let flipped = try Fixture.mutatedCopy("tinyfix-signed.rpm", in: dir) { $0[rpm.payloadOffset + 40] ^= 0x80 }
        guard case .badSignature? = failure(flipped) as? SignatureError else { Issue.record("flipped payload accepted (SIGPGP)"); return }
        // A flipped payload byte with only a header signature: PAYLOADDIGEST catches it.
        let hdir = dir + "/h"
        try FileManager.default.createDirectory(atPath: hdir, withIntermediateDirectories: true)
        let h = try RPMFile(path: Fixture.path("tinyfix-headersig.rpm"))
        let flippedH = try Fixture.mutatedCopy("tinyfix-headersig.rpm", in: hdir) { $0[h.payloadOffset + 40] ^= 0x80 }
        guard case .digestMismatch? = failure(flippedH) as? SignatureError else { Issue.record("flipped payload accepted (RSAHEADER)"); return }
        // Truncated: the payload is missing.
        let tdir = dir + "/t"
        try FileManager.default.createDirectory(atPath: tdir, withIntermediateDirectories: true)
        let truncated = try Fixture.mutatedCopy("tinyfix-signed.rpm", in: tdir) { $0.removeLast(100) }
        guard case .payloadMissing? = failure(truncated) as? RPMError else { Issue.record("truncated accepted"); return }
    }

    // MARK: gpgv status evaluation (pure)

    static let packet = try! SignaturePacket(
        parsing: RPMFile(path: Fixture.genuinePath(Fixture.genuine[1].file)).signature.binary(SigTag.rsaHeader)!, file: "x")
    static let fpr = PinnedKey.centOS6Fingerprint

    static func status(signedAt: Int, expired: Bool, extra: String = "") -> String {
        var s = "[GNUPG:] NEWSIG\n[GNUPG:] KEY_CONSIDERED \(fpr) 0\n"
        if expired { s += "[GNUPG:] KEYEXPIRED \(expiry)\n" }
        s += expired ? "[GNUPG:] EXPKEYSIG 0946FCA2C105B9DE CentOS-6 Key\n" : "[GNUPG:] GOODSIG 0946FCA2C105B9DE CentOS-6 Key\n"
        s += "[GNUPG:] VALIDSIG \(fpr) 2013-11-24 \(signedAt) 0 3 0 1 2 00 \(fpr)\n" + extra
        return s
    }

    @Test func signatureBeforeExpiryIsAccepted() throws {
        let (t, e) = try SignatureVerifier.evaluate(
            status: SignatureTests.status(signedAt: 1385321610, expired: true), exitStatus: 0,
            pinned: SignatureTests.fpr, file: "x", packet: SignatureTests.packet)
        #expect(t == 1385321610)
        #expect(e == SignatureTests.expiry)
    }

    @Test func signatureAfterExpiryIsRefused() {
        #expect(throws: SignatureError.self) {
            try SignatureVerifier.evaluate(
                status: SignatureTests.status(signedAt: SignatureTests.expiry + 86400, expired: true), exitStatus: 0,
                pinned: SignatureTests.fpr, file: "x", packet: SignatureTests.packet)
        }
    }

    @Test func statusRefusals() {
        let cases: [(String, Int32)] = [
            ("", 2),
            ("[GNUPG:] BADSIG 0946FCA2C105B9DE CentOS-6 Key\n", 1),
            ("[GNUPG:] ERRSIG 4E619DF38C063C13 1 10 00 1700000000 9 -\n[GNUPG:] NO_PUBKEY 4E619DF38C063C13\n", 2),
            (
                SignatureTests.status(signedAt: 1, expired: false).replacingOccurrences(
                    of: "\(SignatureTests.fpr)\n", with: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0
            ),
            (SignatureTests.status(signedAt: 1, expired: false), 1), // good status lines but a failing exit
            (SignatureTests.status(signedAt: 1, expired: true).replacingOccurrences(of: "[GNUPG:] KEYEXPIRED \(SignatureTests.expiry)\n", with: ""), 0),
            (SignatureTests.status(signedAt: 1, expired: false, extra: "[GNUPG:] REVKEYSIG 0946FCA2C105B9DE x\n"), 0),
        ]
        for (text, exit) in cases {
            #expect(throws: SignatureError.self, "\(text)") {
                try SignatureVerifier.evaluate(status: text, exitStatus: exit, pinned: SignatureTests.fpr, file: "x", packet: SignatureTests.packet)
            }
        }
        #expect(throws: SignatureError.wrongKey(file: "x", keyID: "4e619df38c063c13", pinned: SignatureTests.fpr)) {
            try SignatureVerifier.evaluate(status: cases[2].0, exitStatus: 2, pinned: SignatureTests.fpr, file: "x", packet: SignatureTests.packet)
        }
    }

    @Test func packetParsing() throws {
        #expect(throws: RPMError.self) { try SignaturePacket(parsing: [], file: "x") }
        #expect(throws: RPMError.self) { try SignaturePacket(parsing: [0x89, 0x01, 0x15], file: "x") }
        let p = SignatureTests.packet
        #expect(p.summary == "V3 RSA/SHA1, key id 0946fca2c105b9de, created 2013-11-24 19:33:30 UTC")
    }
}
