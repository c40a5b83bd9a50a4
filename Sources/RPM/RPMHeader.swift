import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Random access to the bytes of a package: a file (pread, so only the
/// header is read into memory) or a Data (tests, fuzzing). Every read is
/// bounds-checked by the caller through `bytes(at:count:)`.
public protocol ByteSource {
    var size: Int { get }
    /// Exactly `count` bytes at `offset`, or fewer when the source ends first.
    func read(at offset: Int, count: Int) throws -> [UInt8]
}

public struct DataSource: ByteSource {
    public let data: [UInt8]
    public init(_ data: Data) { self.data = [UInt8](data) }
    public init(_ bytes: [UInt8]) { self.data = bytes }
    public var size: Int { data.count }
    public func read(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= data.count else { return [] }
        return Array(data[offset..<min(data.count, offset + count)])
    }
}

/// A file read with pread(2); the descriptor is closed when the value is released.
public final class FileSource: ByteSource {
    public let path: String
    let fd: Int32
    public let size: Int
    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RPMError.malformed(file: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw RPMError.malformed(file: path, reason: "not a regular file")
        }
        size = Int(st.st_size)
    }
    deinit { close(fd) }
    public func read(at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset < size else { return [] }
        let n = min(count, size - offset)
        var buffer = [UInt8](repeating: 0, count: n)
        var done = 0
        while done < n {
            let r = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, n - done, off_t(offset + done)) }
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { break }
            done += r
        }
        return Array(buffer[0..<done])
    }
}

/// Header tag numbers (rpmtag.h). The signature header reuses some numbers
/// with other meanings (1000 is SIZE there, NAME here), hence two enums.
public enum Tag {
    public static let name: Int32 = 1000, version: Int32 = 1001, release: Int32 = 1002, epoch: Int32 = 1003
    public static let summary: Int32 = 1004, description: Int32 = 1005, buildTime: Int32 = 1006, buildHost: Int32 = 1007
    public static let size: Int32 = 1009, vendor: Int32 = 1011, license: Int32 = 1014, packager: Int32 = 1015
    public static let group: Int32 = 1016, url: Int32 = 1020, os: Int32 = 1021, arch: Int32 = 1022
    public static let oldFilenames: Int32 = 1027
    public static let fileSizes: Int32 = 1028, fileModes: Int32 = 1030, fileRdevs: Int32 = 1033, fileMtimes: Int32 = 1034
    public static let fileDigests: Int32 = 1035, fileLinkTos: Int32 = 1036, fileFlags: Int32 = 1037
    public static let fileUserName: Int32 = 1039, fileGroupName: Int32 = 1040
    public static let sourceRPM: Int32 = 1044
    public static let provideName: Int32 = 1047, requireFlags: Int32 = 1048, requireName: Int32 = 1049, requireVersion: Int32 = 1050
    public static let conflictFlags: Int32 = 1053, conflictName: Int32 = 1054, conflictVersion: Int32 = 1055
    public static let obsoleteName: Int32 = 1090, fileDevices: Int32 = 1095, fileInodes: Int32 = 1096
    public static let provideFlags: Int32 = 1112, provideVersion: Int32 = 1113
    public static let obsoleteFlags: Int32 = 1114, obsoleteVersion: Int32 = 1115
    public static let dirIndexes: Int32 = 1116, baseNames: Int32 = 1117, dirNames: Int32 = 1118
    public static let payloadFormat: Int32 = 1124, payloadCompressor: Int32 = 1125, payloadFlags: Int32 = 1126
    public static let longFileSizes: Int32 = 5008, fileDigestAlgo: Int32 = 5011
    public static let payloadDigest: Int32 = 5092, payloadDigestAlgo: Int32 = 5093
}

public enum SigTag {
    public static let headerSignatures: Int32 = 62
    public static let dsaHeader: Int32 = 267, rsaHeader: Int32 = 268, sha1Header: Int32 = 269
    public static let longSize: Int32 = 270, longArchiveSize: Int32 = 271, sha256Header: Int32 = 273
    public static let size: Int32 = 1000, pgp: Int32 = 1002, md5: Int32 = 1004, gpg: Int32 = 1005, payloadSize: Int32 = 1007
}

/// Header data types (rpmTagType).
public enum TagType: Int32, Sendable {
    case null = 0, char = 1, int8 = 2, int16 = 3, int32 = 4, int64 = 5, string = 6, bin = 7, stringArray = 8, i18nString = 9
    var width: Int {
        switch self {
        case .null: return 0
        case .char, .int8, .bin, .string, .stringArray, .i18nString: return 1
        case .int16: return 2
        case .int32: return 4
        case .int64: return 8
        }
    }
}

/// One rpm header structure (signature header or main header): the index
/// and the data store, with typed, bounds-checked accessors. Values of a
/// missing tag are empty / nil, never a crash.
public struct RPMHeader: Sendable {
    public struct Entry: Sendable, Equatable {
        public var tag: Int32
        public var type: TagType
        public var offset: Int
        public var count: Int
        /// Bytes of this entry's data in the store (strings: up to and including the last NUL).
        public var length: Int
    }
    public static let magic: [UInt8] = [0x8e, 0xad, 0xe8, 0x01]
    /// rpm's own sanity limits (hdrchkTags / hdrchkData).
    static let maxEntries = 0xffff
    static let maxStore = 0x0fff_ffff

