import Fetch
import Foundation
import RPM
#if canImport(FoundationXML)
    import FoundationXML
#endif
import Host

/// One `<data>` of repomd.xml: where a metadata file is and what it must hash to.
public struct RepoDataFile: Sendable, Equatable {
    public var type: String
    /// Relative to the repository root ("repodata/…-primary.xml.gz").
    public var location: String
    public var checksum: Checksum
    /// Checksum and size of the decompressed file, when repomd gives them.
    public var openChecksum: Checksum?
    public var size: Int?
    public var openSize: Int?
    public var timestamp: Int?
}

/// repomd.xml: the index of a repository's metadata.
public struct RepoMD: Sendable {
    /// Why `other` (another mirror's repomd.xml of the same repository) is not
    /// the same metadata, or nil when it is: the same revision and the same
    /// data files with the same checksums. Two mirrors may serve a release only
    /// when this is nil (ReleaseRepository.fetch).
    public func disagreement(with other: RepoMD) -> String? {
        if revision != other.revision {
            return "has revision \(other.revision ?? "(none)"), not \(revision ?? "(none)")"
        }
        for type in Set(files.keys).union(other.files.keys).sorted() where files[type]?.checksum != other.files[type]?.checksum {
            return "has other \(type) data (\(other.files[type]?.checksum.description ?? "none"), not \(files[type]?.checksum.description ?? "none"))"
        }
        return nil
    }

    public var revision: String?
    /// By type: "primary", "filelists", "other", "group", "group_gz", "primary_db"...
    public var files: [String: RepoDataFile]
    public var primary: RepoDataFile? { files["primary"] }
    /// The comps file, preferring the uncompressed one (yum reads "group").
    public var group: RepoDataFile? { files["group"] ?? files["group_gz"] }

    /// Parses repomd.xml. `name` is used in errors.
    public static func parse(_ data: Data, name: String = "repomd.xml") throws -> RepoMD {
        let delegate = RepoMDParser()
        try runParser(data, delegate: delegate, name: name, root: "repomd")
        return RepoMD(revision: delegate.revision, files: delegate.files)
    }
}

/// A requirement or provide as primary.xml gives it.
public struct RepoDependency: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// Dependency.less/greater/equal bits (from flags="EQ|LT|GT|LE|GE").
    public var flags: Int
    public var evr: EVR?
    /// `pre="1"`: needed before the package's %pre scriptlet runs.
    public var pre: Bool
    public init(name: String, flags: Int = 0, evr: EVR? = nil, pre: Bool = false) {
        self.name = name; self.flags = flags; self.evr = evr; self.pre = pre
    }
    public var description: String {
        guard let evr, flags != 0 else { return name }
        return "\(name) \(Dependency(name: name, flags: flags).sense) \(evr)"
    }
}

/// One package of primary.xml.
public struct RepoPackage: Sendable, Equatable {
    public var name: String
    public var arch: String
    public var evr: EVR
    public var checksum: Checksum
    public var packageSize: Int
    public var installedSize: Int
    /// Relative to the repository root ("Packages/bash-4.1.2-48.el6.x86_64.rpm").
    public var location: String
    public var provides: [RepoDependency] = []
    public var requires: [RepoDependency] = []
    public var conflicts: [RepoDependency] = []
    public var obsoletes: [RepoDependency] = []
    /// The files primary lists (createrepo keeps /etc/*, *bin/*, /usr/lib/sendmail): the file provides.
    public var files: [String] = []
    /// name-[epoch:]version-release.arch
    public var nevra: String { "\(name)-\(evr.epoch != 0 ? "\(evr.epoch):" : "")\(evr.version)-\(evr.release).\(arch)" }
    /// The file name `yum` will look for (the basename of the location).
    public var fileName: String { String(location.split(separator: "/").last ?? Substring(location)) }
}

/// primary.xml
public enum Primary {
    /// Parses primary.xml (already decompressed; see `Metadata.decompress`) with the
    /// fast byte scanner (`XMLScanner`).
    public static func parse(_ data: Data, name: String = "primary.xml") throws -> [RepoPackage] {
        try scan(data, name: name)
    }

