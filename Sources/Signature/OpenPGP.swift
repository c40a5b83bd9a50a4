import Foundation
import Host
import RPM

/// Just enough OpenPGP (RFC 4880) framing to DISPLAY signature packets and
/// find the pinned key's primary key packet. No cryptography here: gpgv does
/// every check that matters (see `SignatureVerifier`).
public enum OpenPGP {
    /// One packet: its tag and body.
    public struct Packet: Sendable {
        public var tag: Int
        public var body: [UInt8]
        /// The packet's bytes including its header (for writing a keyring).
        public var raw: [UInt8]
    }

    /// Splits binary OpenPGP data into packets; bounds-checked, partial lengths refused.
    public static func packets(_ data: [UInt8]) throws -> [Packet] {
        var out: [Packet] = []
        var p = 0
        while p < data.count {
            let start = p
            let b = data[p]
            guard b & 0x80 != 0 else { throw OpenPGPError.notAPacketHeader(offset: p, byte: b) }
            p += 1
            var tag: Int
            var length: Int
            if b & 0x40 != 0 {
                tag = Int(b & 0x3f)
                guard p < data.count else { throw OpenPGPError.headerCutShort }
                let o1 = Int(data[p]); p += 1
                if o1 < 192 {
                    length = o1
                } else if o1 < 224 {
                    guard p < data.count else { throw OpenPGPError.lengthCutShort }
                    length = ((o1 - 192) << 8) + Int(data[p]) + 192; p += 1
                } else if o1 == 255 {
                    guard p + 4 <= data.count else { throw OpenPGPError.lengthCutShort }
                    length = Int(be32(data, p)); p += 4
                } else {
                    throw OpenPGPError.partialLength
                }
            } else {
                tag = Int((b >> 2) & 0x0f)
                switch b & 3 {
                case 0: guard p + 1 <= data.count else { throw OpenPGPError.lengthCutShort }; length = Int(data[p]); p += 1
                case 1: guard p + 2 <= data.count else { throw OpenPGPError.lengthCutShort }; length = Int(data[p]) << 8 | Int(data[p + 1]); p += 2
                case 2: guard p + 4 <= data.count else { throw OpenPGPError.lengthCutShort }; length = Int(be32(data, p)); p += 4
                default: length = data.count - p // indeterminate: to the end
                }
            }
            guard length >= 0, p + length <= data.count else { throw OpenPGPError.pastEnd(tag: tag, length: length) }
            out.append(Packet(tag: tag, body: Array(data[p..<(p + length)]), raw: Array(data[start..<(p + length)])))
            p += length
        }
        return out
    }

