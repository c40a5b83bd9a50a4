import Fetch
import Foundation
import Host

/// One release's `os` (or `updates`) repository: `<mirror>/<release>/os/x86_64/`, its
/// metadata fetched, checked against repomd.xml and parsed. The verbatim
/// metadata files are kept in the cache's metadata directory so that a local
/// mirror for the chroot's yum can carry them unchanged.
public struct ReleaseRepository: Sendable {
    /// `<mirror>/<release>/os/x86_64/` (ends with a slash).
    public var baseURL: URL
    public var repomd: RepoMD
    public var packages: [RepoPackage]
    public var comps: Comps?
    /// Holds `repodata/repomd.xml` and every data file repomd names, verified.
    public var metadataDirectory: URL
    /// The same repository on the alternative mirrors whose repomd.xml agrees
    /// with `repomd` (`RepoMD.disagreement`): packages fail over to them in this order.
    public var alternativeBaseURLs: [URL] = []
    /// The mirror (as given) that served the metadata: the primary unless it failed.
    public var metadataMirror: String?

    /// The repository URL of a release on a mirror.
    public static func baseURL(mirror: String, release: String, repo: String = "os") throws -> URL {
        let trimmed = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
        guard let url = URL(string: "\(trimmed)/\(release)/\(repo)/x86_64/") else { throw FetchError.unsupportedURL(url: mirror) }
        return url
    }

    /// Fetches repomd.xml (no checksum of its own: size-limited), then primary
    /// and the comps group file, each checked against repomd's size and checksum.
    public static func fetch(mirror: String, release: String, repo: String = "os", fetcher: Fetcher) throws -> ReleaseRepository {
        try fetch(mirrors: [mirror], release: release, repo: repo, fetcher: fetcher)
    }

    /// One repomd.xml answer: the mirror's repository URL, the bytes and their parse.
    struct RepomdAnswer {
        var mirror: String
        var base: URL
        var data: Data
        var repomd: RepoMD
    }

    /// The same with failover: `mirrors[0]` is the primary, the rest alternatives.
    /// Every mirror's repomd.xml is read; the first that answers is the release's
    /// metadata mirror, and ALL the metadata comes from its repomd (so two
    /// revisions are never mixed: every data file and package is pinned by a
    /// checksum of that one repomd). An alternative whose repomd disagrees (another
    /// revision, other checksums) is not used for this repository, and one that
    /// did not answer is not either; `note` says which mirror serves the
    /// metadata when it is not the primary, and why each alternative is left out.
    public static func fetch(
        mirrors: [String], release: String, repo: String = "os", fetcher: Fetcher,
        note: (String) -> Void = { _ in }
    ) throws -> ReleaseRepository {
        precondition(!mirrors.isEmpty, "ReleaseRepository.fetch needs a mirror")
        var answers: [RepomdAnswer] = []
        var failures: [(mirror: String, error: Error)] = []
        for mirror in mirrors {
            let base = try baseURL(mirror: mirror, release: release, repo: repo)
            do {
                let data = try fetcher.fetchSmall(url: base.appendingPathComponent("repodata/repomd.xml"), expected: nil, sizeLimit: 1 << 20)
                answers.append(
                    RepomdAnswer(mirror: mirror, base: base, data: data, repomd: try RepoMD.parse(data, name: base.absoluteString + "repodata/repomd.xml")))
            } catch let error as FetchError where mirrors.count > 1 {
                failures.append((mirror, error))
            } catch let error as RepositoryError where mirrors.count > 1 {
                failures.append((mirror, error))
            }
        }
        guard let chosen = answers.first else {
            throw failures.count == 1
                ? failures[0].error
                : RepositoryError.metadata(
                    file: "\(release)/\(repo)/x86_64/repodata/repomd.xml",
                    reason: "no mirror serves it: " + failures.map { "\($0.mirror): \($0.error)" }.joined(separator: "; "))
        }
        if chosen.base != (try baseURL(mirror: mirrors[0], release: release, repo: repo)) {
            note(
                "mirror failover: the metadata of \(release)/\(repo) from the alternative \(chosen.base.absoluteString) ("
                    + failures.map { "\($0.mirror) failed: \($0.error)" }.joined(separator: "; ") + ")")
        }
        var agreeing: [URL] = []
        for other in answers.dropFirst() {
            if let why = chosen.repomd.disagreement(with: other.repomd) {
                note(
                    "mirror \(other.base.absoluteString) is not used for \(release)/\(repo): its repomd.xml \(why) as on \(chosen.base.absoluteString), which serves the metadata"
                )
            } else {
                agreeing.append(other.base)
            }
        }
        for failure in failures where answers.count > 0 && failure.mirror != mirrors[0] {
            note("mirror \(failure.mirror) is not used for \(release)/\(repo): its repomd.xml could not be read (\(failure.error))")
        }
        var made = try fetch(answer: chosen, release: release, fetcher: fetcher, alternatives: agreeing)
        made.alternativeBaseURLs = agreeing
        made.metadataMirror = chosen.mirror
        return made
    }

