import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// A content checksum as repository metadata gives it (`<checksum type="sha256">…`).
/// The download cache is addressed by it, so two releases that ship the same
/// package bytes share one blob.
public struct Checksum: Hashable, Sendable, CustomStringConvertible {
    /// The algorithms old and new CentOS repositories use. createrepo on
    /// CentOS 5/early 6 wrote `sha` (= SHA-1); later ones `sha256`.
    public enum Kind: String, Sendable, CaseIterable {
        case sha256
        case sha1

        /// The hex length of a digest of this kind.
        public var hexLength: Int { self == .sha256 ? 64 : 40 }

        /// Parses the `type` attribute of repo metadata (`sha`, `sha1`, `sha256`), nil when unsupported.
        public init?(metadataName: String) {
            switch metadataName.lowercased() {
            case "sha256": self = .sha256
            case "sha", "sha1": self = .sha1
            default: return nil
            }
        }

        func makeHasher() -> ChecksumHasher {
            switch self {
            case .sha256: return ChecksumHasher(SHA256Engine())
            case .sha1: return ChecksumHasher(SHA1Engine())
            }
        }
    }

    public let kind: Kind
    /// Lower-case hex.
    public let hex: String

    /// Throws `FetchError.badChecksum` unless `hex` is a well-formed digest of `kind`.
    public init(_ kind: Kind, hex: String) throws {
        let lower = hex.lowercased()
        guard lower.count == kind.hexLength, lower.allSatisfy({ $0.isHexDigit }) else {
            throw FetchError.badChecksum(type: kind.rawValue, value: hex, reason: "expected \(kind.hexLength) hex digits")
        }
        self.kind = kind
        self.hex = lower
    }

