import Foundation
import Host

/// The versions table (versions.json): every release the tool can build and
/// the facts that drive it. Pure data: knows nothing of processes or disks.
public struct VersionsFile: Codable, Equatable, Sendable {
    public var schema: Int
    public var mirrors: Mirrors
    public var ena: ENAPin
    public var releases: [Release]

    public struct Mirrors: Codable, Equatable, Sendable {
        /// Where the tool itself downloads from (https or http or file).
        public var download: String
        /// Documented alternatives for `--mirror`.
        public var downloadAlternatives: [String]
        /// Written into the image as the target yum's active baseurl (plain http: CentOS 6's NSS cannot speak modern TLS).
        public var image: String
        /// Written into the image as a commented baseurl.
        public var imageCommented: String
    }

    public struct ENAPin: Codable, Equatable, Sendable {
        public var version: String
        public var url: String
        public var archiveTopDirectory: String
        /// Where `make` runs (`kernel/linux/ena`), relative to the tree root.
        public var buildDirectory: String
        /// Every directory the build reads, relative to the tree root: the
        /// driver's Makefile also compiles and includes `../common/ena_com`.
        /// Exactly these are copied into the build root, in this layout.
        public var sourceDirectories: [String]
        /// sha256 of every file of the source directories, keyed by path
        /// relative to the tree root (`kernel/linux/common/ena_com/ena_com.c`).
        public var files: [String: String]

        /// The pinned files of one source directory.
        public func files(in directory: String) -> [String] {
            files.keys.filter { $0.hasPrefix(directory + "/") }.sorted()
        }
    }

    public struct Release: Codable, Equatable, Sendable {
        public var release: String
        /// GA kernel, `2.6.32-<n>.el6`.
        public var kernel: String
        /// The last kernel of the release's updates repository (what `install --updates`
        /// or a `yum update` brings), where known.
        public var updatesKernel: String?
        public var ena: ENAEligibility
        public var amis: [PublishedAMI]
    }

    public struct ENAEligibility: Codable, Equatable, Sendable {
        public var eligible: Bool
        /// Why ENA 2.9.1 cannot build for this release (only when not eligible).
        public var reason: String?
    }

    public struct PublishedAMI: Codable, Equatable, Sendable {
        public var region: String
        /// `plain` or `ena`.
        public var variant: String
        public var id: String
    }

    public func release(_ name: String) -> Release? { releases.first { $0.release == name } }
    public var releaseNames: [String] { releases.map(\.release) }
}

public enum VersionsError: ToolError, Equatable {
    case unreadable(path: String, reason: String)
    case malformed(field: String, reason: String)
    case invalid(field: String, reason: String)
    case unknownRelease(String, valid: [String])
    /// A problem of the file at `path` (a `--versions FILE`).
    indirect case inFile(path: String, problem: VersionsError)

    public var failure: String {
        switch self {
        case let .inFile(path, problem):
            let text = problem.failure
            return "versions file '\(path)': " + (text.hasPrefix("versions file: ") ? String(text.dropFirst("versions file: ".count)) : text)
        case let .unreadable(path, _): return "cannot read versions file '\(path)'"
        case let .malformed(field, reason): return "versions file: \(JSONProblem(field: field, problem: reason))"
        case let .invalid(field, reason): return "versions file: field '\(field)' \(reason)"
        case let .unknownRelease(name, _): return "unknown release '\(name)'"
        }
    }
    public var reason: String? {
        switch self {
        case let .inFile(_, problem): return problem.reason
        case let .unreadable(_, reason): return reason
        default: return nil
        }
    }
    public var remedy: String? {
        switch self {
        case let .inFile(_, problem): return problem.remedy
        case let .unknownRelease(_, valid): return "valid releases: \(valid.joined(separator: ", "))"
        default: return nil
        }
    }
}

extension VersionsFile {
    /// The table shipped inside the binary (a copy of the repository's versions.json).
    public static func embedded() throws -> VersionsFile { try decode(Data(embeddedVersionsJSON.utf8)) }

