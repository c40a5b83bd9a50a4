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

    /// The repository URL of a release on a mirror.
    public static func baseURL(mirror: String, release: String, repo: String = "os") throws -> URL {
        let trimmed = mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror
        guard let url = URL(string: "\(trimmed)/\(release)/\(repo)/x86_64/") else { throw FetchError.unsupportedURL(url: mirror) }
        return url
    }

    /// Fetches repomd.xml (no checksum of its own: size-limited), then primary
    /// and the comps group file, each checked against repomd's size and checksum.
    public static func fetch(mirror: String, release: String, repo: String = "os", fetcher: Fetcher) throws -> ReleaseRepository {
        let base = try baseURL(mirror: mirror, release: release, repo: repo)
        let repomdData = try fetcher.fetchSmall(url: base.appendingPathComponent("repodata/repomd.xml"), expected: nil, sizeLimit: 1 << 20)
        let repomd = try RepoMD.parse(repomdData, name: base.absoluteString + "repodata/repomd.xml")
        guard let primary = repomd.primary else {
            throw RepositoryError.metadata(file: base.absoluteString + "repodata/repomd.xml", reason: "names no primary data")
        }
        let dir = try fetcher.cache.metadataDirectory(release: release, mirror: base)
        try write(repomdData, to: dir.appendingPathComponent("repodata/repomd.xml"))
        // Every data file repomd names (filelists, other, sqlite variants too): the local
        // mirror the chroot's yum reads carries repomd.xml verbatim, so all it names must be there.
        let wanted = [primary] + repomd.files.values.filter { $0.location != primary.location }.sorted { $0.location < $1.location }
        let remote = wanted.map { RemoteFile(url: base.appendingPathComponent($0.location), size: Int64($0.size ?? 64 << 20), checksum: $0.checksum, sizeIsExact: $0.size != nil) }
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
        try data.write(to: url, options: .atomic)
    }

    /// The remote file of a package (its size is the download limit).
    public func remoteFile(_ package: RepoPackage) -> RemoteFile {
        RemoteFile(url: baseURL.appendingPathComponent(package.location), size: Int64(package.packageSize), checksum: package.checksum)
    }

    /// Metadata files (relative paths) kept in `metadataDirectory`: repomd.xml and all it names.
    public var keptMetadata: [String] {
        ["repodata/repomd.xml"] + repomd.files.values.map(\.location).sorted()
    }
}