    /// From repo metadata: `type="sha"` + value. Unknown types are an error naming them.
    public init(metadataType: String, value: String) throws {
        guard let kind = Kind(metadataName: metadataType) else {
            throw FetchError.badChecksum(type: metadataType, value: value, reason: "unsupported checksum type (supported: sha, sha1, sha256)")
        }
        try self.init(kind, hex: value.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// `sha256:ab12…`
    public var description: String { "\(kind.rawValue):\(hex)" }

    /// The checksum of bytes in memory.
    public static func of(_ data: Data, kind: Kind) -> Checksum {
        // Well-formed by construction.
        try! Checksum(kind, hex: hexString(data.withUnsafeBytes { digest($0, kind: kind) }))
    }

    /// The raw digest of bytes in memory: the host's libcrypto where it has one
    /// (C speed even in debug builds, where ours runs at ~5 MB/s), else ours.
    public static func digest(_ bytes: UnsafeRawBufferPointer, kind: Kind) -> [UInt8] {
        if let function = HostLibcrypto.function(kind) {
            var out = [UInt8](repeating: 0, count: kind.hexLength / 2)
            out.withUnsafeMutableBufferPointer { _ = function.call(bytes.baseAddress, bytes.count, $0.baseAddress) }
            return out
        }
        var hasher = kind.makeHasher()
        hasher.update(bytes)
        return hasher.finishBytes()
    }

    /// Whether in-memory digests are the host libcrypto's (for logs).
    public static var usesHostLibcrypto: Bool { HostLibcrypto.function(.sha256) != nil }

    /// Lower-case hex of raw digest bytes.
    public static func hexString(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The host tool that hashes files of this kind (coreutils, on every builder).
    public var tool: String { kind == .sha256 ? "sha256sum" : "sha1sum" }

    /// The checksum of a file, by the host's `sha256sum`/`sha1sum`.
    ///
    /// Why a host tool for files: our Swift SHA-256 runs at ~5 MB/s in debug
    /// builds (what the tests and CI run; `@_optimize(speed)` does not help
    /// at -Onone) and ~60–150 MB/s optimised, while coreutils hashes a
    /// package from the page cache at hundreds of MB/s. One extra read of a
    /// file just written costs little; a process per file is ~2 ms.
    public static func of(file path: String, kind: Kind) throws -> Checksum {
        let tool = kind == .sha256 ? "sha256sum" : "sha1sum"
        let result = ProcessRunner(log: nil).run(Command(tool, ["--", path]))
        try Interruption.shared.check()
        guard result.status == 0 else {
            if result.status == 127 { throw FetchError.tool(name: tool, reason: "not found on PATH (install coreutils)") }
            throw FetchError.io(path: path, reason: "\(tool) failed: \(result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let hex = String(result.stdoutText.prefix { !$0.isWhitespace }).trimmingCharacters(in: CharacterSet(charactersIn: "\\"))
        do {
            return try Checksum(kind, hex: hex)
        } catch {
            throw FetchError.io(path: path, reason: "\(tool) printed '\(result.stdoutText.prefix(100))'")
        }
    }
}

/// Incremental hashing of bytes in memory (small metadata, cache keys).
///
/// Why our own SHA-1/SHA-256: Foundation on Linux has no digests and the
/// package takes no dependencies; these are the textbook FIPS 180-4
/// algorithms (checked against `sha256sum`/`sha1sum` in the tests). Files
/// (packages) are hashed by the host tools instead, see `Checksum.of(file:kind:)`.
/// Checksums only guard transport integrity; authenticity is the signature check's job (gpgv).
public struct ChecksumHasher {
    private var engine: any HashEngine
    public let kind: Checksum.Kind

    init(_ engine: any HashEngine) {
        self.engine = engine
        self.kind = engine.kind
    }

    public init(kind: Checksum.Kind) { self = kind.makeHasher() }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { engine.update(UnsafeRawBufferPointer($0)) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) { engine.update(bytes) }

    public mutating func finish() -> Checksum {
        // Well-formed by construction.
        try! Checksum(kind, hex: Checksum.hexString(finishBytes()))
    }

    mutating func finishBytes() -> [UInt8] { engine.finish() }
}

/// The one-shot digest functions (`SHA256`, `SHA1`) of the host's libcrypto
/// (OpenSSL), opened at run time: a system library, no headers or link flags.
enum HostLibcrypto {
    typealias DigestFunction = @convention(c) (UnsafeRawPointer?, Int, UnsafeMutablePointer<UInt8>?) -> UnsafeMutablePointer<UInt8>?

    /// Sendable box for the C function pointer (it captures nothing).
    struct Function: @unchecked Sendable { let call: DigestFunction }

    static func function(_ kind: Checksum.Kind) -> Function? { kind == .sha256 ? sha256 : sha1 }

    static let sha256 = load("SHA256")
    static let sha1 = load("SHA1")

    static func load(_ symbol: String) -> Function? {
        for name in ["libcrypto.so.3", "libcrypto.so"] {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL), let found = dlsym(handle, symbol) else { continue }
            return Function(call: unsafeBitCast(found, to: DigestFunction.self))
        }
        return nil
    }
}

protocol HashEngine {
    var kind: Checksum.Kind { get }
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    mutating func finish() -> [UInt8]
}

/// Shared Merkle–Damgård buffering for the 64-byte-block hashes.
private struct BlockBuffer {
    var pending: [UInt8] = []
    var length: UInt64 = 0

    /// Feeds whole 64-byte blocks to `compress`, keeping the remainder.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ compress: (UnsafeRawBufferPointer) -> Void) {
        length &+= UInt64(bytes.count)
        var input = bytes
        if !pending.isEmpty {
            let take = min(64 - pending.count, input.count)
            pending.append(contentsOf: input.prefix(take))
            input = UnsafeRawBufferPointer(rebasing: input.dropFirst(take))
            if pending.count == 64 {
                pending.withUnsafeBytes { compress($0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let whole = input.count / 64 * 64
        if whole > 0 { compress(UnsafeRawBufferPointer(rebasing: input.prefix(whole))) }
        if whole < input.count { pending.append(contentsOf: input.dropFirst(whole)) }
    }

    /// The final padding: 0x80, zeros, the bit length big-endian.
    mutating func pad(_ compress: (UnsafeRawBufferPointer) -> Void) {
        let bits = length &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        tail.withUnsafeBytes { compress($0) }
    }
}

@inline(__always) private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
@inline(__always) private func rotl(_ x: UInt32, _ n: UInt32) -> UInt32 { (x << n) | (x >> (32 - n)) }
@inline(__always) private func loadBE(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
    UInt32(p[i]) << 24 | UInt32(p[i + 1]) << 16 | UInt32(p[i + 2]) << 8 | UInt32(p[i + 3])
}

struct SHA256Engine: HashEngine {
    var kind: Checksum.Kind { .sha256 }
    private var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    private var buffer = BlockBuffer()
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var state = h
        buffer.feed(bytes) { SHA256Engine.compress(&state, $0) }
        h = state
    }

    mutating func finish() -> [UInt8] {
        var state = h
        buffer.pad { SHA256Engine.compress(&state, $0) }
        return state.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * $0)) } }
    }

    /// Compresses whole 64-byte blocks. Optimised even in debug builds, so
    /// debug test runs still hash tens of MB/s.
    @_optimize(speed)
    static func compress(_ state: inout [UInt32], _ blocks: UnsafeRawBufferPointer) {
        var a0 = state[0], b0 = state[1], c0 = state[2], d0 = state[3]
        var e0 = state[4], f0 = state[5], g0 = state[6], h0 = state[7]
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            k.withUnsafeBufferPointer { k in
                var offset = 0
                while offset + 64 <= blocks.count {
                    for i in 0..<16 { w[i] = loadBE(blocks, offset + 4 * i) }
                    for i in 16..<64 {
                        let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
                        let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
                        w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
                    }
                    var a = a0, b = b0, c = c0, d = d0, e = e0, f = f0, g = g0, h = h0
                    for i in 0..<64 {
                        let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                        let ch = (e & f) ^ (~e & g)
                        let t1 = h &+ s1 &+ ch &+ k[i] &+ w[i]
                        let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                        let maj = (a & b) ^ (a & c) ^ (b & c)
                        let t2 = s0 &+ maj
                        h = g; g = f; f = e; e = d &+ t1
                        d = c; c = b; b = a; a = t1 &+ t2
                    }
                    a0 = a0 &+ a; b0 = b0 &+ b; c0 = c0 &+ c; d0 = d0 &+ d
                    e0 = e0 &+ e; f0 = f0 &+ f; g0 = g0 &+ g; h0 = h0 &+ h
                    offset += 64
                }
            }
        }
        state = [a0, b0, c0, d0, e0, f0, g0, h0]
    }
}

struct SHA1Engine: HashEngine {
    var kind: Checksum.Kind { .sha1 }
    private var h: [UInt32] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    private var buffer = BlockBuffer()

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var state = h
        buffer.feed(bytes) { SHA1Engine.compress(&state, $0) }
        h = state
    }

