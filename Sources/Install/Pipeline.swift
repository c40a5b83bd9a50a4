import Disk
import Foundation
import Host
import Verdict
import Versions

/// What an install reports at the end.
public struct InstallSummary: Sendable {
    public var release: String
    public var target: String
    public var device: String
    public var filesystemUUID: String
    public var stepsRun: [String]
    public var stepsNotImplemented: [String]
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
        if !stepsNotImplemented.isEmpty { lines.append("  not implemented:  \(stepsNotImplemented.joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }
}

/// Runs the steps in order over one context. Every resource's undo is on the
/// cleanup stack; it unwinds on success, on error and on SIGINT/SIGTERM/SIGHUP
/// (the signal stops the running child, the step fails, we unwind here).
/// `--keep-on-error` leaves everything in place and prints how to clean up.
public enum Pipeline {
    public static func run(_ ctx: InstallContext, steps: [Step] = InstallSteps.all()) throws -> InstallSummary {
        if let stop = ctx.options.stopAfter, !steps.contains(where: { $0.name == stop }) {
            throw InstallError.unknownStep(stop, valid: steps.map(\.name))
        }
        var ran: [String] = [], skipped: [String] = []
        let total = steps.count
        var current = ""
        do {
            for (index, step) in steps.enumerated() {
                current = step.name
                try Interruption.shared.check()
                if step.notYetImplemented {
                    skipped.append(step.name)
                    ctx.note("step \(step.name): not implemented yet (\(step.summary))")
                    ctx.log.write("step \(step.name): not implemented yet, skipped")
                } else {
                    ctx.log.step("[\(index + 1)/\(total)] \(step.name): \(step.summary)")
                    try step.run(ctx)
                    ran.append(step.name)
                }
                try Interruption.shared.check()
                if step.name == ctx.options.stopAfter {
                    ctx.log.say("stopping after step '\(step.name)' as asked (--stop-after)")
                    try hold(ctx)
                    break
                }
            }
        } catch let caught {
            let interrupted = Interruption.shared.isInterrupted
            ctx.log.write("failed: \(caught)")
            // Before unwinding: removing an unfinished image frees the space we look at.
            let error = interrupted ? caught : (noSpace(ctx, step: current, error: caught) ?? caught)
            if ctx.options.keepOnError && !ctx.dryRun {
                ctx.leftovers = true
                let manual = ctx.cleanup.abandon()
                ctx.log.say("--keep-on-error: left everything in place; to clean up by hand run:\n" + manual.map { "  " + $0 }.joined(separator: "\n"))
            } else {
                unwindAll(ctx, failed: true)
            }
            if interrupted { throw HostError.interrupted(signal: Interruption.shared.signal) }
            throw error
        }
        unwindAll(ctx, failed: false)
        if case let .imageFile(path, _, _) = ctx.target { ctx.journal?.record(.finished(path)) }
        if Interruption.shared.isInterrupted { throw HostError.interrupted(signal: Interruption.shared.signal) }
        return InstallSummary(release: ctx.options.release, target: ctx.options.target, device: ctx.device,
                              filesystemUUID: ctx.filesystemUUID, stepsRun: ran, stepsNotImplemented: skipped, seconds: ctx.log.elapsed,
                              kernel: ctx.release.kernel, packageCount: ctx.installedPackageCount, bytesOnVolume: ctx.bytesOnVolume,
                              downloadedBytes: ctx.downloadedBytes, bootVerdict: ctx.bootVerdict)
    }

    /// A failure caused by a full filesystem, said so: ENOSPC in the error, or a
    /// filesystem we write to (the image file's, the yum cache, the target, the
    /// download cache) with less than 1 MiB left. An image on a full filesystem
    /// shows up inside only as I/O errors and a read-only remount, never as ENOSPC.
    static func noSpace(_ ctx: InstallContext, step: String, error: Error) -> Error? {
        if case DiskError.noSpaceForImage = error { return nil }
        let text = "\(error)"
        var places: [String] = []
        if case let .imageFile(path, _, _)? = ctx.target { places.append(FileManager.default.fileExists(atPath: path) ? path : (path as NSString).deletingLastPathComponent) }
        if !ctx.workDir.isEmpty { places += [ctx.root + "/var/cache/yum", ctx.root] }
        places.append(ctx.options.cacheDirectory)
        let full = places.compactMap { path -> String? in
            guard !path.isEmpty, let free = Preflight.freeSpace(at: path), free.bytes < 1 << 20 else { return nil }
            return free.mountPoint
        }
        let saysENOSPC = text.contains("No space left on device") || text.contains("ENOSPC")
        // A failed download discards its partial file, so the cache may have room again: the path in the error says where.
        let named = saysENOSPC ? places.filter { !$0.isEmpty && text.contains($0 + "/") }.max { $0.count < $1.count }.flatMap { Preflight.freeSpace(at: $0)?.mountPoint } : nil
        guard saysENOSPC || !full.isEmpty else { return nil }
        // The line that says so, else the error's first line.
        let lines = text.split(separator: "\n").map(String.init)
        let detail = lines.first { $0.contains("No space left") || $0.contains("ENOSPC") } ?? lines.first ?? text
        return InstallError.noSpace(step: step, filesystem: full.first ?? named, detail: String(detail.trimmingCharacters(in: .whitespaces).prefix(300)))
    }

    static func unwindAll(_ ctx: InstallContext, failed: Bool) {
        guard !ctx.cleanup.isEmpty else { return }
        ctx.log.step(failed ? "cleaning up after failure" : "cleaning up")
        if let runner = ctx.runner as? ProcessRunner { runner.isUnwinding = true }
        let failures = ctx.cleanup.unwind(failed: failed)
        if let runner = ctx.runner as? ProcessRunner { runner.isUnwinding = false }
        if !failures.isEmpty { ctx.leftovers = true }
        if !failures.isEmpty { ctx.log.say("cleanup left \(failures.count) problem(s); see the log") }
    }

    /// `--hold SECONDS`: keep everything in place for inspection; a signal ends it early.
    static func hold(_ ctx: InstallContext) throws {
        guard ctx.options.holdSeconds > 0, !ctx.dryRun else { return }
        ctx.log.say("holding for \(ctx.options.holdSeconds) s (--hold); mounted at \(ctx.root)")
        let deadline = Date().addingTimeInterval(ctx.options.holdSeconds)
        while Date() < deadline {
            try Interruption.shared.check()
            usleep(50_000)
        }
    }
}
