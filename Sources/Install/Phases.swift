import Disk
import Foundation
import Host
import Repository
import Signature
import Verdict
import Versions

// The install's state in phases: each value below is made whole by ONE step
// and only read by the steps after it (InstallContext's throwing accessors say
// which step should have made a value that is missing). In a dry run the steps
// that read the world back still make their value, with placeholders (no
// cached paths, no verified packages, no installed packages).

/// fetch-metadata: the release's repository and, with --updates, its updates
/// repository, each file checked against its repomd.
public struct Repositories: Sendable {
    public var os: ReleaseRepository
    public var updates: ReleaseRepository?
}

/// resolve: what goes into the target and from where.
public struct PackagePlan: Sendable {
    /// versions.json's release; with --updates its kernel is the updates repository's newest.
    public var release: VersionsFile.Release
    public var repositories: Repositories
    /// The closure of yum, rpm, bash, coreutils... that is unpacked first.
    public var bootstrapSet: [RepoPackage]
    /// What the target's yum installs (Core, the pinned kernel, the extra packages).
    public var installSet: [RepoPackage]

    public var repository: ReleaseRepository { repositories.os }
    public var updatesRepository: ReleaseRepository? { repositories.updates }
    public var kernel: String { release.kernel }

    /// The repository a resolved package is downloaded from.
    func source(of package: RepoPackage) -> ReleaseRepository {
        if let updates = repositories.updates, updates.packages.contains(where: { $0.location == package.location }) { return updates }
        return repositories.os
    }
}

/// download: every package of the plan (and of the ENA build root), once, in the verified cache.
public struct Downloads: Sendable {
    /// In the order they were fetched: the bootstrap set, the install set, the ENA build set.
    public var packages: [RepoPackage]
    /// Verified cache path of each package, by its location in the repository (none in a dry run).
    public var cachedPaths: [String: String] = [:]
    /// Bytes fetched from the mirror by this run (0 when everything was cached).
    public var downloadedBytes: Int64 = 0
}

/// verify-packages: what was established for each package, so later steps unpack without asking gpgv again.
public struct VerifiedPackages: Sendable {
    /// By location (none in a dry run).
    public var byLocation: [String: VerifiedRPM] = [:]
    /// The key id whose signature was checked, by location.
    public var signingKeys: [String: String] = [:]
}

/// attach-loop: the whole-disk device being written (the block device itself, or
/// the image file's loop device) and the cleanup-stack mark below which entries
/// outlive the unmount step (the loop device, the locks).
public struct AttachedDisk: Sendable {
    public var device: String
    public var cleanupMark: Int
}

/// A tree the install fills with CentOS through its own rpm and yum: the
/// target's mounted filesystem (made by the mount step), or the ENA build
/// root on the builder (ENASteps), each with its own mounts' cleanup stack.
public struct RootTree: Sendable {
    /// The top of the tree.
    public var root: String
    /// Private space beside it (the target's resolv.conf is kept here meanwhile).
    public var workDir: String
    /// Where the undos of its mounts go.
    public var cleanup: CleanupStack
    /// Names its scratch directories under the cache (`6.9-0b7e0f2a`).
    public var stamp: String
}

/// install-packages: the target's rpm database after the transaction (for the
/// manifest and the SBOMs; empty in a dry run).
public struct InstalledPackages: Sendable {
    public var packages: [InstalledPackage] = []
}