    mutating func finish() -> [UInt8] {
        var state = h
        buffer.pad { SHA1Engine.compress(&state, $0) }
        return state.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * $0)) } }
    }

    @_optimize(speed)
    static func compress(_ state: inout [UInt32], _ blocks: UnsafeRawBufferPointer) {
        var h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3], h4 = state[4]
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            var offset = 0
            while offset + 64 <= blocks.count {
                for i in 0..<16 { w[i] = loadBE(blocks, offset + 4 * i) }
                for i in 16..<80 { w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1) }
                var a = h0, b = h1, c = h2, d = h3, e = h4
                for i in 0..<80 {
                    let f: UInt32, k: UInt32
                    switch i {
                    case 0..<20: f = (b & c) | (~b & d); k = 0x5A827999
                    case 20..<40: f = b ^ c ^ d; k = 0x6ED9EBA1
                    case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC
                    default: f = b ^ c ^ d; k = 0xCA62C1D6
                    }
                    let t = rotl(a, 5) &+ f &+ e &+ k &+ w[i]
                    e = d; d = c; c = rotl(b, 30); b = a; a = t
                }
                h0 = h0 &+ a; h1 = h1 &+ b; h2 = h2 &+ c; h3 = h3 &+ d; h4 = h4 &+ e
                offset += 64
            }
        }
        state = [h0, h1, h2, h3, h4]
    }
}