    /// Decodes ASCII armor (each "-----BEGIN PGP ... -----" block: headers, base64 and
    /// the "=XXXX" CRC-24 line, which is checked) into binary. Every block is decoded
    /// and their packets concatenated: a vendor's key file may hold several keys (Red
    /// Hat's holds its release key and an auxiliary key). Binary input (first byte
    /// with bit 7 set) is returned as is.
    public static func dearmor(_ input: [UInt8]) throws -> [UInt8] {
        if let first = input.first, first & 0x80 != 0 { return input }
        let text = String(decoding: input, as: UTF8.self)
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard var begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN PGP") }) else {
            throw OpenPGPError.noArmor
        }
        var binary: [UInt8] = []
        while true {
            let (block, next) = try dearmorBlock(lines, from: begin)
            binary += block
            guard let following = lines[next...].firstIndex(where: { $0.hasPrefix("-----BEGIN PGP") }) else { return binary }
            begin = following
        }
    }

    /// One armored block starting at its BEGIN line: its bytes and the index after its END line.
    static func dearmorBlock(_ lines: [String], from begin: Int) throws -> ([UInt8], Int) {
        var i = begin + 1
        // Armor headers ("Version: ...") up to the first empty line.
        while i < lines.count, !lines[i].isEmpty {
            if !lines[i].contains(":") { break } // no headers at all: base64 starts right away
            i += 1
        }
        var base64 = ""
        var crc: String?
        while i < lines.count {
            let line = lines[i]
            i += 1
            if line.isEmpty { continue }
            if line.hasPrefix("-----END PGP") { break }
            if line.hasPrefix("=") && line.count == 5 { crc = String(line.dropFirst()); continue }
            base64 += line
        }
        guard let data = Data(base64Encoded: base64), !data.isEmpty else { throw OpenPGPError.badBase64 }
        let bytes = [UInt8](data)
        if let crc {
            guard let want = Data(base64Encoded: crc), want.count == 3 else { throw OpenPGPError.badChecksumLine }
            let got = crc24(bytes)
            guard [UInt8(got >> 16 & 0xff), UInt8(got >> 8 & 0xff), UInt8(got & 0xff)] == [UInt8](want) else {
                throw OpenPGPError.checksumMismatch
            }
        }
        return (bytes, i)
    }

    /// RFC 4880 6.1 (an integrity check of the transport encoding, not cryptography).
    static func crc24(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xB704CE
        for b in bytes {
            crc ^= UInt32(b) << 16
            for _ in 0..<8 {
                crc <<= 1
                if crc & 0x1000000 != 0 { crc ^= 0x1864CFB }
            }
        }
        return crc & 0xFFFFFF
    }

    public static func publicKeyAlgorithm(_ id: Int) -> String {
        switch id {
        case 1, 2, 3: return "RSA"
        case 16: return "Elgamal"
        case 17: return "DSA"
        case 18: return "ECDH"
        case 19: return "ECDSA"
        case 22: return "EdDSA"
        default: return "algo\(id)"
        }
    }

    public static func hashAlgorithm(_ id: Int) -> String {
        switch id {
        case 1: return "MD5"
        case 2: return "SHA1"
        case 3: return "RIPEMD160"
        case 8: return "SHA256"
        case 9: return "SHA384"
        case 10: return "SHA512"
        case 11: return "SHA224"
        default: return "hash\(id)"
        }
    }
}

/// Why bytes are not the OpenPGP packets or ASCII armor they should be.
public enum OpenPGPError: ToolError, Equatable {
    case notAPacketHeader(offset: Int, byte: UInt8)
    case headerCutShort
    case lengthCutShort
    case partialLength
    case pastEnd(tag: Int, length: Int)
    case noArmor
    case badBase64
    case badChecksumLine
    case checksumMismatch

    public var failure: String {
        switch self {
        case let .notAPacketHeader(offset, byte): return "byte \(offset) is not a packet header (0x\(String(byte, radix: 16)))"
        case .headerCutShort: return "packet header cut short"
        case .lengthCutShort: return "packet length cut short"
        case .partialLength: return "partial-length packets are not supported"
        case let .pastEnd(tag, length): return "packet (tag \(tag)) of \(length) bytes runs past the end of the data"
        case .noArmor: return "no '-----BEGIN PGP' armor line"
        case .badBase64: return "the armored block is not valid base64"
        case .badChecksumLine: return "bad armor checksum line"
        case .checksumMismatch: return "armor checksum (CRC-24) mismatch"
        }
    }
    public var reason: String? {
        if case .checksumMismatch = self { return "the key file is damaged" }
        return nil
    }
}

/// A signature packet (V3 or V4), for display and for naming the signing key
/// in errors. Nothing here is trusted: gpgv checks the signature itself.
public struct SignaturePacket: Sendable, Equatable {
    public var version: Int
    public var signatureType: Int
    public var publicKeyAlgorithm: Int
    public var hashAlgorithm: Int
    /// 16 hex digits, lower case; nil if a V4 packet names no issuer.
    public var keyID: String?
    /// Seconds since the epoch.
    public var creationTime: Int?

