import Foundation

/// A dependency (require or provide) as rpm stores it: name, sense flags, EVR.
public struct Dependency: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var flags: Int
    /// "[epoch:]version[-release]" or empty.
    public var version: String
    public init(name: String, flags: Int = 0, version: String = "") {
        self.name = name; self.flags = flags; self.version = version
    }
    public static let less = 0x02, greater = 0x04, equal = 0x08
    /// RPMSENSE_PREREQ | SCRIPT_PRE | SCRIPT_POST ...: the "pre" requirements of an install.
    public static let prereqMask = 0x40 | 0x200 | 0x400 | 0x800 | 0x1000
    public var sense: String {
        var s = ""
        if flags & Dependency.less != 0 { s += "<" }
        if flags & Dependency.greater != 0 { s += ">" }
        if flags & Dependency.equal != 0 { s += "=" }
        return s
    }
    public var description: String {
        version.isEmpty || sense.isEmpty ? name : "\(name) \(sense) \(version)"
    }
}

/// One file of a package as the header lists it.
public struct RPMFileEntry: Sendable, Equatable {
    public var path: String
    public var mode: Int
    public var size: Int
    public var digest: String
    public var linkTo: String
    public var user: String
    public var group: String
    public var flags: Int
    public var mtime: Int
}

/// A parsed .rpm: lead, signature header and main header, with typed access
/// to what install, `rpm info` and the resolver need. Reads only the headers
/// (a 30 MB kernel package costs a few kilobytes of memory).
public struct RPMFile: Sendable {
    public static let leadMagic: [UInt8] = [0xed, 0xab, 0xee, 0xdb]
    public static let leadSize = 96

    public let path: String
    public let fileSize: Int
    /// Lead fields (informational; rpm ignores most of them).
    public let leadMajor: Int
    public let leadName: String
    public let signature: RPMHeader
    public let header: RPMHeader
    /// Where the payload (compressed cpio) starts: right after the main header.
    public var payloadOffset: Int { header.range.upperBound }
    /// Header+payload bytes according to the signature header (SIZE or LONGSIZE), if given.
    public var signedSize: Int? { signature.integer(SigTag.longSize) ?? signature.integer(SigTag.size) }

    public init(path: String) throws {
        try self.init(source: try FileSource(path: path), name: path)
    }

    public init(data: Data, name: String = "<data>") throws {
        try self.init(source: DataSource(data), name: name)
    }

    public init(source: ByteSource, name: String) throws {
        path = name
        fileSize = source.size
        let lead = try source.read(at: 0, count: RPMFile.leadSize)
        guard lead.count >= 4, Array(lead[0..<4]) == RPMFile.leadMagic else {
            throw RPMError.malformed(file: name, reason: "no rpm lead magic (ed ab ee db) at the start")
        }
        guard lead.count == RPMFile.leadSize else { throw RPMError.truncated(file: name, reason: "the 96-byte lead is cut at \(lead.count) bytes") }
        leadMajor = Int(lead[4])
        guard leadMajor == 3 || leadMajor == 4 else { throw RPMError.malformed(file: name, reason: "unsupported lead version \(leadMajor)") }
        let sigType = Int(lead[78]) << 8 | Int(lead[79])
        guard sigType == 5 else { throw RPMError.malformed(file: name, reason: "lead signature type \(sigType), expected 5 (header-style signature)") }
        leadName = String(decoding: lead[10..<76].prefix { $0 != 0 }, as: UTF8.self)
        signature = try RPMHeader(source: source, at: RPMFile.leadSize, file: name, what: "signature header")
        // The signature header is padded to a multiple of 8 bytes (the lead is 96, so absolute alignment).
        let mainStart = (signature.range.upperBound + 7) / 8 * 8
        header = try RPMHeader(source: source, at: mainStart, file: name, what: "main header")
        guard header.string(Tag.name) != nil else { throw RPMError.malformed(file: name, reason: "the main header has no NAME") }
    }

    // MARK: typed fields

