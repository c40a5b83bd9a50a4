import Foundation
import Host

/// Where the ENA source comes from and how it is brought onto the builder:
/// always into a private scratch directory of ours (never the target, never
/// the user's directory in place), then pin-checked there.
public enum ENASource: Equatable, Sendable {
    /// A release archive (`.tar.gz`) of amzn-drivers.
    case archive(String)
    /// An extracted amzn-drivers tree (holding `kernel/linux/ena`).
    case directory(String)
    /// The pinned URL of versions.json (builders with internet).
    case download(String)

    /// `--ena-source FILE|DIR`, or the pinned URL without it.
    public static func from(option: String?, pinnedURL: String) throws -> ENASource {
        guard let path = option else { return .download(pinnedURL) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ENAError.sourceMissing(path: path)
        }
        return isDirectory.boolValue ? .directory(path) : .archive(path)
    }

    public var description: String {
        switch self {
        case let .archive(path), let .directory(path): return path
        case let .download(url): return url
        }
    }

    /// The commands that put the source under `scratch/source` (an archive is
    /// first downloaded to `scratch/ena.tar.gz`). GNU tar refuses members with
    /// `..` and strips leading `/`; ownership is ours, not the archive's. From
    /// a tree (an extracted release or a git checkout) only `directories` are
    /// copied, each at its relative path, so `../common/ena_com` still resolves.
    /// A download slower than `lowSpeedLimit` bytes/s over `lowSpeedTime` seconds fails
    /// (install's --speed-limit/--speed-time), so a stalled server cannot hang the build.
    public func fetchCommands(scratch: String, directories: [String], lowSpeedLimit: Int = 1000, lowSpeedTime: Int = 30) -> [Command] {
        let into = scratch + "/source"
        switch self {
        case let .archive(path):
            return [
                Command("mkdir", ["-p", into]),
                Command("tar", ["-xzf", path, "-C", into, "--no-same-owner", "--no-same-permissions"]),
            ]
        case let .download(url):
            return [
                Command("mkdir", ["-p", into]),
                Command(
                    "curl",
                    [
                        "-fsSL", "--proto", "=https", "--retry", "3", "--connect-timeout", "15",
                        "--speed-limit", String(lowSpeedLimit), "--speed-time", String(lowSpeedTime), "-o", scratch + "/ena.tar.gz", url,
                    ]),
                Command("tar", ["-xzf", scratch + "/ena.tar.gz", "-C", into, "--no-same-owner", "--no-same-permissions"]),
            ]
        case let .directory(path):
            return Self.copyCommands(from: path, to: into, directories: directories)
        }
    }

    /// Copies each of `directories` of the tree `from` to the same relative
    /// path under `to`; -P: symlinks are copied as symlinks (and then refused
    /// by the pin check), never followed.
    public static func copyCommands(from: String, to: String, directories: [String]) -> [Command] {
        directories.flatMap { directory -> [Command] in
            let parent = (to + "/" + directory as NSString).deletingLastPathComponent
            return [Command("mkdir", ["-p", parent]), Command("cp", ["-RP", from + "/" + directory, parent + "/"])]
        }
    }

    /// The top of the fetched tree: `source/` or `source/<one top directory>`
    /// (the release archive's `amzn-drivers-ena_linux_2.9.1/`), whichever
    /// holds `buildDirectory`; no symlink on the way to it.
    public static func locateTree(scratch: String, buildDirectory: String) throws -> String {
        let root = scratch + "/source"
        var candidates = [root]
        if let tops = try? FileManager.default.contentsOfDirectory(atPath: root) {
            candidates += tops.sorted().map { root + "/" + $0 }
        }
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            let build = candidate + "/" + buildDirectory
            guard FileManager.default.fileExists(atPath: build, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            guard (build as NSString).resolvingSymlinksInPath == (root as NSString).resolvingSymlinksInPath + String(build.dropFirst(root.count)) else {
                throw ENAError.buildDirectoryThroughSymlink(buildDirectory)
            }
            return candidate
        }
        throw ENAError.noBuildDirectory(buildDirectory)
    }
}