    public init(parsing bytes: [UInt8], file: String) throws {
        let packets: [OpenPGP.Packet]
        do { packets = try OpenPGP.packets(bytes) } catch {
            throw RPMError.malformed(file: file, reason: "signature is not an OpenPGP packet: \(error)")
        }
        guard let packet = packets.first, packet.tag == 2 else {
            throw RPMError.malformed(file: file, reason: "signature tag holds no OpenPGP signature packet")
        }
        let b = packet.body
        func need(_ n: Int) throws { guard b.count >= n else { throw RPMError.malformed(file: file, reason: "signature packet cut short") } }
        try need(1)
        version = Int(b[0])
        switch version {
        case 2, 3:
            // version, hashed length (5), type, time(4), key id(8), pk algo, hash algo, left16
            try need(19)
            signatureType = Int(b[2])
            creationTime = Int(be32(b, 3))
            keyID = hex(Array(b[7..<15]))
            publicKeyAlgorithm = Int(b[15])
            hashAlgorithm = Int(b[16])
        case 4, 5:
            try need(6)
            signatureType = Int(b[1])
            publicKeyAlgorithm = Int(b[2])
            hashAlgorithm = Int(b[3])
            let hashedLength = Int(b[4]) << 8 | Int(b[5])
            try need(6 + hashedLength + 2)
            let hashed = Array(b[6..<(6 + hashedLength)])
            let unhashedLength = Int(b[6 + hashedLength]) << 8 | Int(b[7 + hashedLength])
            try need(8 + hashedLength + unhashedLength)
            let unhashed = Array(b[(8 + hashedLength)..<(8 + hashedLength + unhashedLength)])
            keyID = nil
            creationTime = nil
            for (type, data) in try SignaturePacket.subpackets(hashed, file: file) + SignaturePacket.subpackets(unhashed, file: file) {
                switch type {
                case 2 where data.count == 4: creationTime = creationTime ?? Int(be32(data, 0))
                case 16 where data.count == 8: keyID = keyID ?? hex(data)
                case 33 where data.count >= 9: keyID = keyID ?? hex(Array(data.suffix(8)))
                default: break
                }
            }
        default:
            throw RPMError.malformed(file: file, reason: "unsupported OpenPGP signature version \(version)")
        }
    }

    static func subpackets(_ area: [UInt8], file: String) throws -> [(Int, [UInt8])] {
        var out: [(Int, [UInt8])] = []
        var p = 0
        while p < area.count {
            let o1 = Int(area[p]); p += 1
            var len: Int
            if o1 < 192 {
                len = o1
            } else if o1 < 255 {
                guard p < area.count else { throw RPMError.malformed(file: file, reason: "signature subpacket cut short") }
                len = ((o1 - 192) << 8) + Int(area[p]) + 192; p += 1
            } else {
                guard p + 4 <= area.count else { throw RPMError.malformed(file: file, reason: "signature subpacket cut short") }
                len = Int(be32(area, p)); p += 4
            }
            guard len >= 1, p + len <= area.count else { throw RPMError.malformed(file: file, reason: "signature subpacket runs past its area") }
            out.append((Int(area[p] & 0x7f), Array(area[(p + 1)..<(p + len)])))
            p += len
        }
        return out
    }

    /// "V3 RSA/SHA1, key id 0946fca2c105b9de, created 2013-11-24 19:33:30 UTC" (like rpm -qi's Signature line).
    public var summary: String {
        var s = "V\(version) \(OpenPGP.publicKeyAlgorithm(publicKeyAlgorithm))/\(OpenPGP.hashAlgorithm(hashAlgorithm))"
        if let keyID { s += ", key id \(keyID)" }
        if let creationTime { s += ", created \(formatUTC(creationTime))" }
        return s
    }
}

func formatUTC(_ seconds: Int) -> String {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
    return f.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
}

/// Lower-case hex of bytes (key ids).
func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

extension RPMFile {
    /// The OpenPGP packet of a signature tag, parsed for display (nil when absent).
    public func signaturePacket(_ tag: Int32) throws -> SignaturePacket? {
        guard let bytes = signature.binary(tag) else { return nil }
        return try SignaturePacket(parsing: bytes, file: path)
    }
}