    /// The same with Foundation's XMLParser: the reference the scanner is tested against.
    public static func parseWithXMLParser(_ data: Data, name: String = "primary.xml") throws -> [RepoPackage] {
        let delegate = PrimaryParser()
        try runParser(data, delegate: delegate, name: name, root: "metadata")
        return delegate.packages
    }
}

public enum Metadata {
    /// Checks bytes against what repomd.xml says about them: the size when given,
    /// then the checksum (sha256 or sha/sha1). Pure; throws a named mismatch.
    public static func verify(data: Data, against file: RepoDataFile) throws {
        if let size = file.size, size != data.count {
            throw RepositoryError.sizeMismatch(file: file.location, expected: size, actual: data.count)
        }
        let got = Checksum.of(data, kind: file.checksum.kind)
        guard got == file.checksum else {
            throw RepositoryError.checksumMismatch(file: file.location, type: file.checksum.kind.rawValue, expected: file.checksum.hex, actual: got.hex)
        }
    }

    /// Checks the decompressed bytes against open-checksum/open-size, when repomd gives them.
    public static func verifyOpen(data: Data, against file: RepoDataFile) throws {
        if let size = file.openSize, size != data.count {
            throw RepositoryError.sizeMismatch(file: file.location + " (decompressed)", expected: size, actual: data.count)
        }
        if let want = file.openChecksum {
            let got = Checksum.of(data, kind: want.kind)
            guard got == want else {
                throw RepositoryError.checksumMismatch(file: file.location + " (decompressed)", type: want.kind.rawValue, expected: want.hex, actual: got.hex)
            }
        }
    }

    /// Decompresses gzip / xz / bzip2 data (by magic number) with the host's tool; other data is returned as is.
    public static func decompress(_ data: Data, name: String) throws -> Data {
        try decompressChecked(data, name: name, open: nil)
    }