    public static func load(path: String) throws -> VersionsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VersionsError.unreadable(path: path, reason: "no such file or not readable")
        }
        do { return try decode(data) } catch let error as VersionsError { throw VersionsError.inFile(path: path, problem: error) }
    }

    /// Decodes and validates; errors name the bad field (`releases[3].kernel`).
    public static func decode(_ data: Data) throws -> VersionsFile {
        struct SchemaOnly: Decodable { var schema: Int }
        // The schema first: a file of another schema fails on its number, not on a field it lacks.
        if let schema = try? JSONDecoder().decode(SchemaOnly.self, from: data).schema, schema != schemaVersion {
            throw VersionsError.invalid(field: "schema", reason: schemaReason(schema))
        }
        let file: VersionsFile
        do {
            file = try JSONDecoder().decode(VersionsFile.self, from: data)
        } catch {
            let problem = JSONProblem(error)
            throw VersionsError.malformed(field: problem.field, reason: problem.problem)
        }
        try file.validate()
        return file
    }

    static func fieldPath(_ path: [CodingKey]) -> String { JSONProblem.path(path) }

    /// Schema 2: the ENA pin lists the files of several directories, keyed by
    /// path relative to the tree root.
    public static let schemaVersion = 2

    static func schemaReason(_ schema: Int) -> String {
        let hint = schema == 1 ? " (schema 1 pinned only kernel/linux/ena; start from this tool's versions.json)" : ""
        return "is \(schema); this tool reads schema \(schemaVersion)\(hint)"
    }

    /// The ENA pin: relative, distinct directories; the build directory among
    /// them with its Makefile pinned; every pinned file inside exactly one of
    /// them and every directory pinned file by file.
    func validateENAPin() throws {
        func isRelativeInside(_ path: String) -> Bool {
            !path.isEmpty && !path.hasPrefix("/") && !path.hasSuffix("/")
                && !path.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == ".." || $0 == "." }
        }
        guard !ena.sourceDirectories.isEmpty else {
            throw VersionsError.invalid(field: "ena.sourceDirectories", reason: "is empty; name every directory the ENA build reads")
        }
        for (i, directory) in ena.sourceDirectories.enumerated() {
            guard isRelativeInside(directory) else {
                throw VersionsError.invalid(field: "ena.sourceDirectories[\(i)]", reason: "'\(directory)' is not a relative path inside the source tree")
            }
            for (j, other) in ena.sourceDirectories.enumerated() where j != i && (other == directory || directory.hasPrefix(other + "/")) {
                throw VersionsError.invalid(field: "ena.sourceDirectories[\(i)]", reason: "'\(directory)' repeats or lies inside '\(other)'")
            }
        }
        guard ena.sourceDirectories.contains(ena.buildDirectory) else {
            throw VersionsError.invalid(field: "ena.buildDirectory", reason: "'\(ena.buildDirectory)' is not one of ena.sourceDirectories")
        }
        guard !ena.files.isEmpty else { throw VersionsError.invalid(field: "ena.files", reason: "is empty; the ENA source must be pinned file by file") }
        for (path, sum) in ena.files.sorted(by: { $0.key < $1.key }) {
            guard isRelativeInside(path), ena.sourceDirectories.contains(where: { path.hasPrefix($0 + "/") }) else {
                throw VersionsError.invalid(field: "ena.files[\"\(path)\"]", reason: "is not a relative path inside one of ena.sourceDirectories")
            }
            guard sum.range(of: "^[0-9a-f]{64}$", options: .regularExpression) != nil else {
                throw VersionsError.invalid(field: "ena.files[\"\(path)\"]", reason: "'\(sum)' is not a sha256 (64 lower-case hex digits)")
            }
        }
        for (i, directory) in ena.sourceDirectories.enumerated() where ena.files(in: directory).isEmpty {
            throw VersionsError.invalid(field: "ena.sourceDirectories[\(i)]", reason: "'\(directory)' has no pinned file in ena.files")
        }
        guard ena.files[ena.buildDirectory + "/Makefile"] != nil else {
            throw VersionsError.invalid(field: "ena.files", reason: "does not pin '\(ena.buildDirectory)/Makefile'")
        }
    }

    public func validate() throws {
        guard schema == Self.schemaVersion else { throw VersionsError.invalid(field: "schema", reason: Self.schemaReason(schema)) }
        for (field, url, schemes) in [
            ("mirrors.download", mirrors.download, ["https", "http", "file"]),
            ("mirrors.image", mirrors.image, ["http", "https"]),
            ("mirrors.imageCommented", mirrors.imageCommented, ["http", "https"]),
            ("ena.url", ena.url, ["https"]),
        ] {
            try Self.requireURL(url, schemes: schemes, field: field)
        }
        for (i, url) in mirrors.downloadAlternatives.enumerated() {
            try Self.requireURL(url, schemes: ["https", "http", "file"], field: "mirrors.downloadAlternatives[\(i)]")
        }
        guard ena.version.range(of: #"^\d+\.\d+\.\d+$"#, options: .regularExpression) != nil else {
            throw VersionsError.invalid(field: "ena.version", reason: "'\(ena.version)' is not a version like 2.9.1")
        }
        try validateENAPin()
        guard !releases.isEmpty else { throw VersionsError.invalid(field: "releases", reason: "is empty") }
        var seen = Set<String>()
        for (i, r) in releases.enumerated() {
            let at = "releases[\(i)]"
            guard r.release.range(of: #"^6\.(\d|10)$"#, options: .regularExpression) != nil else {
                throw VersionsError.invalid(field: "\(at).release", reason: "'\(r.release)' is not a CentOS 6 release (6.0 to 6.10)")
            }
            guard seen.insert(r.release).inserted else { throw VersionsError.invalid(field: "\(at).release", reason: "'\(r.release)' appears twice") }
            guard r.kernel.range(of: #"^2\.6\.32-\d+(\.\d+)*\.el6$"#, options: .regularExpression) != nil else {
                throw VersionsError.invalid(field: "\(at).kernel", reason: "'\(r.kernel)' is not a CentOS 6 kernel version like 2.6.32-696.el6")
            }
            // An updates kernel of a minor release keeps its GA kernel's number (696 -> 696.30.1).
            if let updates = r.updatesKernel,
                !updates.hasPrefix(String(r.kernel.dropLast(".el6".count)) + ".")
                    || updates.range(of: #"^2\.6\.32-\d+(\.\d+)+\.el6$"#, options: .regularExpression) == nil
            {
                throw VersionsError.invalid(field: "\(at).updatesKernel", reason: "'\(updates)' is not an update of \(r.kernel) (like 2.6.32-696.30.1.el6)")
            }
            if r.ena.eligible {
                guard r.ena.reason == nil else { throw VersionsError.invalid(field: "\(at).ena.reason", reason: "is set although the release is eligible") }
            } else {
                guard let reason = r.ena.reason, !reason.isEmpty else {
                    throw VersionsError.invalid(field: "\(at).ena.reason", reason: "is missing; say why ENA cannot be built for \(r.release)")
                }
            }
            var variants = Set<String>()
            for (j, ami) in r.amis.enumerated() {
                let aat = "\(at).amis[\(j)]"
                guard ami.id.range(of: "^ami-[0-9a-f]{8}([0-9a-f]{9})?$", options: .regularExpression) != nil else {
                    throw VersionsError.invalid(field: "\(aat).id", reason: "'\(ami.id)' is not an AMI id")
                }
                guard ["plain", "ena"].contains(ami.variant) else {
                    throw VersionsError.invalid(field: "\(aat).variant", reason: "'\(ami.variant)' must be 'plain' or 'ena'")
                }
                guard ami.region.range(of: "^[a-z]{2}(-[a-z]+)+-\\d$", options: .regularExpression) != nil else {
                    throw VersionsError.invalid(field: "\(aat).region", reason: "'\(ami.region)' is not an AWS region")
                }
                guard variants.insert("\(ami.region)/\(ami.variant)").inserted else {
                    throw VersionsError.invalid(field: "\(aat).variant", reason: "a second '\(ami.variant)' AMI for \(ami.region)")
                }
                if ami.variant == "ena" && !r.ena.eligible {
                    throw VersionsError.invalid(field: "\(aat).variant", reason: "an ENA AMI for \(r.release), which is not ENA-eligible")
                }
            }
        }
    }

    static func requireURL(_ text: String, schemes: [String], field: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme, schemes.contains(scheme), scheme == "file" || url.host != nil else {
            throw VersionsError.invalid(field: field, reason: "'\(text)' is not a \(schemes.joined(separator: "/")) URL")
        }
    }

    /// The release, or an error listing the valid ones.
    public func require(_ name: String) throws -> Release {
        guard let r = release(name) else { throw VersionsError.unknownRelease(name, valid: releaseNames) }
        return r
    }
}