    public var name: String { header.string(Tag.name) ?? "" }
    public var epoch: Int? { header.integer(Tag.epoch) }
    public var version: String { header.string(Tag.version) ?? "" }
    public var release: String { header.string(Tag.release) ?? "" }
    /// Source packages have no ARCH tag they install for; rpm reports them as their build arch anyway.
    public var arch: String { header.string(Tag.arch) ?? "" }
    public var evr: EVR { EVR(epoch: epoch ?? 0, version: version, release: release) }
    /// name-version-release.arch, like rpm -q.
    public var nevra: String { "\(name)-\(epoch.map { "\($0):" } ?? "")\(version)-\(release).\(arch)" }
    /// name-version-release.arch without the epoch (the package file's usual name).
    public var nvra: String { "\(name)-\(version)-\(release).\(arch)" }
    public var summary: String { header.string(Tag.summary) ?? "" }
    public var license: String { header.string(Tag.license) ?? "" }
    public var group: String { header.string(Tag.group) ?? "" }
    public var vendor: String? { header.string(Tag.vendor) }
    public var packager: String? { header.string(Tag.packager) }
    public var url: String? { header.string(Tag.url) }
    public var sourceRPM: String? { header.string(Tag.sourceRPM) }
    public var buildHost: String? { header.string(Tag.buildHost) }
    public var buildTime: Int? { header.integer(Tag.buildTime) }
    public var installedSize: Int? { header.integer(Tag.size) }
    /// "cpio" for every package we handle.
    public var payloadFormat: String { header.string(Tag.payloadFormat) ?? "cpio" }
    /// rpm's default when the tag is absent is gzip.
    public var payloadCompressor: String { header.string(Tag.payloadCompressor) ?? "gzip" }
    public var payloadFlags: String? { header.string(Tag.payloadFlags) }

    /// Full paths of the files, from BASENAMES/DIRNAMES/DIRINDEXES (or OLDFILENAMES).
    public var fileNames: [String] {
        let bases = header.strings(Tag.baseNames)
        if bases.isEmpty { return header.strings(Tag.oldFilenames) }
        let dirs = header.strings(Tag.dirNames)
        let idx = header.integers(Tag.dirIndexes)
        return bases.enumerated().map { i, base in
            let d = i < idx.count && idx[i] < dirs.count ? dirs[idx[i]] : ""
            return d + base
        }
    }

    /// Every file with its attributes; arrays shorter than the file list give empty values.
    public var files: [RPMFileEntry] {
        let names = fileNames
        let modes = header.integers(Tag.fileModes)
        let sizes = header.has(Tag.longFileSizes) ? header.integers(Tag.longFileSizes) : header.integers(Tag.fileSizes)
        let digests = header.strings(Tag.fileDigests)
        let links = header.strings(Tag.fileLinkTos)
        let users = header.strings(Tag.fileUserName)
        let groups = header.strings(Tag.fileGroupName)
        let flags = header.integers(Tag.fileFlags)
        let mtimes = header.integers(Tag.fileMtimes)
        func at<T>(_ a: [T], _ i: Int, _ d: T) -> T { i < a.count ? a[i] : d }
        return names.enumerated().map { i, p in
            RPMFileEntry(
                path: p, mode: at(modes, i, 0), size: at(sizes, i, 0), digest: at(digests, i, ""),
                linkTo: at(links, i, ""), user: at(users, i, ""), group: at(groups, i, ""),
                flags: at(flags, i, 0), mtime: at(mtimes, i, 0))
        }
    }

    func dependencies(names: Int32, flags: Int32, versions: Int32) -> [Dependency] {
        let n = header.strings(names), f = header.integers(flags), v = header.strings(versions)
        return n.enumerated().map { i, name in
            Dependency(name: name, flags: i < f.count ? f[i] : 0, version: i < v.count ? v[i] : "")
        }
    }

    public var requires: [Dependency] { dependencies(names: Tag.requireName, flags: Tag.requireFlags, versions: Tag.requireVersion) }
    public var provides: [Dependency] { dependencies(names: Tag.provideName, flags: Tag.provideFlags, versions: Tag.provideVersion) }
    public var conflicts: [Dependency] { dependencies(names: Tag.conflictName, flags: Tag.conflictFlags, versions: Tag.conflictVersion) }
    public var obsoletes: [Dependency] { dependencies(names: Tag.obsoleteName, flags: Tag.obsoleteFlags, versions: Tag.obsoleteVersion) }

    // MARK: signature tags

    public var md5: [UInt8]? { signature.binary(SigTag.md5) }
    public var sha1Header: String? { signature.string(SigTag.sha1Header) }
    public var sha256Header: String? { signature.string(SigTag.sha256Header) }
    public var payloadSize: Int? { signature.integer(SigTag.longArchiveSize) ?? signature.integer(SigTag.payloadSize) }
    /// PAYLOADDIGEST (sha256 of the compressed payload, rpm >= 4.14) with its algorithm (8 = sha256).
    public var payloadDigest: (algorithm: Int, hex: String)? {
        guard let d = header.string(Tag.payloadDigest) else { return nil }
        return (header.integer(Tag.payloadDigestAlgo) ?? 8, d)
    }

    /// Throws a clear error unless the payload is all there (a header-only file fails here).
    public func checkPayloadPresent() throws {
        if let total = signedSize {
            let expected = header.range.lowerBound + total
            guard fileSize >= expected else {
                throw RPMError.payloadMissing(file: path, expected: total, available: max(0, fileSize - header.range.lowerBound))
            }
        } else if fileSize <= payloadOffset {
            throw RPMError.payloadMissing(file: path, expected: header.range.count + 1, available: max(0, fileSize - header.range.lowerBound))
        }
    }
}
