import Disk
import Fetch
import Foundation
import Host
import Repository
import Signature
import Templates
import Verdict
import Versions

/// The typed state the steps share: options, the runner, the log, the
/// cleanup stack and what earlier steps made (device, partition, mounts).
// Unchecked: the steps run one after another on one thread; parallel work inside a step only reads it.
public final class InstallContext: @unchecked Sendable {
    public let options: InstallOptions
    /// versions.json's entry; with --updates, resolve sets its kernel to the updates kernel.
    public var release: VersionsFile.Release
    public let versions: VersionsFile
    public let runner: CommandRunner
    public let log: Log
    public let cleanup: CleanupStack

    /// What preflight found the target to be.
    public var target: TargetKind?
    /// The whole-disk device being written: the block device (preflight), or the
    /// loop device of an image file (attach-loop).
    public var device: String { get throws { try made(deviceIfKnown, "target device", by: "preflight or attach-loop") } }
    public internal(set) var deviceIfKnown: String?
    /// The partition the filesystem goes on (partition).
    public var partition: String { get throws { try made(partitionIfKnown, "partition", by: "partition") } }
    public internal(set) var partitionIfKnown: String?
    /// The new filesystem's UUID (the options' fixed one, else a fresh random one), chosen up front: it names the work directory and scratch trees.
    public let filesystemUUID: String
    /// Private directory for this target's mounts.
    public let workDir: String
    public var root: String { workDir + "/root" }
    /// Cleanup-stack mark below which entries outlive the unmount step (loop device, lock); set by attach-loop.
    public internal(set) var deviceMark: Int?
    /// The target's locks (`TargetIdentity`), held until the end.
    public var locks: [FileLock] = []
    /// What this run holds, for `cleanup --local` after a run that could not unwind (nil: dry run, tests).
    public var journal: RunJournal?
    /// Set when the run ends with something still held (a failed undo, --keep-on-error): its journal stays.
    public var leftovers = false

    // Packages (PackageSteps.swift).
    public var repository: ReleaseRepository?
    /// --updates: the release's updates repository, fetched and verified like `repository`.
    public var updatesRepository: ReleaseRepository?
    public var bootstrapSet: [RepoPackage] = []
    public var installSet: [RepoPackage] = []
    /// Verified cache path of each package, by its location in the repository.
    public var cachedPaths: [String: String] = [:]
    /// What verify-packages established, by location: later steps unpack these without asking gpgv again.
    public var verifiedPackages: [String: VerifiedRPM] = [:]
    public var downloadedBytes: Int64 = 0
    public var installedPackageCount = 0
    /// The target's rpm database after the install (for the manifest).
    public var installedPackages: [InstalledPackage] = []
    /// The key id whose signature verify-packages checked, by repository location.
    public var signingKeys: [String: String] = [:]
    /// Set when kmod-ena was installed (ena-install): the grub line gets net.ifnames=0.
    public var enaInstalled = false
    /// What the ENA steps carry between them (ENASteps.swift).
    var enaState = ENAState()
    /// Used bytes of the target filesystem, measured before unmount.
    public var bytesOnVolume: UInt64 = 0
    /// Installed after Core, besides the pinned kernel (as the original), plus acpid
    /// and ntp unless `--minimal` (see `init`).
    public var extraPackages = ["xfsprogs", "grub"]
    /// Where the built image boots (Xen, Nitro), read from its filesystem by the boot-verdict step.
    public var bootVerdict: BootVerdict?
    private var fetcher: Fetcher?
    private var key: PinnedKey?

    /// `filesystemUUID` and `workDir` default to the options' (a fresh random UUID when none is given);
    /// the ENA build root, a second context, passes its own.
    public init(options: InstallOptions, versions: VersionsFile, runner: CommandRunner, log: Log,
                filesystemUUID: String? = nil, workDir: String? = nil) throws {
        self.options = options
        let uuid = filesystemUUID ?? options.filesystemUUID ?? UUID().uuidString.lowercased()
        self.filesystemUUID = uuid
        self.workDir = workDir ?? "\(options.workDirectory)/\(options.release)-\(uuid.prefix(8))"
        self.versions = versions
        self.release = try versions.require(options.release)
        self.runner = runner
        self.log = log
        self.cleanup = CleanupStack(log: log)
        if !options.minimal { extraPackages += Services.packages }
    }

    /// One fetcher per install, on the shared cache; progress on a terminal only.
    public func makeFetcher() throws -> Fetcher {
        if let fetcher { return fetcher }
        let log = self.log
        let cache = try DownloadCache(root: URL(fileURLWithPath: options.cacheDirectory), lockNotice: { log.say($0) })
        let onTerminal = isatty(2) == 1
        var fetchOptions = FetchOptions()
        fetchOptions.lowSpeedLimit = options.lowSpeedLimit
        fetchOptions.lowSpeedTime = options.lowSpeedTime
        // Which mirror served a file when it is not the first: one line per file, in the log.
        fetchOptions.note = { log.write($0) }
        let made = Fetcher(cache: cache, maxConnections: options.connections, options: fetchOptions, progress: onTerminal ? { progress in
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

    /// What an earlier step made, or an error naming that step (a step list out of order).
    func made<T>(_ value: T?, _ what: String, by step: String) throws -> T {
        guard let value else { throw InstallError.notYetMade(what, by: step) }
        return value
    }
}
