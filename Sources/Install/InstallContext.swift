import Disk
import Fetch
import Foundation
import Host
import Repository
import Signature
import Templates
import Verdict
import Versions

/// What the steps share: options, the runner, the log, the cleanup stack, and
/// the install's state in phases (Phases.swift): each a value one step makes
/// and the later steps read through an accessor that throws, naming that step,
/// when it was not made.
// Unchecked: the steps run one after another on one thread; parallel work inside a step only reads it.
public final class InstallContext: @unchecked Sendable {
    public let options: InstallOptions
    /// versions.json's entry for the release, as asked (the plan's may carry the updates kernel).
    public let release: VersionsFile.Release
    public let versions: VersionsFile
    public let runner: CommandRunner
    public let log: Log
    public let cleanup: CleanupStack

    /// The new filesystem's UUID (the options' fixed one, else a fresh random one), chosen up front: it names the work directory and scratch trees.
    public let filesystemUUID: String
    /// Private directory for this target's mounts.
    public let workDir: String
    /// Where the target's filesystem is mounted (by the mount step; `mounted` reads it).
    public var rootPath: String { workDir + "/root" }
    /// The target's locks (`TargetIdentity`), held until the end.
    public var locks: [FileLock] = []
    /// What this run holds, for `cleanup --local` after a run that could not unwind (nil: dry run, tests).
    public var journal: RunJournal?
    /// Set when the run ends with something still held (a failed undo, --keep-on-error): its journal stays.
    public var leftovers = false
    /// Installed after Core, besides the pinned kernel (as the original), plus acpid
    /// and ntp unless `--minimal` (see `init`).
    public let extraPackages: [String]

    // MARK: phases, in the order their steps run (each `…IfMade` set once, by the step named in its accessor)

    /// What preflight found the target to be.
    public internal(set) var targetIfMade: TargetKind?
    public var target: TargetKind { get throws { try targetIfMade.made("target", by: "preflight") } }

    var enaSourceIfMade: ENASourceTree?
    var enaSource: ENASourceTree { get throws { try enaSourceIfMade.made("checked ENA source", by: "ena-source") } }

    public internal(set) var repositoriesIfMade: Repositories?
    public var repositories: Repositories { get throws { try repositoriesIfMade.made("repository metadata", by: "fetch-metadata") } }

    public internal(set) var planIfMade: PackagePlan?
    public var plan: PackagePlan { get throws { try planIfMade.made("package plan", by: "resolve") } }

    var enaBuildSetIfMade: [RepoPackage]?
    /// gcc, make, rpm-build, kernel-devel-<kernel> and their closure (`--ena` only).
    var enaBuildSet: [RepoPackage] { get throws { try enaBuildSetIfMade.made("ENA build set", by: "ena-resolve") } }

    public internal(set) var downloadsIfMade: Downloads?
    public var downloads: Downloads { get throws { try downloadsIfMade.made("downloaded packages", by: "download") } }

    public internal(set) var verifiedIfMade: VerifiedPackages?
    public var verified: VerifiedPackages { get throws { try verifiedIfMade.made("verified packages", by: "verify-packages") } }

    var kmodIfMade: BuiltKmod?
    var kmod: BuiltKmod { get throws { try kmodIfMade.made("kmod-ena package", by: "ena-build") } }

    public internal(set) var diskIfMade: AttachedDisk?
    public var disk: AttachedDisk { get throws { try diskIfMade.made("target device", by: "attach-loop") } }
    /// The whole-disk device being written.
    public var device: String { get throws { try disk.device } }

    /// The partition the filesystem goes on.
    public internal(set) var partitionIfMade: String?
    public var partition: String { get throws { try partitionIfMade.made("partition", by: "partition") } }

    public internal(set) var mountedIfMade: RootTree?
    /// The target's filesystem, mounted at `rootPath`.
    public var mounted: RootTree { get throws { try mountedIfMade.made("mounted target filesystem", by: "mount") } }
    public var root: String { get throws { try mounted.root } }

    public internal(set) var installedIfMade: InstalledPackages?
    public var installed: InstalledPackages { get throws { try installedIfMade.made("installed packages", by: "install-packages") } }

    var enaInstallIfMade: InstalledKmod?
    var enaInstall: InstalledKmod { get throws { try enaInstallIfMade.made("installed kmod-ena", by: "ena-install") } }
    /// With `--ena`, kmod-ena is in the target (the grub line gets net.ifnames=0).
    public var enaInstalled: Bool { get throws { guard options.ena else { return false }; _ = try enaInstall; return true } }

    /// Used bytes of the target filesystem once clean (0 in a dry run), for the summary.
    public internal(set) var bytesOnVolumeIfMade: UInt64?
    public var bytesOnVolume: UInt64 { get throws { try bytesOnVolumeIfMade.made("measure of the clean filesystem", by: "clean") } }

