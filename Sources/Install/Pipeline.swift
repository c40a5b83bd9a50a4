import Disk
import Foundation
import Host
import Verdict
import Versions

/// What an install reports at the end.
public struct InstallSummary: Sendable {
    public var release: String
    public var target: String
    /// The whole-disk device written (nil when the install stopped before it had one).
    public var device: String?
    public var filesystemUUID: String
    public var stepsRun: [String]
    public var seconds: Double
    public var kernel: String
    public var packageCount: Int
    /// Used bytes of the filesystem (measured before unmount).
    public var bytesOnVolume: UInt64
    /// Bytes downloaded from the mirror by this run (0 when everything was cached).
    public var downloadedBytes: Int64
    /// Where the image boots (nil when the install stopped before the boot-verdict step).
    public var bootVerdict: BootVerdict? = nil

    /// The one-screen summary printed at the end of an install.
    public func render(logPath: String?) -> String {
        var lines = ["", "CentOS \(release) installed on \(target)"]
        lines.append("  kernel:           \(kernel)")
        if let bootVerdict { lines.append("  boots on:         \(bootVerdict.summary)") }
        lines.append("  packages:         \(packageCount)")
        lines.append(String(format: "  bytes on volume:  %llu (%.1f MB used on the filesystem)", bytesOnVolume, Double(bytesOnVolume) / 1e6))
        lines.append(String(format: "  downloaded:       %.1f MB", Double(downloadedBytes) / 1e6))
        lines.append("  filesystem UUID:  \(filesystemUUID)")
        lines.append(String(format: "  time:             %.1f s", seconds))
        if let logPath { lines.append("  log:              \(logPath)") }
        return lines.joined(separator: "\n")
    }
}

/// The install on the step engine (`Host.StepEngine`): its steps over one
/// context and one cleanup stack; a full filesystem said so (`explain`),
/// `--hold` after `--stop-after` (`afterStop`), and the run journal kept while
/// anything is left held (a failed undo, `--keep-on-error`).
public enum Pipeline {
    public static func run(_ ctx: InstallContext, steps: [InstallStep]? = nil) throws -> InstallSummary {
        var engine = StepEngine(steps: steps ?? InstallSteps.steps(for: ctx.options), log: ctx.log, cleanup: ctx.cleanup, runner: ctx.runner)
        engine.keepOnError = ctx.options.keepOnError
        engine.stopAfter = ctx.options.stopAfter
        engine.afterStop = { try hold(ctx) }
        engine.explain = { step, error in noSpace(ctx, error: error) }
        engine.onKept = { _ in ctx.leftovers = true }
        engine.onLeftovers = { _ in ctx.leftovers = true }
        engine.onSuccess = { if case let .imageFile(path, _, _) = ctx.targetIfMade { ctx.journal?.record(.finished(path)) } }
        let report = try engine.run(ctx)
        return summary(ctx, stepsRun: report.ran)
    }

    /// What the run made, so far as it went (`--stop-after`): each figure from its phase, if that was made.
    static func summary(_ ctx: InstallContext, stepsRun: [String]) -> InstallSummary {
        var device = ctx.diskIfMade?.device
        if device == nil, case let .blockDevice(path, _)? = ctx.targetIfMade { device = path }
        return InstallSummary(
            release: ctx.options.release, target: ctx.options.target, device: device,
            filesystemUUID: ctx.filesystemUUID, stepsRun: stepsRun, seconds: ctx.log.elapsed,
            kernel: (ctx.planIfMade?.release ?? ctx.release).kernel, packageCount: ctx.installedIfMade?.packages.count ?? 0,
            bytesOnVolume: ctx.bytesOnVolumeIfMade ?? 0, downloadedBytes: ctx.downloadsIfMade?.downloadedBytes ?? 0,
            bootVerdict: ctx.bootVerdictIfMade)
    }

    /// A failure caused by a full filesystem, said so: ENOSPC in the error, or a
    /// filesystem we write to (the image file's, the yum cache, the target, the
    /// download cache) with less than 1 MiB left. An image on a full filesystem
    /// shows up inside only as I/O errors and a read-only remount, never as ENOSPC.
    static func noSpace(_ ctx: InstallContext, error: Error) -> Error? {
        if case DiskError.noSpaceForImage = error { return nil }
        let text = "\(error)"
        var places: [String] = []
        if case let .imageFile(path, _, _)? = ctx.targetIfMade {
            places.append(FileManager.default.fileExists(atPath: path) ? path : (path as NSString).deletingLastPathComponent)
        }
        places += [ctx.rootPath + "/var/cache/yum", ctx.rootPath]
        places.append(ctx.options.cacheDirectory)
        let full = places.compactMap { path -> String? in
            guard !path.isEmpty, let free = Preflight.freeSpace(at: path), free.bytes < 1 << 20 else { return nil }
            return free.mountPoint
        }
        let saysENOSPC = text.contains("No space left on device") || text.contains("ENOSPC")
        // A failed download discards its partial file, so the cache may have room again: the path in the error says where.
        let named =
            saysENOSPC
            ? places.filter { !$0.isEmpty && text.contains($0 + "/") }.max { $0.count < $1.count }.flatMap { Preflight.freeSpace(at: $0)?.mountPoint } : nil
        guard saysENOSPC || !full.isEmpty else { return nil }
        // The line that says so, else the error's first line.
        let lines = text.split(separator: "\n").map(String.init)
        let detail = lines.first { $0.contains("No space left") || $0.contains("ENOSPC") } ?? lines.first ?? text
        return InstallError.noSpace(filesystem: full.first ?? named, detail: String(detail.trimmingCharacters(in: .whitespaces).prefix(300)))
    }

    /// `--hold SECONDS`: keep everything in place for inspection; a signal ends it early.
    static func hold(_ ctx: InstallContext) throws {
        // Dry run: nothing is mounted to hold.
        guard ctx.options.holdSeconds > 0, !ctx.runner.isDryRun else { return }
        ctx.log.say("holding for \(ctx.options.holdSeconds) s (--hold); mounted at \(ctx.rootPath)")
        let deadline = Date().addingTimeInterval(ctx.options.holdSeconds)
        while Date() < deadline {
            try Interruption.shared.check()
            usleep(50_000)
        }
    }
}