    /// Decompresses and, when `open` is given, checks the result against its
    /// open-checksum/open-size while the decompressor still runs (the digest is
    /// computed block by block as the output arrives).
    /// At most `cap` bytes come out whatever `open` says (`decompressionLimit`).
    public static func decompressChecked(_ data: Data, name: String, open file: RepoDataFile?, cap: Int = maxDecompressedBytes) throws -> Data {
        let bytes = [UInt8](data.prefix(6))
        let tool: String
        if bytes.starts(with: [0x1f, 0x8b]) {
            tool = "gzip"
        } else if bytes.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            tool = "xz"
        } else if bytes.starts(with: [0x42, 0x5a, 0x68]) {
            tool = "bzip2"
        } else {
            if let file { try verifyOpen(data: data, against: file) }
            return data
        }
        var hasher = file?.openChecksum.map { ChecksumHasher(kind: $0.kind) }
        let limit = decompressionLimit(openSize: file?.openSize, cap: cap)
        var raw = Data()
        // Streamed and counted: the decompressor is stopped the moment its output
        // passes the limit, so a gzip bomb costs `limit` bytes of memory, not its size.
        let outcome = try HostPipe.run(Command(tool, ["-dc"]), inputFile: nil, inputData: data) { fd in
            let size = 1 << 20
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let r = read(fd, buffer, size)
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { break }
                guard raw.count + r <= limit else {
                    throw RepositoryError.metadata(file: name, reason: tooLargeReason(limit: limit, openSize: file?.openSize))
                }
                let block = UnsafeRawBufferPointer(start: buffer, count: r)
                hasher?.update(block)
                raw.append(contentsOf: block)
            }
        }
        guard outcome.status == 0 else {
            throw RepositoryError.metadata(
                file: name, reason: "\(tool) -dc failed (exit \(outcome.status)): \(outcome.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if let file {
            if let size = file.openSize, size != raw.count {
                throw RepositoryError.sizeMismatch(file: file.location + " (decompressed)", expected: size, actual: raw.count)
            }
            if let want = file.openChecksum, let got = hasher?.finish(), got != want {
                throw RepositoryError.checksumMismatch(file: file.location + " (decompressed)", type: want.kind.rawValue, expected: want.hex, actual: got.hex)
            }
        }
        return raw
    }

    /// The most any metadata file may decompress to, whatever repomd says:
    /// CentOS 6's primary and comps files are tens of MB unpacked (the test
    /// vault's under one), so this bounds memory against a hostile mirror
    /// whose repomd gives a huge open-size or none.
    public static let maxDecompressedBytes = 512 << 20

    /// How many decompressed bytes to accept: repomd's open-size (the stream is
    /// refused at its next byte), never more than the hard cap.
    public static func decompressionLimit(openSize: Int?, cap: Int = maxDecompressedBytes) -> Int {
        guard let openSize, openSize >= 0, openSize < cap else { return cap }
        return openSize
    }

    static func tooLargeReason(limit: Int, openSize: Int?) -> String {
        if let openSize, openSize == limit {
            return "decompresses to more than the \(openSize) bytes repomd.xml's open-size gives; refused (corrupt or hostile metadata: use another mirror)"
        }
        return "decompresses to more than \(limit >> 20) MiB, the most this tool reads; refused (corrupt or hostile metadata: use another mirror)"
    }

    /// Reads a repository from a local directory (`DIR/repodata/repomd.xml`), checking every
    /// file against repomd. Returns repomd, the packages of primary and the comps groups (if any).
    public static func loadLocal(repository dir: String) throws -> (RepoMD, [RepoPackage], Comps?) {
        let repomdPath = dir + "/repodata/repomd.xml"
        guard let repomdData = FileManager.default.contents(atPath: repomdPath) else {
            throw RepositoryError.metadata(file: repomdPath, reason: "cannot read it (is '\(dir)' a repository?)")
        }
        let repomd = try RepoMD.parse(repomdData, name: repomdPath)
        guard let primaryFile = repomd.primary else { throw RepositoryError.metadata(file: repomdPath, reason: "no primary data") }
        let packages = try loadPrimary(try readChecked(dir, primaryFile), file: primaryFile)
        var comps: Comps?
        if let group = repomd.group {
            let raw = try decompressChecked(try readChecked(dir, group), name: group.location, open: group)
            comps = try Comps.parse(raw, name: group.location)
        }
        return (repomd, packages, comps)
    }

    /// Decompresses and parses a primary file already checked against repomd.
    /// The compressed bytes' checksum and size (`verify(data:against:)`) are what
    /// protects it; decompression is deterministic, so the open-checksum would add
    /// a second 30 MB SHA-256 and nothing else (yum does not check it either).
    /// The open-size is still checked.
    public static func loadPrimary(_ compressed: Data, file: RepoDataFile) throws -> [RepoPackage] {
        let t0 = Date()
        var sizeOnly = file
        sizeOnly.openChecksum = nil
        let raw = try decompressChecked(compressed, name: file.location, open: sizeOnly)
        let t1 = Date()
        let t2 = t1
        let packages = try Primary.parse(raw, name: file.location)
        if ProcessInfo.processInfo.environment["CENTOS6_AMI_TIMING"] != nil {
            Output.stderr(
                String(
                    format: "timing: gunzip %.3f s, open-checksum %.3f s, parse %.3f s\n", t1.timeIntervalSince(t0), t2.timeIntervalSince(t1),
                    Date().timeIntervalSince(t2)))
        }
        return packages
    }

    static func readChecked(_ dir: String, _ file: RepoDataFile) throws -> Data {
        let path = dir + "/" + file.location
        guard let data = FileManager.default.contents(atPath: path) else { throw RepositoryError.metadata(file: path, reason: "cannot read it") }
        try verify(data: data, against: file)
        return data
    }
}

// MARK: SAX parsing