    /// Where the built image boots (Xen, Nitro), read from its filesystem (not in a dry run).
    public internal(set) var bootVerdictIfMade: BootVerdict?
    public var bootVerdict: BootVerdict { get throws { try bootVerdictIfMade.made("boot verdict", by: "boot-verdict") } }

    /// The rpm database of the image: install-packages' and, with `--ena`, kmod-ena.
    public var imagePackages: [InstalledPackage] { get throws { try installed.packages + (options.ena ? try enaInstall.packages : []) } }

    private var fetcher: Fetcher?
    private var key: PinnedKey?

    /// `filesystemUUID` defaults to the options' (a fresh random UUID when none is given).
    public init(options: InstallOptions, versions: VersionsFile, runner: CommandRunner, log: Log) throws {
        self.options = options
        let uuid = options.filesystemUUID ?? UUID().uuidString.lowercased()
        self.filesystemUUID = uuid
        self.workDir = "\(options.workDirectory)/\(options.release)-\(uuid.prefix(8))"
        self.versions = versions
        self.release = try versions.require(options.release)
        self.runner = runner
        self.log = log
        self.cleanup = CleanupStack(log: log)
        self.extraPackages = ["xfsprogs", "grub"] + (options.minimal ? [] : Services.packages)
    }

    /// Names a scratch directory of this run under the cache: `6.9-0b7e0f2a` (`tag` goes before the UUID: `6.9-ena-0b7e`).
    func stamp(tag: String = "") -> String { "\(options.release)-\((tag + filesystemUUID).prefix(8))" }

    /// One fetcher per install, on the shared cache; progress on a terminal only.
    public func makeFetcher() throws -> Fetcher {
        if let fetcher { return fetcher }
        let log = self.log
        let cache = try DownloadCache(root: URL(fileURLWithPath: options.cacheDirectory), lockWait: options.lockWait, lockNotice: { log.say($0) })
        let onTerminal = isatty(2) == 1
        var fetchOptions = FetchOptions()
        fetchOptions.lowSpeedLimit = options.lowSpeedLimit
        fetchOptions.lowSpeedTime = options.lowSpeedTime
        // Which mirror served a file when it is not the first: one line per file, in the log.
        fetchOptions.note = { log.write($0) }
        let made = Fetcher(
            cache: cache, maxConnections: options.connections, options: fetchOptions,
            progress: onTerminal
                ? { progress in
                    Output.stderr(("\r\u{1B}[K" + log.prefix + "download: " + progress.line))
                    if progress.filesDone == progress.filesTotal { Output.stderr("\n") }
                } : nil)
        fetcher = made
        return made
    }

    /// The pinned key: `--gpg-key` or the embedded CentOS 6 key.
    public func pinnedKey() throws -> PinnedKey {
        if let key { return key }
        let made = try options.gpgKeyPath.map { try PinnedKey(path: $0) } ?? PinnedKey.embeddedCentOS6()
        key = made
        return made
    }

    /// The same key as armored text, for the chroot's `rpm --import` and yum's gpgkey=.
    public func pinnedKeyArmored() throws -> String {
        guard let path = options.gpgKeyPath else { return embeddedCentOS6KeyArmored }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains("BEGIN PGP PUBLIC KEY BLOCK") else {
            throw InstallError.gpgKeyNotArmored(path: path)
        }
        return text
    }

    /// The upstream the chroot's yum falls back to: the tool's mirror when it is
    /// plain http, else the image mirror of versions.json (CentOS 6's NSS cannot
    /// speak modern TLS, which is why every package is verified by signature).
    public var chrootUpstream: String {
        let mirror = options.mirror.lowercased().hasPrefix("http://") ? options.mirror : versions.mirrors.image
        return (try? ReleaseRepository.baseURL(mirror: mirror, release: options.release).absoluteString) ?? mirror
    }

    /// The updates repository's upstream for the chroot's yum (as chrootUpstream).
    public var chrootUpdatesUpstream: String {
        let mirror = options.mirror.lowercased().hasPrefix("http://") ? options.mirror : versions.mirrors.image
        return (try? ReleaseRepository.baseURL(mirror: mirror, release: options.release, repo: "updates").absoluteString) ?? mirror
    }

    /// Writes a file of the tool's own making (the dry-run printer prints it instead). Atomic, with `mode`.
    public func write(_ text: String, to path: String, mode: Int) throws {
        try runner.writeFile(text, to: path, mode: mode)
    }

    /// A comment line of the dry-run plan, a line of the real run's log.
    public func note(_ text: String) { runner.note(text) }

}
