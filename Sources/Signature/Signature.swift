import Foundation
import Fetch
import Host
import RPM
#if canImport(Glibc)
    import Glibc
#endif

/// The key packages must be signed by: the embedded CentOS 6 key, or the
/// file(s) given with `--gpg-key`. Holds the binary keyring gpgv reads and the
/// primary keys' fingerprints, one of which gpgv's VALIDSIG line must name.
public struct PinnedKey: Sendable {
    /// Binary OpenPGP (dearmored) key material, written as gpgv's keyring.
    public let keyring: [UInt8]
    /// 40 upper-case hex digits of the first primary key's V4 fingerprint (the one messages name).
    public var fingerprint: String { fingerprints[0] }
    /// Every primary key's fingerprint, in file order: a vendor's key file may hold
    /// several (Red Hat's release key file holds release key 2 and an auxiliary key).
    public let fingerprints: [String]
    /// Where it came from, for messages ("embedded CentOS 6 key" or a path).
    public let source: String
    /// The low 64 bits of the fingerprint, lower-case (what signature packets name).
    public var keyID: String { String(fingerprint.suffix(16)).lowercased() }

    /// Reads armored or binary public keys. A fingerprint is SHA-1 over the
    /// primary key packet (RFC 4880 12.2).
    public init(bytes: [UInt8], source: String) throws {
        let binary: [UInt8]
        let packets: [OpenPGP.Packet]
        do {
            binary = try OpenPGP.dearmor(bytes)
            packets = try OpenPGP.packets(binary)
        } catch {
            throw SignatureError.badKey(path: source, reason: "\(error)")
        }
        guard let first = packets.first, first.tag == 6 else {
            throw SignatureError.badKey(path: source, reason: "it does not start with a public key packet (a private key or a signature?)")
        }
        let primaries = packets.filter { $0.tag == 6 }
        guard primaries.allSatisfy({ $0.body.first == 4 }) else {
            let version = primaries.first { $0.body.first != 4 }?.body.first ?? 0
            throw SignatureError.badKey(path: source, reason: "version \(version) keys are not supported (only V4)")
        }
        self.keyring = binary
        self.fingerprints = primaries.map { primary in
            let framed = [0x99, UInt8(primary.body.count >> 8 & 0xff), UInt8(primary.body.count & 0xff)] + primary.body
            return Checksum.of(Data(framed), kind: .sha1).hex.uppercased()
        }
        self.source = source
    }

    /// Several key files as one keyring: a package is accepted when any of their keys signed it.
    public init(combining keys: [PinnedKey]) throws {
        guard let first = keys.first else { throw SignatureError.badKey(path: "", reason: "no key given") }
        self.keyring = keys.flatMap(\.keyring)
        self.fingerprints = keys.flatMap(\.fingerprints)
        self.source = keys.count == 1 ? first.source : keys.map(\.source).joined(separator: " + ")
    }

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SignatureError.badKey(path: path, reason: "cannot read it")
        }
        try self.init(bytes: [UInt8](data), source: path)
    }

    /// The real CentOS 6 signing key, embedded in the binary (fingerprint C1DA C52D 1664 E8A4 386D BA43 0946 FCA2 C105 B9DE).
    public static func embeddedCentOS6() throws -> PinnedKey {
        try PinnedKey(bytes: Array(embeddedCentOS6KeyArmored.utf8), source: "embedded CentOS 6 key")
    }

    public static let centOS6Fingerprint = "C1DAC52D1664E8A4386DBA430946FCA2C105B9DE"
}

/// What a successful verification established.
public struct VerificationReport: Sendable {
    /// "SIGPGP (header+payload)", "RSAHEADER (header) + PAYLOADDIGEST sha256 (payload)", ...
    public var method: String
    public var packet: SignaturePacket
    /// Signature creation time as gpgv read it.
    public var signedAt: Int
    /// Set when the key has expired (the signature was made before this moment).
    public var keyExpiredAt: Int?
    /// False only for `allowHeaderOnly` checks of a file whose payload is missing.
    public var payloadVerified: Bool
}

/// The verification install does before a byte of a package is unpacked:
/// the package's OpenPGP signature, checked by gpgv against the pinned key
/// only. There is no switch that turns it off.
///
/// Which signature:
/// - SIGPGP (1002) / SIGGPG (1005) cover header AND payload (every CentOS 6
///   package has SIGPGP): preferred.
/// - RSAHEADER (268) / DSAHEADER (267) cover only the main header. The
///   payload is then covered through a digest that lives INSIDE the signed
///   header: PAYLOADDIGEST (5092, sha256 of the compressed payload, rpm >=
///   4.14), which we recompute. The MD5 (1004) and SHA1HEADER digests live in
///   the UNSIGNED signature header, so anyone who alters the payload can
///   recompute them: they protect against corruption, not tampering, and a
///   package whose only payload protection is that MD5 is refused (never seen
///   in practice: packages of that age all carry SIGPGP).
public struct SignatureVerifier: Sendable {
    public let key: PinnedKey
    public let log: Log?
    public init(key: PinnedKey, log: Log? = nil) { self.key = key; self.log = log }