    /// The metadata files `answer`'s repomd names, from its mirror (or an agreeing alternative).
    static func fetch(answer: RepomdAnswer, release: String, fetcher: Fetcher, alternatives: [URL]) throws -> ReleaseRepository {
        let base = answer.base, repomd = answer.repomd, repomdData = answer.data
        guard let primary = repomd.primary else {
            throw RepositoryError.metadata(file: base.absoluteString + "repodata/repomd.xml", reason: "names no primary data")
        }
        let dir = try fetcher.cache.metadataDirectory(release: release, mirror: base)
        try write(repomdData, to: dir.appendingPathComponent("repodata/repomd.xml"))
        // Every data file repomd names (filelists, other, sqlite variants too): the local
        // mirror the chroot's yum reads carries repomd.xml verbatim, so all it names must be there.
        let wanted = [primary] + repomd.files.values.filter { $0.location != primary.location }.sorted { $0.location < $1.location }
        let remote = wanted.map { file in
            RemoteFile(
                url: base.appendingPathComponent(file.location), size: Int64(file.size ?? 64 << 20), checksum: file.checksum, sizeIsExact: file.size != nil,
                alternatives: alternatives.map { $0.appendingPathComponent(file.location) })
        }
        // Sizes from repomd are limits; without one, 64 MiB bounds a hostile body.
        let paths = try fetcher.fetch(remote)
        var contents: [String: Data] = [:]
        for (file, path) in zip(wanted, paths) {
            let data = try Data(contentsOf: path)
            try Metadata.verify(data: data, against: file)
            try write(data, to: dir.appendingPathComponent(file.location))
            contents[file.type] = data
        }
        let packages = try Metadata.loadPrimary(contents[primary.type]!, file: primary)
        var comps: Comps?
        if let group = repomd.group, let data = contents[group.type] {
            let raw = try Metadata.decompress(data, name: group.location)
            try Metadata.verifyOpen(data: raw, against: group)
            comps = try Comps.parse(raw, name: group.location)
        }
        return ReleaseRepository(baseURL: base, repomd: repomd, packages: packages, comps: comps, metadataDirectory: dir)
    }

    static func write(_ data: Data, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(data, to: url.path)
    }

    /// The remote file of a package (its size is the download limit).
    public func remoteFile(_ package: RepoPackage) -> RemoteFile {
        RemoteFile(
            url: baseURL.appendingPathComponent(package.location), size: Int64(package.packageSize), checksum: package.checksum,
            alternatives: alternativeBaseURLs.map { $0.appendingPathComponent(package.location) })
    }

    /// Metadata files (relative paths) kept in `metadataDirectory`: repomd.xml and all it names.
    public var keptMetadata: [String] {
        ["repodata/repomd.xml"] + repomd.files.values.map(\.location).sorted()
    }
}
