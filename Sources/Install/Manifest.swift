import Fetch
import Foundation
import Host
import Repository
import SBOM

/// One package in the target's rpm database, as `rpm -qa` reports it.
public struct InstalledPackage: Codable, Equatable, Sendable {
    public var name: String
    public var epoch: Int
    public var version: String
    public var release: String
    public var arch: String
    /// RPMTAG_LICENSE, RPMTAG_VENDOR and RPMTAG_SHA1HEADER, for the SBOMs; nil when the header has none.
    public var license: String? = nil
    public var vendor: String? = nil
    public var headerSHA1: String? = nil

    /// name-[epoch:]version-release.arch, as RepoPackage writes it.
    public var nevra: String { "\(name)-\(epoch != 0 ? "\(epoch):" : "")\(version)-\(release).\(arch)" }

    /// The query format `parse` reads: the SBOMs' (`SBOM.RPMQuery`), so the manifest and the
    /// SBOMs of an install come from one read of the rpm database.
    public static let queryFormat = RPMQuery.format

    /// Parses `rpm -qa --qf queryFormat` output (a `(none)` epoch is 0); gpg-pubkey entries
    /// (imported keys, not packages) are left out.
    public static func parse(_ text: String) -> [InstalledPackage] {
        RPMQuery.parse(text).map {
            InstalledPackage(
                name: $0.name, epoch: $0.epoch ?? 0, version: $0.version, release: $0.release, arch: $0.arch,
                license: $0.license, vendor: $0.vendor, headerSHA1: $0.headerSHA1)
        }
    }
}

/// `IMAGE.manifest.json`: what is inside a build, so "is this AMI affected by CVE X" is
/// answered without launching it. Written by install at the end of a successful build.
public struct BuildManifest: Codable, Equatable, Sendable {
    public struct Package: Codable, Equatable, Sendable {
        public var nevra: String
        public var name: String
        public var epoch: Int
        public var version: String
        public var release: String
        public var arch: String
        /// sha256 of the package file (the verified blob in the download cache); nil for a
        /// package built on the builder that no mirror serves (kmod-ena).
        public var sha256: String?
        /// Long id of the key whose signature install verified; nil when not from the mirror.
        public var signingKeyID: String?
        /// Where it came from, relative to the repository (`Packages/bash-….rpm`).
        public var location: String?
    }

    public var schema = 1
    public var release: String
    public var kernel: String
    /// Where the image boots (`xen,nitro`, `xen`), from the install's boot-verdict step; nil when it was not read.
    public var bootVerdict: String?
    /// The ENA driver version built into the image (`--ena`), else nil.
    public var enaVersion: String?
    public var mirror: String
    /// `<revision>` of the repomd.xml used.
    public var repomdRevision: String?
    public var toolVersion: String
    /// ISO 8601, UTC.
    public var created: String
    public var packages: [Package]

    /// The manifest of a build from what the install knows: the rpm database's packages, matched
    /// to the repository packages they were installed from (checksum, verified signing key).
    /// `sha256` gives the sha256 of a repository package (the metadata's own, or computed for a
    /// SHA-1 repository).
    public static func make(
        release: String, kernel: String, mirror: String, repomdRevision: String?, toolVersion: String,
        enaVersion: String?, bootVerdict: String? = nil, created: Date, installed: [InstalledPackage], repository: [RepoPackage],
        signingKeys: [String: String], sha256: (RepoPackage) throws -> String
    ) rethrows -> BuildManifest {
        var byNEVRA: [String: RepoPackage] = [:]
        for package in repository where byNEVRA[package.nevra] == nil { byNEVRA[package.nevra] = package }
        let packages = try installed.sorted { ($0.name, $0.nevra) < ($1.name, $1.nevra) }.map { p -> Package in
            let source = byNEVRA[p.nevra]
            return Package(
                nevra: p.nevra, name: p.name, epoch: p.epoch, version: p.version, release: p.release, arch: p.arch,
                sha256: try source.map(sha256), signingKeyID: source.flatMap { signingKeys[$0.location] }, location: source?.location)
        }
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return BuildManifest(
            release: release, kernel: kernel, bootVerdict: bootVerdict, enaVersion: enaVersion, mirror: mirror,
            repomdRevision: repomdRevision, toolVersion: toolVersion, created: f.string(from: created), packages: packages)
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try! encoder.encode(self)) + Data("\n".utf8)
    }

    /// Where install writes it: `IMAGE.manifest.json` next to an image file (`.img` dropped),
    /// else next to the log (`LOG.manifest.json`, `.log` dropped).
    public static func path(imageFile: String?, logPath: String) -> String { basePath(imageFile: imageFile, logPath: logPath) + ".manifest.json" }

    /// What the manifest's and the SBOMs' names start with: the image file without `.img`,
    /// else the log without `.log`.
    public static func basePath(imageFile: String?, logPath: String) -> String {
        if let image = imageFile { return image.hasSuffix(".img") ? String(image.dropLast(4)) : image }
        return logPath.hasSuffix(".log") ? String(logPath.dropLast(4)) : logPath
    }
}

extension InstallContext {
    /// This build's manifest (after a successful pipeline).
    public func manifest(toolVersion: String, created: Date = Date()) throws -> BuildManifest {
        let plan = try plan, downloads = try downloads
        let paths = downloads.cachedPaths
        return try BuildManifest.make(
            release: options.release, kernel: plan.kernel, mirror: plan.repository.metadataMirror ?? options.mirror,
            repomdRevision: plan.repository.repomd.revision,
            toolVersion: toolVersion, enaVersion: try enaInstalled ? versions.ena.version : nil, bootVerdict: try bootVerdict.bootsOn, created: created,
            installed: try imagePackages, repository: downloads.packages, signingKeys: try verified.signingKeys,
            sha256: { package in
                if package.checksum.kind == .sha256 { return package.checksum.hex }
                return try Checksum.of(file: paths[package.location] ?? "", kind: .sha256).hex
            })
    }
}