    /// Verifies `rpm` (read from its path). Throws a named `SignatureError` (or `RPMError` for a broken file) unless it is good.
    /// - Parameter allowHeaderOnly: `rpm verify` on a header-only file: check the header
    ///   signature and report `payloadVerified == false` instead of failing on the missing payload.
    public func verify(_ rpm: RPMFile, allowHeaderOnly: Bool = false) throws -> VerificationReport {
        let file = rpm.path
        let wholeTags = [SigTag.pgp, SigTag.gpg].filter { rpm.signature.has($0) }
        let headerTags = [SigTag.rsaHeader, SigTag.dsaHeader].filter { rpm.signature.has($0) }
        guard !wholeTags.isEmpty || !headerTags.isEmpty else { throw SignatureError.unsigned(file: file) }

        var payloadPresent = true
        do { try rpm.checkPayloadPresent() } catch {
            guard allowHeaderOnly, !headerTags.isEmpty else { throw error }
            payloadPresent = false
        }

        if payloadPresent, let tag = wholeTags.first {
            let bytes = rpm.signature.binary(tag)!
            let packet = try SignaturePacket(parsing: bytes, file: file)
            let (signedAt, expired) = try runGPGV(
                signature: bytes, dataFile: file, offset: rpm.header.range.lowerBound, dataBytes: nil, file: file, packet: packet)
            return VerificationReport(
                method: "\(tag == SigTag.pgp ? "SIGPGP" : "SIGGPG") over header+payload", packet: packet, signedAt: signedAt, keyExpiredAt: expired,
                payloadVerified: true)
        }

        guard let tag = headerTags.first else { throw SignatureError.unsigned(file: file) }
        let bytes = rpm.signature.binary(tag)!
        let packet = try SignaturePacket(parsing: bytes, file: file)
        let headerBytes = try FileSource(path: file).read(at: rpm.header.range.lowerBound, count: rpm.header.range.count)
        guard headerBytes.count == rpm.header.range.count else { throw RPMError.truncated(file: file, reason: "header changed while reading it") }
        let (signedAt, expired) = try runGPGV(signature: bytes, dataFile: nil, offset: 0, dataBytes: headerBytes, file: file, packet: packet)
        let name = tag == SigTag.rsaHeader ? "RSAHEADER" : "DSAHEADER"
        guard payloadPresent else {
            return VerificationReport(
                method: "\(name) over the header (payload missing: not verified)", packet: packet, signedAt: signedAt, keyExpiredAt: expired,
                payloadVerified: false)
        }
        // The header is authentic; now the payload through the digest the signed header carries.
        guard let (algorithm, want) = rpm.payloadDigest else {
            throw SignatureError.badSignature(
                file: file, reason: "only the header is signed (\(name)) and the header carries no PAYLOADDIGEST, so nothing signed covers the payload")
        }
        let tool: String
        switch algorithm {
        case 8: tool = "sha256sum"
        case 2: tool = "sha1sum"
        case 10: tool = "sha512sum"
        default: throw SignatureError.badSignature(file: file, reason: "PAYLOADDIGEST uses unsupported hash algorithm \(algorithm)")
        }
        let got = try HostPipe.digest(tool, file: file, offset: rpm.payloadOffset, log: log)
        guard got == want.lowercased() else {
            throw SignatureError.digestMismatch(file: file, what: "payload digest (\(tool.dropLast(3)))", expected: want.lowercased(), actual: got)
        }
        return VerificationReport(
            method: "\(name) over the header + PAYLOADDIGEST \(tool.dropLast(3)) over the payload", packet: packet, signedAt: signedAt, keyExpiredAt: expired,
            payloadVerified: true)
    }