    /// Entries in index order.
    public let entries: [Entry]
    let byTag: [Int32: Int]
    public let store: [UInt8]
    /// Where the header lies in the file: from its magic to the end of its store.
    public let range: Range<Int>

    /// Reads the header that starts at `offset` of `source`.
    public init(source: ByteSource, at offset: Int, file: String, what: String) throws {
        let intro = try source.read(at: offset, count: 16)
        guard intro.count == 16 else {
            throw RPMError.truncated(file: file, reason: "\(what) ends at byte \(source.size), its intro needs 16 bytes at \(offset)")
        }
        guard Array(intro[0..<4]) == RPMHeader.magic else {
            throw RPMError.malformed(file: file, reason: "no \(what) magic (8e ad e8 01) at byte \(offset)")
        }
        let count = Int(be32(intro, 8)), storeSize = Int(be32(intro, 12))
        guard count >= 1, count <= RPMHeader.maxEntries else {
            throw RPMError.malformed(file: file, reason: "\(what) has an implausible \(count) index entries")
        }
        guard storeSize <= RPMHeader.maxStore else {
            throw RPMError.malformed(file: file, reason: "\(what) has an implausible data store of \(storeSize) bytes")
        }
        let total = 16 + 16 * count + storeSize
        let body = try source.read(at: offset + 16, count: total - 16)
        guard body.count == total - 16 else {
            throw RPMError.truncated(file: file, reason: "\(what) needs \(total) bytes at \(offset), the file ends at \(source.size)")
        }
        let store = Array(body[(16 * count)...])
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var byTag: [Int32: Int] = [:]
        for i in 0..<count {
            let base = 16 * i
            let tag = Int32(bitPattern: be32(body, base))
            let rawType = Int32(bitPattern: be32(body, base + 4))
            let off = Int(Int32(bitPattern: be32(body, base + 8)))
            let n = Int(be32(body, base + 12))
            guard let type = TagType(rawValue: rawType) else {
                throw RPMError.malformed(file: file, reason: "\(what) tag \(tag) has unknown type \(rawType)")
            }
            guard off >= 0, off <= storeSize else { throw RPMError.malformed(file: file, reason: "\(what) tag \(tag) points outside the data store") }
            guard n >= 0, n <= storeSize + 1 else { throw RPMError.malformed(file: file, reason: "\(what) tag \(tag) has an implausible count \(n)") }
            var length: Int
            switch type {
            case .string, .stringArray, .i18nString:
                // n NUL-terminated strings, all inside the store.
                var p = off
                var left = type == .string ? 1 : n
                while left > 0 {
                    guard let nul = store[p...].firstIndex(of: 0) else {
                        throw RPMError.malformed(file: file, reason: "\(what) tag \(tag) has a string running off the data store")
                    }
                    p = nul + 1
                    left -= 1
                }
                length = p - off
            default:
                length = n * type.width
                guard off + length <= storeSize else { throw RPMError.malformed(file: file, reason: "\(what) tag \(tag) data runs off the data store") }
            }
            if byTag[tag] == nil { byTag[tag] = entries.count }
            entries.append(Entry(tag: tag, type: type, offset: off, count: n, length: length))
        }
        self.entries = entries
        self.byTag = byTag
        self.store = store
        self.range = offset..<(offset + total)
    }

    public func entry(_ tag: Int32) -> Entry? { byTag[tag].map { entries[$0] } }
    public func has(_ tag: Int32) -> Bool { byTag[tag] != nil }

    /// A STRING / I18NSTRING (first value) / first of a STRING_ARRAY.
    public func string(_ tag: Int32) -> String? { strings(tag).first }

    public func strings(_ tag: Int32) -> [String] {
        guard let e = entry(tag) else { return [] }
        switch e.type {
        case .string, .i18nString, .stringArray:
            var out: [String] = []
            var p = e.offset
            let n = e.type == .string ? 1 : e.count
            out.reserveCapacity(n)
            for _ in 0..<n {
                guard let nul = store[p...].firstIndex(of: 0) else { break }
                out.append(String(decoding: store[p..<nul], as: UTF8.self))
                p = nul + 1
            }
            return out
        default:
            return []
        }
    }

    /// Integers of any width widened to Int (INT16 and INT32 are unsigned in rpm's file tags, so read unsigned).
    public func integers(_ tag: Int32) -> [Int] {
        guard let e = entry(tag) else { return [] }
        var out: [Int] = []
        out.reserveCapacity(e.count)
        let s = e.offset
        switch e.type {
        case .char, .int8: for i in 0..<e.count { out.append(Int(store[s + i])) }
        case .int16: for i in 0..<e.count { out.append(Int(UInt16(store[s + 2 * i]) << 8 | UInt16(store[s + 2 * i + 1]))) }
        case .int32: for i in 0..<e.count { out.append(Int(be32(store, s + 4 * i))) }
        case .int64:
            for i in 0..<e.count {
                out.append(Int(truncatingIfNeeded: UInt64(be32(store, s + 8 * i)) << 32 | UInt64(be32(store, s + 8 * i + 4))))
            }
        default: return []
        }
        return out
    }

    public func integer(_ tag: Int32) -> Int? { integers(tag).first }

    /// BIN data (signatures, digests).
    public func binary(_ tag: Int32) -> [UInt8]? {
        guard let e = entry(tag), e.type == .bin else { return nil }
        return Array(store[e.offset..<(e.offset + e.count)])
    }
}

/// The big-endian UInt32 at `i` (rpm headers and OpenPGP packets are big-endian).
@inline(__always) public func be32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
}
