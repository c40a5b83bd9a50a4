import Foundation
import Host

/// gzip (RFC 1952) and DEFLATE (RFC 1951) decoding in Swift, so an initramfs
/// can be read without host tools (and without root) by `BootVerdict`.
public enum Gzip {
    /// Why a stream is not gzip/DEFLATE we can decode (or decodes to too much).
    public enum Failure: ToolError, Equatable {
        case notGzip
        case notDeflate(method: UInt8)
        case truncatedHeader
        /// The output would pass the caller's limit: a corrupt or hostile input (a gzip bomb).
        case tooLarge(limit: Int)
        case truncatedStream
        case badHuffmanCode
        case badBlockType
        case truncatedStoredBlock
        case storedLengthMismatch
        case repeatWithoutLength
        case tooManyCodeLengths
        case badLengthSymbol
        case badDistanceSymbol
        case distanceTooFar

        public var failure: String {
            switch self {
            case .notGzip: return "not gzip data"
            case let .notDeflate(method): return "gzip member with compression method \(method), not deflate"
            case .truncatedHeader: return "truncated gzip header"
            case let .tooLarge(limit): return "the data decompresses to more than \(limit) bytes"
            case .truncatedStream: return "truncated deflate stream"
            case .badHuffmanCode: return "bad Huffman code in deflate stream"
            case .badBlockType: return "invalid deflate block type"
            case .truncatedStoredBlock: return "truncated stored block"
            case .storedLengthMismatch: return "stored block length check failed"
            case .repeatWithoutLength: return "repeat with no previous length"
            case .tooManyCodeLengths: return "too many code lengths"
            case .badLengthSymbol: return "bad length symbol"
            case .badDistanceSymbol: return "bad distance symbol"
            case .distanceTooFar: return "distance too far back"
            }
        }
        public var remedy: String? {
            if case .tooLarge = self { return "refused (corrupt or hostile: a gzip bomb)" }
            return nil
        }
    }

    /// Whether `data` starts with the gzip magic number.
    public static func isGzip(_ data: [UInt8]) -> Bool { data.count >= 2 && data[0] == 0x1f && data[1] == 0x8b }

    /// Every member of a gzip stream, concatenated (as `gzip -dc` does).
    /// Refuses (`Failure`) as soon as the output would pass `limit` bytes, so a
    /// small hostile input (a gzip bomb) cannot take memory beyond it.
    public static func decompress(_ data: [UInt8], limit: Int = Int.max) throws -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        while offset < data.count {
            // Padding zeros after the last member (some writers add them) end the stream.
            if data[offset...].allSatisfy({ $0 == 0 }) { break }
            guard data.count - offset >= 18, data[offset] == 0x1f, data[offset + 1] == 0x8b else {
                if out.isEmpty { throw Failure.notGzip }
                break
            }
            guard data[offset + 2] == 8 else { throw Failure.notDeflate(method: data[offset + 2]) }
            let flags = data[offset + 3]
            var p = offset + 10
            if flags & 0x04 != 0 { // FEXTRA
                guard p + 2 <= data.count else { throw Failure.truncatedHeader }
                p += 2 + Int(data[p]) | Int(data[p + 1]) << 8
            }
            for flag in [UInt8(0x08), 0x10] where flags & flag != 0 { // FNAME, FCOMMENT: zero-terminated
                while p < data.count && data[p] != 0 { p += 1 }
                p += 1
            }
            if flags & 0x02 != 0 { p += 2 } // FHCRC
            guard p <= data.count else { throw Failure.truncatedHeader }
            var inflater = Inflater(data, start: p, limit: limit)
            try inflater.run(into: &out)
            offset = inflater.byteOffset + 8 // CRC32 and ISIZE
        }
        return out
    }
}

/// A DEFLATE decoder over a byte array, LSB-first bit reader.
struct Inflater {
    let data: [UInt8]
    var pos: Int
    var bitBuffer: UInt32 = 0
    var bitCount = 0
    /// The most output bytes allowed (`Gzip.decompress`'s limit).
    let limit: Int

    init(_ data: [UInt8], start: Int, limit: Int = Int.max) {
        self.data = data
        self.pos = start
        self.limit = limit
    }

    /// Throws when `count` more bytes would take `out` past the limit.
    @inline(__always) func room(_ out: [UInt8], _ count: Int) throws {
        if out.count > limit - count { throw Gzip.Failure.tooLarge(limit: limit) }
    }

    /// The first byte after the last block (the partial byte of the final block counts as read).
    var byteOffset: Int { pos - bitCount / 8 }

    mutating func bits(_ n: Int) throws -> Int {
        while bitCount < n {
            guard pos < data.count else { throw Gzip.Failure.truncatedStream }
            bitBuffer |= UInt32(data[pos]) << UInt32(bitCount)
            pos += 1
            bitCount += 8
        }
        let value = Int(bitBuffer & ((1 << UInt32(n)) - 1))
        bitBuffer >>= UInt32(n)
        bitCount -= n
        return value
    }