    /// Writes the keyring and the detached signature in a private temporary
    /// directory and runs `gpgv --status-fd 1`; data from a file (at `offset`, to its end) or from bytes.
    func runGPGV(signature: [UInt8], dataFile: String?, offset: Int, dataBytes: [UInt8]?, file: String, packet: SignaturePacket) throws -> (Int, Int?) {
        let dir = try TemporaryDirectory.make("gpgv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keyring = dir + "/pinned.gpg", sig = dir + "/package.sig"
        try Data(key.keyring).write(to: URL(fileURLWithPath: keyring))
        try Data(signature).write(to: URL(fileURLWithPath: sig))
        var input = dataFile
        var inputOffset = offset
        if let dataBytes {
            input = dir + "/signed.data"
            inputOffset = 0
            try Data(dataBytes).write(to: URL(fileURLWithPath: input!))
        }
        let command = Command("gpgv", ["--homedir", dir, "--keyring", keyring, "--status-fd", "1", sig, "-"])
        let (outcome, out) = try HostPipe.collect(command, inputFile: input, offset: inputOffset, log: log)
        if outcome.status == 127 || (outcome.status == 2 && out.isEmpty) {
            throw RPMError.tool(name: "gpgv", reason: "exit \(outcome.status): \(outcome.standardError)")
        }
        return try SignatureVerifier.evaluate(
            status: String(decoding: out, as: UTF8.self), exitStatus: outcome.status,
            pinned: key.fingerprints, file: file, packet: packet)
    }

    /// Decides from gpgv's status lines (pure, unit-tested). Accepts only:
    /// a VALIDSIG whose primary-key fingerprint is the pinned one, with GOODSIG
    /// or EXPKEYSIG, exit status 0, and — when the key has expired
    /// (KEYEXPIRED <time>) — a signature creation time BEFORE the expiry:
    /// the real CentOS 6 key expired on 2021-06-30, yet everything it signed
    /// while valid stays valid. Returns (signature time, key expiry).
    public static func evaluate(status: String, exitStatus: Int32, pinned: String, file: String, packet: SignaturePacket) throws -> (Int, Int?) {
        try evaluate(status: status, exitStatus: exitStatus, pinned: [pinned], file: file, packet: packet)
    }

    /// The same for a keyring of several pinned keys: VALIDSIG must name one of them.
    public static func evaluate(status: String, exitStatus: Int32, pinned keys: [String], file: String, packet: SignaturePacket) throws -> (Int, Int?) {
        let pinned = keys.joined(separator: ", ")
        var lines: [String: [String]] = [:]
        var keyExpired: Int?
        for raw in status.split(separator: "\n") {
            let words = raw.split(separator: " ").map(String.init)
            guard words.count >= 2, words[0] == "[GNUPG:]" else { continue }
            let keyword = words[1]
            if keyword == "KEYEXPIRED", words.count >= 3, let t = Int(words[2]) {
                // Several may appear (one per key considered); the primary's is the one that matters, take the latest.
                keyExpired = max(keyExpired ?? 0, t)
            }
            if lines[keyword] == nil { lines[keyword] = Array(words.dropFirst(2)) }
        }
        let signer = packet.keyID ?? "unknown"
        if let bad = lines["BADSIG"] {
            throw SignatureError.badSignature(file: file, reason: "gpgv: BAD signature from key \(bad.first ?? signer)")
        }
        if let err = lines["ERRSIG"] {
            if lines["NO_PUBKEY"] != nil || (err.count > 5 && err[5] == "9") {
                throw SignatureError.wrongKey(file: file, keyID: (err.first ?? signer).lowercased(), pinned: pinned)
            }
            throw SignatureError.badSignature(file: file, reason: "gpgv could not check it (ERRSIG \(err.joined(separator: " ")))")
        }
        if lines["REVKEYSIG"] != nil { throw SignatureError.badSignature(file: file, reason: "the key was revoked") }
        if lines["EXPSIG"] != nil { throw SignatureError.badSignature(file: file, reason: "the signature itself has expired") }
        guard let valid = lines["VALIDSIG"], valid.count >= 3 else {
            throw SignatureError.badSignature(file: file, reason: "gpgv reported no valid signature (exit \(exitStatus))")
        }
        let primary = (valid.count >= 10 ? valid[9] : valid[0]).uppercased()
        guard keys.contains(where: { $0.uppercased() == primary }) else {
            throw SignatureError.wrongKey(file: file, keyID: primary, pinned: pinned)
        }
        guard let signedAt = Int(valid[2]) else { throw SignatureError.badSignature(file: file, reason: "unreadable VALIDSIG line") }
        if lines["GOODSIG"] == nil {
            guard lines["EXPKEYSIG"] != nil else { throw SignatureError.badSignature(file: file, reason: "gpgv reported neither GOODSIG nor EXPKEYSIG") }
            guard let expiry = keyExpired else {
                throw SignatureError.badSignature(file: file, reason: "the key has expired and gpgv did not say when (no KEYEXPIRED line)")
            }
            guard signedAt < expiry else {
                throw SignatureError.badSignature(file: file, reason: "signature made \(formatUTC(signedAt)), after the key expired (\(formatUTC(expiry)))")
            }
        }
        guard exitStatus == 0 else { throw SignatureError.badSignature(file: file, reason: "gpgv exited \(exitStatus)") }
        return (signedAt, keyExpired)
    }
}
