// AWS Signature Version 4 for the one call we make over HTTP ourselves
// (PutSnapshotBlock, EBSBlockClient.swift), as pure functions: the canonical
// request, the string to sign, the signing key, the Authorization header.
// Checked against AWS's published test-suite vectors (Tests/AMITests/SigV4Vectors)
// and against botocore's SigV4Auth on the same request (Tests/AMITests/SigV4Tests.swift).
// The SHA-256 is libcrypto's when the host has it (Checksum.digest): a 512 KiB
// block is hashed at C speed even in a debug build.
import Fetch
import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// SHA-256 for the upload and the signer: `Checksum.digest` (the host's libcrypto
/// where it has one, else the tool's own Swift SHA-256), plus HMAC-SHA256.
public enum FastSHA256 {
    /// What hashes the blocks, for the log: libcrypto or the fallback.
    public static var implementation: String {
        Checksum.usesHostLibcrypto ? "libcrypto (OpenSSL)" : "the built-in Swift SHA-256 (libcrypto.so.3 not found; slow in debug builds: install libssl3)"
    }

    public static func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] { Checksum.digest(bytes, kind: .sha256) }
    public static func digest(_ data: Data) -> [UInt8] { data.withUnsafeBytes { digest($0) } }
    public static func digest(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { digest($0) } }
    public static func hex(_ data: Data) -> String { hexString(digest(data)) }
    public static func hexString(_ bytes: [UInt8]) -> String { Checksum.hexString(bytes) }

    /// HMAC-SHA256 (RFC 2104) over short inputs: SigV4's key derivation and signature.
    public static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        let blockSize = 64
        var k = key.count > blockSize ? digest(key) : key
        k += [UInt8](repeating: 0, count: blockSize - k.count)
        let inner = digest(k.map { $0 ^ 0x36 } + message)
        return digest(k.map { $0 ^ 0x5c } + inner)
    }
}

/// AWS credentials (an access key, its secret, a session token for temporary ones).
/// `description` never shows the secret or the token: they may not reach a log.
public struct AWSCredentials: Equatable, Sendable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When temporary credentials stop working (refreshed before then); nil: they do not expire.
    public var expiration: Date?
    /// Where they came from, for the log: `environment`, `profile 'x' (~/.aws/credentials)`, `instance role 'r'`.
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil, source: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken.flatMap { $0.isEmpty ? nil : $0 }
        self.expiration = expiration
        self.source = source
    }

    public var description: String {
        "credentials from \(source)" + (expiration.map { " (expires \(UTCTime.string($0, format: "yyyy-MM-dd'T'HH:mm:ss'Z'")))" } ?? "")
    }
}

/// Signature Version 4, header form (`Authorization: AWS4-HMAC-SHA256 ...`).
public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a request whose body is not signed (botocore's `UNSIGNED_PAYLOAD`).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// `20150830T123600Z`
    public static func timestamp(_ date: Date) -> String { UTCTime.string(date, format: "yyyyMMdd'T'HHmmss'Z'") }

    /// A header value as it is signed: trimmed, runs of white space as one space (botocore's `_header_value`).
    public static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` when `keepSlash`).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if (byte < 0x80 && (c.isLetter || c.isNumber)) || "-_.~".contains(c) || (keepSlash && c == "/") {
                out.append(c)
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// `a=1&B=2` sorted by key then value, each part as given (already encoded, as in a URL).
    public static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// The canonical request. `headers` are the signed ones (any case; several values of a name joined by `,`).
    public static func canonicalRequest(method: String, path: String, query: String, headers: [(String, String)], payloadHash: String) -> String {
        let (canonical, signed) = canonicalHeaders(headers)
        return [
            method.uppercased(), uriEncode(path.isEmpty ? "/" : path, keepSlash: true), canonicalQuery(query),
            canonical + "\n", signed, payloadHash,
        ].joined(separator: "\n")
    }

    /// (`name:value` lines sorted by name, `name;name`).
    public static func canonicalHeaders(_ headers: [(String, String)]) -> (String, String) {
        var byName: [String: [String]] = [:]
        for (name, value) in headers { byName[name.lowercased(), default: []].append(trimmed(value)) }
        let names = byName.keys.sorted()
        return (names.map { "\($0):\(byName[$0]!.joined(separator: ","))" }.joined(separator: "\n"), names.joined(separator: ";"))
    }

    /// `DATE/REGION/SERVICE/aws4_request`
    public static func scope(timestamp: String, region: String, service: String) -> String {
        "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request"
    }

    public static func stringToSign(timestamp: String, scope: String, canonicalRequest: String) -> String {
        [algorithm, timestamp, scope, FastSHA256.hex(Data(canonicalRequest.utf8))].joined(separator: "\n")
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    public static func signingKey(secret: String, date: String, region: String, service: String) -> [UInt8] {
        var key = Array(("AWS4" + secret).utf8)
        for part in [date, region, service, "aws4_request"] { key = FastSHA256.hmac(key: key, Array(part.utf8)) }
        return key
    }

    public static func signature(secret: String, timestamp: String, region: String, service: String, stringToSign: String) -> String {
        let key = signingKey(secret: secret, date: String(timestamp.prefix(8)), region: region, service: service)
        return FastSHA256.hexString(FastSHA256.hmac(key: key, Array(stringToSign.utf8)))
    }

    /// What signing adds to a request: `X-Amz-Date`, `X-Amz-Security-Token` (temporary credentials)
    /// and `Authorization`. Every header in `headers` plus those two is signed; `host` must be among them.
    public static func sign(
        method: String, path: String, query: String = "", headers: [(String, String)], payloadHash: String,
        credentials: AWSCredentials, region: String, service: String, date: Date
    ) -> [(String, String)] {
        let stamp = timestamp(date)
        var added = [("X-Amz-Date", stamp)]
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        let all = headers + added
        let canonical = canonicalRequest(method: method, path: path, query: query, headers: all, payloadHash: payloadHash)
        let scope = scope(timestamp: stamp, region: region, service: service)
        let signature = signature(
            secret: credentials.secretAccessKey, timestamp: stamp, region: region, service: service,
            stringToSign: stringToSign(timestamp: stamp, scope: scope, canonicalRequest: canonical))
        let signed = canonicalHeaders(all).1
        return added + [("Authorization", "\(algorithm) Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signed), Signature=\(signature)")]
    }
}
