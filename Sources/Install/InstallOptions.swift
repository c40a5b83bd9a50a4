import Disk
import Foundation
import Host
import Versions

/// Everything `install` was asked to do, validated before the first write.
public struct InstallOptions: Sendable {
    public var release: String
    public var target: String
    public var yumCache: YumCache = .tmpfs(bytes: YumCache.defaultTmpfsBytes)
    /// Where the tool downloads from: `<mirror>/<release>/os/x86_64/`.
    public var mirror: String
    /// Tried in order for a file `mirror` cannot serve (`--mirror` given again, or
    /// versions.json's `mirrors.downloadAlternatives` when no `--mirror` is given).
    public var alternativeMirrors: [String] = []
    /// `mirror` then the alternatives.
    public var mirrors: [String] { [mirror] + alternativeMirrors }
    /// Size of an image file created for a missing TARGET.
    public var imageSize: UInt64 = InstallOptions.defaultImageSize
    public static let defaultImageSize: UInt64 = 8 << 30
    /// `--size` was given: an existing image file must then have exactly that size.
    public var sizeGiven = false
    /// A transfer slower than `lowSpeedLimit` bytes/s over `lowSpeedTime` seconds fails
    /// (curl's --speed-limit/--speed-time): a mirror that trickles cannot hang the install.
    public var lowSpeedLimit: Int = 1000
    public var lowSpeedTime: Double = 30
    public var dryRun = false
    public var logPath: String?
    public var keepOnError = false
    /// Replaces the embedded CentOS 6 key (the tests use the test vault's key).
    public var gpgKeyPath: String?
    /// Stop (and unwind normally) after this step: for inspection and benchmarks.
    public var stopAfter: String?
    /// Seconds to keep everything in place after `stopAfter`'s step before unwinding.
    public var holdSeconds: Double = 0
    /// Parent of the private per-target mount directories.
    public var workDirectory = "/run/centos6-ami"
    /// Fixed filesystem UUID (tests); a fresh random one per image otherwise.
    public var filesystemUUID: String?
    public var lockDirectory = "/run/lock/centos6-ami"
    /// The verified download cache on the builder (never on the target).
    public var cacheDirectory = "/var/cache/centos6-ami"
    /// How long to wait for a cache file's lock another run holds (`CENTOS6_AMI_LOCK_WAIT`, seconds).
    public var lockWait: TimeInterval = FileLock.defaultWait
    /// Parallel downloads.
    public var connections = 8
    /// Build ENA (versions.json's pin) for the release's kernel and install it as kmod-ena (ENASteps.swift).
    public var ena = false
    /// `--minimal`: the original script's package set (no acpid, no ntp).
    public var minimal = false
    /// `--updates`: the release's updates repository too (`<release>/updates/x86_64/`),
    /// so the image gets the newest kernel and packages of that minor release.
    public var updates = false
    /// `--ena-source FILE|DIR`: the ENA release archive or an extracted amzn-drivers tree
    /// (default: download versions.json's pinned URL). Always checked against versions.json's file list.
    public var enaSource: String?
    /// `--ena-share DIR` (batch): one kmod-ena build per release and pin, reused by the other installs.
    public var enaShareDirectory: String?

    public init(release: String, target: String, mirror: String) {
        self.release = release
        self.target = target
        self.mirror = mirror
    }

    /// The mirrors to use, the primary first: the `--mirror`s given, in order
    /// (duplicates dropped), else versions.json's download mirror and its alternatives.
    /// Given mirrors replace versions.json's entirely: a run against a private or
    /// test mirror never reaches out to the public vaults.
    public static func mirrorList(given: [String], versions: VersionsFile.Mirrors) -> [String] {
        let list = given.isEmpty ? [versions.download] + versions.downloadAlternatives : given
        var seen = Set<String>()
        return list.filter { seen.insert($0).inserted }
    }

    /// `--mirror`: http, https or file URLs only.
    public static func validateMirror(_ text: String) -> String? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https", "file"].contains(scheme) else {
            return "mirror '\(text)' is not an http://, https:// or file:// URL"
        }
        if scheme != "file" && (url.host ?? "").isEmpty { return "mirror '\(text)' has no host" }
        return nil
    }
}