/// Parses `data` with `delegate`; throws unless the document is well-formed, the
/// delegate found nothing wrong, and the root element `root` was opened and closed.
func runParser(_ data: Data, delegate: MetadataParserDelegate, name: String, root: String) throws {
    // A stream, not XMLParser(data:): corelibs hands Data to libxml2 in ONE chunk, and
    // libxml2 refuses single chunks over 10 MB without XML_PARSE_HUGE ("huge input
    // lookup"); a real primary.xml is ~30 MB. The stream is fed in small chunks.
    let parser = XMLParser(stream: InputStream(data: data))
    parser.shouldProcessNamespaces = false
    parser.shouldResolveExternalEntities = false
    parser.delegate = delegate
    if !parser.parse() {
        if let error = delegate.error { throw RepositoryError.metadata(file: name, reason: error) }
        let line = parser.lineNumber
        throw RepositoryError.metadata(file: name, reason: "not well-formed XML near line \(line): \(parser.parserError.map { "\($0)" } ?? "parse error")")
    }
    if let error = delegate.error { throw RepositoryError.metadata(file: name, reason: error) }
    guard delegate.sawRoot else { throw RepositoryError.metadata(file: name, reason: "no <\(root)> element") }
    guard delegate.closedRoot else { throw RepositoryError.metadata(file: name, reason: "the document ends before </\(root)> (truncated?)") }
}

/// A SAX delegate for one metadata document: what it found wrong, and whether it saw its root element open and close.
protocol MetadataParserDelegate: XMLParserDelegate {
    var error: String? { get }
    var sawRoot: Bool { get }
    var closedRoot: Bool { get }
}

func dependencyFlags(_ s: String?) -> Int {
    switch s {
    case "EQ": return Dependency.equal
    case "LT": return Dependency.less
    case "GT": return Dependency.greater
    case "LE": return Dependency.less | Dependency.equal
    case "GE": return Dependency.greater | Dependency.equal
    default: return 0
    }
}

final class RepoMDParser: NSObject, MetadataParserDelegate {
    var revision: String?
    var files: [String: RepoDataFile] = [:]
    var error: String?
    var sawRoot = false
    var closedRoot = false
    private var type: String?
    private var location: String?
    private var checksum: (String, String)?
    private var openChecksum: (String, String)?
    private var size: Int?, openSize: Int?, timestamp: Int?
    private var text = ""
    private var checksumType = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        text = ""
        switch name {
        case "repomd": sawRoot = true
        case "data":
            type = attributes["type"]; location = nil; checksum = nil; openChecksum = nil
            size = nil; openSize = nil; timestamp = nil
        case "location": location = attributes["href"]
        case "checksum", "open-checksum": checksumType = attributes["type"] ?? ""
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch name {
        case "repomd": closedRoot = true
        case "revision": revision = value
        case "checksum": checksum = (checksumType, value)
        case "open-checksum": openChecksum = (checksumType, value)
        case "size": size = Int(value)
        case "open-size": openSize = Int(value)
        case "timestamp": timestamp = Int(value)
        case "data":
            guard let type else { fail(parser, "a <data> without type"); return }
            guard let location, !location.isEmpty else { fail(parser, "<data type=\"\(type)\"> has no location"); return }
            guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
                fail(parser, "<data type=\"\(type)\"> location '\(location)' leaves the repository"); return
            }
            guard let (ct, cv) = checksum else { fail(parser, "<data type=\"\(type)\"> has no checksum"); return }
            do {
                let sum = try Checksum(metadataType: ct, value: cv)
                let open = try openChecksum.map { try Checksum(metadataType: $0.0, value: $0.1) }
                files[type] = RepoDataFile(
                    type: type, location: location, checksum: sum, openChecksum: open, size: size, openSize: openSize, timestamp: timestamp)
            } catch {
                fail(parser, "<data type=\"\(type)\">: \(error)")
            }
        default: break
        }
        text = ""
    }

    private func fail(_ parser: XMLParser, _ message: String) {
        if error == nil { error = message }
        parser.abortParsing()
    }
}

final class PrimaryParser: NSObject, MetadataParserDelegate {
    var packages: [RepoPackage] = []
    var error: String?
    var sawRoot = false
    var closedRoot = false