    /// Canonical Huffman code: counts per length and symbols in code order.
    struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int]

        init(lengths: [Int]) throws {
            symbols = [Int](repeating: 0, count: lengths.count)
            for l in lengths { counts[l] += 1 }
            counts[0] = 0
            var offsets = [Int](repeating: 0, count: 16)
            for i in 1..<16 { offsets[i] = offsets[i - 1] + counts[i - 1] }
            for (symbol, l) in lengths.enumerated() where l != 0 {
                symbols[offsets[l]] = symbol
                offsets[l] += 1
            }
        }
    }

    mutating func decode(_ h: Huffman) throws -> Int {
        var code = 0, first = 0, index = 0
        for length in 1..<16 {
            code |= try bits(1)
            let count = h.counts[length]
            if code - count < first { return h.symbols[index + (code - first)] }
            index += count
            first += count
            first <<= 1
            code <<= 1
        }
        throw Gzip.Failure.badHuffmanCode
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distBase = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
        4097, 6145, 8193, 12289, 16385, 24577,
    ]
    static let distExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    static let fixed: (Huffman, Huffman) = {
        var lengths = [Int](repeating: 8, count: 288)
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        return (try! Huffman(lengths: lengths), try! Huffman(lengths: [Int](repeating: 5, count: 30)))
    }()

    mutating func run(into out: inout [UInt8]) throws {
        var final = 0
        repeat {
            final = try bits(1)
            switch try bits(2) {
            case 0: try stored(into: &out)
            case 1: try codes(Self.fixed.0, Self.fixed.1, into: &out)
            case 2:
                let (lit, dist) = try dynamicTables()
                try codes(lit, dist, into: &out)
            default: throw Gzip.Failure.badBlockType
            }
        } while final == 0
    }

    mutating func stored(into out: inout [UInt8]) throws {
        bitBuffer = 0
        pos -= bitCount / 8
        bitCount = 0
        guard pos + 4 <= data.count else { throw Gzip.Failure.truncatedStoredBlock }
        let len = Int(data[pos]) | Int(data[pos + 1]) << 8
        let nlen = Int(data[pos + 2]) | Int(data[pos + 3]) << 8
        guard len == (~nlen & 0xffff) else { throw Gzip.Failure.storedLengthMismatch }
        pos += 4
        guard pos + len <= data.count else { throw Gzip.Failure.truncatedStoredBlock }
        try room(out, len)
        out.append(contentsOf: data[pos..<(pos + len)])
        pos += len
    }

    mutating func dynamicTables() throws -> (Huffman, Huffman) {
        let nlen = try bits(5) + 257, ndist = try bits(5) + 1, ncode = try bits(4) + 4
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var codeLengths = [Int](repeating: 0, count: 19)
        for i in 0..<ncode { codeLengths[order[i]] = try bits(3) }
        let codeCode = try Huffman(lengths: codeLengths)
        var lengths: [Int] = []
        while lengths.count < nlen + ndist {
            let symbol = try decode(codeCode)
            switch symbol {
            case 0..<16: lengths.append(symbol)
            case 16:
                guard let last = lengths.last else { throw Gzip.Failure.repeatWithoutLength }
                lengths += [Int](repeating: last, count: 3 + (try bits(2)))
            case 17: lengths += [Int](repeating: 0, count: 3 + (try bits(3)))
            default: lengths += [Int](repeating: 0, count: 11 + (try bits(7)))
            }
        }
        guard lengths.count == nlen + ndist else { throw Gzip.Failure.tooManyCodeLengths }
        return (try Huffman(lengths: Array(lengths[0..<nlen])), try Huffman(lengths: Array(lengths[nlen...])))
    }

    mutating func codes(_ lit: Huffman, _ dist: Huffman, into out: inout [UInt8]) throws {
        while true {
            let symbol = try decode(lit)
            if symbol < 256 { try room(out, 1); out.append(UInt8(symbol)); continue }
            if symbol == 256 { return }
            let li = symbol - 257
            guard li < Self.lengthBase.count else { throw Gzip.Failure.badLengthSymbol }
            let length = Self.lengthBase[li] + (try bits(Self.lengthExtra[li]))
            let di = try decode(dist)
            guard di < Self.distBase.count else { throw Gzip.Failure.badDistanceSymbol }
            let distance = Self.distBase[di] + (try bits(Self.distExtra[di]))
            guard distance <= out.count else { throw Gzip.Failure.distanceTooFar }
            let start = out.count - distance
            try room(out, length)
            for i in 0..<length { out.append(out[start + i]) }
        }
    }
}
