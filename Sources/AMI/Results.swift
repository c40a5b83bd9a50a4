import Foundation
import Host
import Versions
#if canImport(Glibc)
    import Glibc
#endif

/// The two images a release can have: without and with the ENA driver (the README's `(*1)`).
public enum AMIVariant: String, Codable, Sendable, CaseIterable {
    case plain
    case ena
}

/// One registered AMI as the results file records it.
public struct AMIRecord: Codable, Equatable, Sendable {
    public var release: String
    public var region: String
    public var variant: AMIVariant
    public var amiId: String
    /// The snapshot behind the AMI (for a copy: the copy's own snapshot when known).
    public var snapshotId: String
    public var name: String
    /// ISO 8601, UTC.
    public var date: String
    public var buildId: String
    /// For a copy: the AMI it was copied from.
    public var copiedFrom: String?
    public var `public`: Bool
    /// The build's package manifest (`IMAGE.manifest.json`), when register knew it.
    public var manifest: String?
    /// The build's SPDX SBOM (`IMAGE.spdx.json`), when register knew it.
    public var sbom: String?
    /// Where the image boots (`xen,nitro`, `xen`), when `register` read it from the image; nil when taken on trust.
    public var bootsOn: String?

    public init(
        release: String, region: String, variant: AMIVariant, amiId: String, snapshotId: String, name: String,
        date: String, buildId: String, copiedFrom: String? = nil, public isPublic: Bool = false, bootsOn: String? = nil
    ) {
        self.bootsOn = bootsOn
        self.release = release
        self.region = region
        self.variant = variant
        self.amiId = amiId
        self.snapshotId = snapshotId
        self.name = name
        self.date = date
        self.buildId = buildId
        self.copiedFrom = copiedFrom
        self.public = isPublic
    }

    public var tableEntry: AMIEntry { AMIEntry(release: release, region: region, variant: variant.rawValue, id: amiId, bootsOn: bootsOn) }
}

/// The results file: every AMI `register` made, merged across runs (batch jobs write it concurrently).
public struct ResultsFile: Codable, Equatable, Sendable {
    public var schema: Int
    public var amis: [AMIRecord]
    public init(schema: Int = 1, amis: [AMIRecord] = []) {
        self.schema = schema
        self.amis = amis
    }

    /// Adds records; one with the same region and AMI id replaces the old one in place.
    public func merging(_ records: [AMIRecord]) -> ResultsFile {
        var out = self
        for record in records {
            if let i = out.amis.firstIndex(where: { $0.region == record.region && $0.amiId == record.amiId }) {
                out.amis[i] = record
            } else {
                out.amis.append(record)
            }
        }
        return out
    }

    public static func decode(_ data: Data, path: String) throws -> ResultsFile {
        do {
            return try JSONDecoder().decode(ResultsFile.self, from: data)
        } catch {
            throw AMIError.resultsFile(path: path, reason: "not a centos6-ami results file: \(JSONProblem(error))")
        }
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try! encoder.encode(self)) + Data("\n".utf8)
    }

    public static func load(path: String) throws -> ResultsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AMIError.resultsFile(path: path, reason: "cannot be read (does it exist?)")
        }
        return try decode(data, path: path)
    }

    /// What `merge` will need, checked before anything is made in AWS: the file is
    /// absent, empty or a results file; its lock can be taken; its directory is
    /// writable (the merge writes a temporary file there and renames it over).
    public static func checkWritable(path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw AMIError.resultsFile(path: path, reason: "its directory '\(directory)' does not exist; make it or name another file with --results")
        }
        guard access(directory, W_OK) == 0 else {
            throw AMIError.resultsFile(path: path, reason: "its directory '\(directory)' is not writable; name another file with --results")
        }
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG else { throw AMIError.resultsFile(path: path, reason: "it is not a regular file") }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw AMIError.resultsFile(path: path, reason: "cannot be read: \(String(cString: strerror(errno)))")
            }
            if !data.isEmpty { _ = try decode(data, path: path) }
        }
        // An existing lock must be takable; a missing one is made by the merge (the directory is writable).
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CLOEXEC)
        if fd < 0 && errno == ENOENT { return }
        guard fd >= 0 else { throw AMIError.resultsFile(path: path, reason: "cannot open lock '\(lockPath)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // Another run holding it now is fine (merge waits); only a lock that cannot be taken at all is not.
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
        } else if errno != EWOULDBLOCK {
            throw AMIError.resultsFile(path: path, reason: "cannot lock '\(lockPath)': \(String(cString: strerror(errno)))")
        }
    }

    /// Merges `records` into the file at `path` under an exclusive lock (`PATH.lock`),
    /// writing a temporary file and renaming it over, so a reader never sees half a file
    /// and two concurrent runs never lose each other's records.
    public static func merge(_ records: [AMIRecord], into path: String) throws {
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AMIError.resultsFile(path: path, reason: "cannot open lock '\(lockPath)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw AMIError.resultsFile(path: path, reason: "cannot lock: \(String(cString: strerror(errno)))") }
        defer { flock(fd, LOCK_UN) }
        let current: ResultsFile
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty {
            current = try decode(data, path: path)
        } else {
            current = ResultsFile()
        }
        do {
            try AtomicFile.write(current.merging(records).encoded(), to: path)
        } catch let HostError.cannotWrite(_, reason) {
            throw AMIError.resultsFile(path: path, reason: "cannot write: \(reason)")
        } catch {
            throw AMIError.resultsFile(path: path, reason: "cannot write: \(error)")
        }
    }
}