    private var inPackage = false
    private var name = "", arch = "", location = ""
    private var evr = EVR(version: "")
    private var checksum: (String, String)?
    private var checksumType = ""
    private var packageSize = 0, installedSize = 0
    private var provides: [RepoDependency] = [], requires: [RepoDependency] = []
    private var conflicts: [RepoDependency] = [], obsoletes: [RepoDependency] = []
    private var files: [String] = []
    private enum List { case none, provides, requires, conflicts, obsoletes, other }
    private var list = List.none
    private var capture = false
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        switch element {
        case "rpm:entry":
            guard list != .none, list != .other, let n = attributes["name"] else { return }
            var evr: EVR?
            if let ver = attributes["ver"] {
                evr = EVR(epoch: Int(attributes["epoch"] ?? "0") ?? 0, version: ver, release: attributes["rel"] ?? "")
            }
            let dep = RepoDependency(name: n, flags: dependencyFlags(attributes["flags"]), evr: evr, pre: attributes["pre"] == "1")
            switch list {
            case .provides: provides.append(dep)
            case .requires: requires.append(dep)
            case .conflicts: conflicts.append(dep)
            case .obsoletes: obsoletes.append(dep)
            default: break
            }
        case "file", "name", "arch":
            if inPackage { capture = true; text = "" }
        case "checksum":
            if inPackage { capture = true; text = ""; checksumType = attributes["type"] ?? "" }
        case "rpm:provides": list = .provides
        case "rpm:requires": list = .requires
        case "rpm:conflicts": list = .conflicts
        case "rpm:obsoletes": list = .obsoletes
        case "rpm:suggests", "rpm:recommends", "rpm:enhances", "rpm:supplements": list = .other
        case "version":
            guard inPackage else { return }
            evr = EVR(epoch: Int(attributes["epoch"] ?? "0") ?? 0, version: attributes["ver"] ?? "", release: attributes["rel"] ?? "")
        case "size":
            guard inPackage else { return }
            packageSize = Int(attributes["package"] ?? "") ?? 0
            installedSize = Int(attributes["installed"] ?? "") ?? 0
        case "location":
            guard inPackage else { return }
            location = attributes["href"] ?? ""
        case "package":
            inPackage = true
            name = ""; arch = ""; location = ""; checksum = nil; packageSize = 0; installedSize = 0
            evr = EVR(version: "")
            provides = []; requires = []; conflicts = []; obsoletes = []; files = []
        case "metadata": sawRoot = true
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if capture { text += string }
    }

    func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
        switch element {
        case "metadata": closedRoot = true
        case "file": if capture { files.append(text) }
        case "name": if capture { name = text.trimmingCharacters(in: .whitespacesAndNewlines) }
        case "arch": if capture { arch = text.trimmingCharacters(in: .whitespacesAndNewlines) }
        case "checksum": if capture { checksum = (checksumType, text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        case "rpm:provides", "rpm:requires", "rpm:conflicts", "rpm:obsoletes",
            "rpm:suggests", "rpm:recommends", "rpm:enhances", "rpm:supplements":
            list = .none
        case "package":
            inPackage = false
            guard !name.isEmpty, !arch.isEmpty, !evr.version.isEmpty else {
                fail(parser, "package #\(packages.count + 1) lacks name, arch or version"); return
            }
            guard !location.isEmpty, !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
                fail(parser, "package '\(name)' has no or an unsafe location '\(location)'"); return
            }
            guard let (ct, cv) = checksum else { fail(parser, "package '\(name)' has no checksum"); return }
            let sum: Checksum
            do { sum = try Checksum(metadataType: ct, value: cv) } catch { fail(parser, "package '\(name)': \(error)"); return }
            packages.append(
                RepoPackage(
                    name: name, arch: arch, evr: evr, checksum: sum, packageSize: packageSize,
                    installedSize: installedSize, location: location, provides: provides,
                    requires: requires, conflicts: conflicts, obsoletes: obsoletes, files: files))
        default: break
        }
        capture = false
    }

    private func fail(_ parser: XMLParser, _ message: String) {
        if error == nil { error = message }
        parser.abortParsing()
    }
}
