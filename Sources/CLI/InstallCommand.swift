import AMI
import Disk
import Foundation
import Host
import Install
import SBOM
import Versions

/// What `install` was given, as its options declare it: the install's own settings (the
/// declarations store them straight into its `InstallOptions`), the mirrors as given
/// (versions.json's are the default), the registration `--register` runs afterwards
/// (register's options, declared there) and the files around the run. `batch` holds one
/// for what it passes to every install.
struct InstallArguments {
    var options = InstallOptions(release: "", target: "", mirror: "")
    var mirrors: [String] = []
    var register = false
    /// What `--register` passes on: register's own options, as its declarations store them.
    var registration = RegisterArguments()
    var versions: String?
    var resultJSON: String?

    var release: String {
        get { options.release }
        set { options.release = newValue }
    }
    var target: String {
        get { options.target }
        set { options.target = newValue }
    }
    /// `--size`: the image's size, and that it was given (an existing image must then have it).
    var size: UInt64? {
        get { options.sizeGiven ? options.imageSize : nil }
        set {
            options.sizeGiven = newValue != nil
            options.imageSize = newValue ?? InstallOptions.defaultImageSize
        }
    }
}

struct InstallCommand {
    static let subcommand = Subcommand(spec: spec, run: run)

    /// Every option of install, declared once: its parsing, checks, help and the words that
    /// pass it on (batch's installs, `--register`'s registration).
    static let options = Options<InstallArguments>(
        [
            .setting(
                "--yum-cache", "tmpfs[:SIZE]|DEVICE|DIR", \.options.yumCache,
                help: """
                    where the target's /var/cache/yum lives during the install, so
                    nothing transient lands on the volume: tmpfs (default, \(YumCache.defaultTmpfsBytes >> 20) MiB),
                    tmpfs:SIZE, a block device with a filesystem, or a directory
                    """, render: \.argument
            ) { text in
                do { return try YumCache.parse(text) } catch { throw OptionProblem("\(error)") }
            },
            .list(
                "--mirror", "URL", \.mirrors,
                help: """
                    CentOS vault to download from (http, https or file URL;
                    default from versions.json: https://archive.kernel.org/centos-vault,
                    then its alternatives); repeat it for alternatives, tried in order
                    for a file the first cannot serve (metadata must agree)
                    """, problem: InstallOptions.validateMirror),
            .value("--size", "SIZE", \.size, help: "size of a new image file (default 8G)", render: sizeArgument) { text in
                let bytes: UInt64
                do { bytes = try parseSize(text) } catch { throw OptionProblem("\(error)") }
                guard bytes >= minimumTargetBytes else { throw OptionProblem("--size must be at least \(minimumTargetBytes >> 30)G") }
                return bytes
            },
            .text(
                "--gpg-key", "FILE", \.options.gpgKeyPath, help: "verify packages with this key instead of the embedded CentOS 6 key",
                problem: OptionCheck.readableFile("--gpg-key")),
            .setting(
                "--cache", "DIR", \.options.cacheDirectory,
                help: """
                    the verified download cache on the builder (default /var/cache/centos6-ami;
                    shared by runs and releases, never on the target)
                    """, render: { $0 }, parse: { $0 }),
            .flag(
                "--ena", \.options.ena,
                help: """
                    build Amazon's ENA driver (versions.json's pinned version, 6.6 to 6.10 only)
                    against the release's kernel in a scratch build root on the builder and
                    install it as the kmod-ena package; adds net.ifnames=0 to the kernel line
                    """),
            .text(
                "--ena-source", "FILE|DIR", \.options.enaSource, needs: "--ena",
                help: """
                    with --ena: the ENA release .tar.gz or an extracted amzn-drivers tree
                    (default: download versions.json's pinned URL); every file of
                    kernel/linux/ena must match versions.json's sha256 list
                    """),
            .text(
                "--ena-share", "DIR", \.options.enaShareDirectory, needs: "--ena",
                help: """
                    with --ena (batch passes it): the first install of a release builds
                    kmod-ena into DIR, the others of that release wait for it and reuse it
                    """),
            .flag(
                "--minimal", \.options.minimal,
                help: """
                    the original script's package set: no acpid, no ntp (by default both are
                    installed and enabled; ntpd uses the Amazon Time Sync Service)
                    """),
            .flag(
                "--updates", \.options.updates,
                help: """
                    also the release's updates repository (<release>/updates/x86_64/, verified
                    like os): the newest kernel and packages of that minor release instead of
                    the GA set versions.json pins
                    """),
            .setting(
                "--speed-limit", "BYTES", \.options.lowSpeedLimit,
                help: """
                    a download slower than BYTES per second for --speed-time seconds fails,
                    naming the URL (default 1000, as curl's option of this name)
                    """, render: String.init,
                parse: OptionCheck.integer(1...Int.max, "--speed-limit needs a whole number of bytes per second (at least 1)")),
            .setting(
                "--speed-time", "SECONDS", \.options.lowSpeedTime, help: "how long a download may stay below --speed-limit (default 30, as curl's)",
                render: OptionCheck.render, parse: OptionCheck.number(1...3600, "--speed-time needs a number of seconds from 1 to 3600")),
            .flag("--dry-run", \.options.dryRun, help: "print the full ordered plan, one command per line; change nothing"),
            .text("--log", "FILE", \.options.logPath, help: "the full log (default /var/log/centos6-ami/install-VERSION-TIMESTAMP-PID.log)"),
            .flag("--keep-on-error", \.options.keepOnError, help: "on failure leave mounts and devices in place and print how to clean up"),
            .text(
                "--stop-after", "STEP", \.options.stopAfter,
                help: """
                    stop after STEP and unwind normally (for inspection); steps:
                    \(InstallSteps.names(ena: true).joined(separator: ", ")) (the ena-* steps only with --ena)
                    """
            ).checked { values in
                guard let stop = values.options.stopAfter else { return nil }
                let steps = InstallSteps.names(ena: values.options.ena)
                guard !steps.contains(stop) else { return nil }
                let enaOnly = InstallSteps.names(ena: true).contains(stop) ? " without --ena" : ""
                return "unknown step '\(stop)'\(enaOnly) (steps: \(steps.joined(separator: ", ")))"
            },
            .setting(
                "--hold", "SECONDS", \.options.holdSeconds, needs: "--stop-after", help: "with --stop-after: keep everything mounted this long first",
                render: OptionCheck.render, parse: OptionCheck.number(0...Double.greatestFiniteMagnitude, "--hold needs a number of seconds")),
            .flag(
                "--register", \.register,
                help: """
                    afterwards, register the AMI ('centos6-ami help register'): an attached
                    EBS volume is snapshotted, an image file uploaded through the EBS
                    direct APIs (no builder in AWS needed)
                    """
            ).checked { values in
                guard values.register, values.options.stopAfter != nil || values.options.dryRun else { return nil }
                return "--register makes no sense with --stop-after or --dry-run"
            },
        ]
            + RegisterCommand.options.named(registerOptions).map {
                $0.declared { $0.passedOn(needs: "--register", helpPrefix: "with --register: ") }.lifted(\InstallArguments.registration)
            } + [
                .text("--versions", "FILE", \.versions, help: CommonOptions.versions.help),
                .text(
                    "--result-json", "FILE", \.resultJSON,
                    help: """
                        write the install's result as JSON to FILE at the end, success or not
                        (batch reads it)
                        """),
            ], defaults: InstallArguments())

    static let spec = CommandSpec(
        name: "install",
        summary: "install one CentOS 6 release onto one empty block device or image file",
        forms: [UsageForm("VERSION TARGET")],
        options: options.specs,
        about: """
            VERSION is a CentOS 6 release, 6.0 to 6.10 ('centos6-ami versions' lists them).
            TARGET is an empty whole-disk block device (/dev/xvdb, /dev/sdf, /dev/nvme1n1,
            /dev/loop3) or a disk-image file path: created sparse with --size when absent,
            attached through a loop device and detached at the end.

            The target must be empty: no partition table, no filesystem signature, not
            mounted, not swap, not in use. Nothing is written until every check passes.
            """,
        notes: "exit status: 0 done, 1 failed (everything cleaned up), 64 usage error, 130 interrupted (cleaned up).")
    static let usage = spec.usage

    /// `--size` passed on: whole GiB, MiB or KiB where it is one, else bytes.
    static func sizeArgument(_ bytes: UInt64) -> String {
        for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] where bytes % (1 << shift) == 0 { return "\(bytes >> shift)\(unit)" }
        return String(bytes)
    }

    /// Parses install's words: VERSION, TARGET and the options.
    static func parse(_ arguments: [String]) throws -> InstallArguments {
        try options.parse(arguments, usage: usage) { values, positionals in
            guard positionals.count == 2 else {
                throw UsageError(positionals.count < 2 ? "install needs VERSION and TARGET" : "unexpected argument '\(positionals[2])'", usage: usage)
            }
            values.release = positionals[0]
            values.target = positionals[1]
        }.values
    }

    /// The words that run this install again (batch starts its installs with them).
    static func words(_ values: InstallArguments) -> [String] {
        ["install", values.release, values.target] + options.words(values)
    }

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        try run(parse(arguments), console: console)
    }

    static func run(_ arguments: InstallArguments, console: Console) throws -> Int32 {
        let versions = try CLI.loadVersions(arguments.versions, console: console, usage: usage)
        let options = try makeOptions(arguments, versions: versions, environment: console.environment)
        let registration = try registration(arguments)
        // `--result-json FILE` (batch reads it): written at the end, success or not.
        guard let resultPath = arguments.resultJSON else {
            let outcome = try execute(options, versions: versions, console: console)
            return try registerAfterInstall(registration, outcome: outcome, console: console)
        }
        let started = Date(), kernel = (try? versions.require(options.release).kernel) ?? ""
        do {
            let outcome = try execute(options, versions: versions, console: console) { summary, log in
                try? InstallResult(
                    release: options.release, target: options.target, kernel: summary.kernel, ena: options.ena, result: InstallResult.ok,
                    seconds: summary.seconds, bytesOnVolume: summary.bytesOnVolume, log: log,
                    bootsOn: summary.bootVerdict?.bootsOn, bootReasons: summary.bootVerdict?.reasons
                ).write(to: resultPath)
            }
            return try registerAfterInstall(registration, outcome: outcome, console: console)
        } catch {
            let interrupted =
                Interruption.shared.isInterrupted
                || {
                    if case HostError.interrupted = StepFailed.cause(of: error) { return true }; return false
                }()
            try? InstallResult(
                release: options.release, target: options.target, kernel: kernel, ena: options.ena,
                result: interrupted ? InstallResult.interrupted : InstallResult.failed,
                seconds: Date().timeIntervalSince(started), log: options.logPath, error: "\(error)"
            ).write(to: resultPath)
            throw error
        }
    }

    /// `register` options install passes on with `--register`.
    static let registerOptions = ["--region", "--endpoint-url", "--results", "--build-id", "--copy-to"]

    /// `--register`: the registration for this install, checked before anything is written
    /// (an attached EBS volume or an image file; not a loop device).
    static func registration(_ arguments: InstallArguments) throws -> RegisterArguments? {
        guard arguments.register else { return nil }
        do { _ = try RegisterTarget.forInstall(target: arguments.target) } catch { throw UsageError("\(error)", usage: usage) }
        var registration = arguments.registration
        registration.release = arguments.release
        registration.target = arguments.target
        registration.ena = arguments.options.ena
        registration.keepOnError = arguments.options.keepOnError
        return registration
    }

    /// What a finished install leaves for `--register`: its exit status, its log and the
    /// manifest and SBOM it wrote (nil for a dry run or a stop after a step).
    struct Outcome {
        var status: Int32
        var log: String?
        var manifest: String?
        var sbom: String?
        init(status: Int32, log: String? = nil) { self.status = status; self.log = log }
    }

    /// Runs `register` on the freshly built (unmounted) target when asked; its steps are
    /// logged into the install's log, after the install's own.
    static func registerAfterInstall(_ registration: RegisterArguments?, outcome: Outcome, console: Console) throws -> Int32 {
        guard var registration, outcome.status == ExitCode.success else { return outcome.status }
        registration.log = outcome.log
        // A device's manifest is next to the install's log: register cannot guess it.
        if registration.target.hasPrefix("/dev/") {
            registration.manifest = outcome.manifest
            registration.sbom = outcome.sbom
        }
        console.err("register: \(RegisterCommand.words(registration).joined(separator: " "))")
        return try RegisterCommand.run(registration, console: console)
    }

    /// Install's arguments as the install's options: the mirrors resolved against versions.json
    /// (its own where none was given); every problem here is a usage error.
    static func makeOptions(_ arguments: InstallArguments, versions: VersionsFile, environment: [String: String]) throws -> InstallOptions {
        // An unknown or malformed release is a mistake in the command line: exit 64 (README, exit status).
        do { _ = try versions.require(arguments.release) } catch { throw UsageError("\(error)", usage: usage) }
        let mirrors = InstallOptions.mirrorList(given: arguments.mirrors, versions: versions.mirrors)
        for mirror in mirrors {
            if let problem = InstallOptions.validateMirror(mirror) { throw UsageError(problem, usage: usage) }
        }
        var options = arguments.options
        options.mirror = mirrors[0]
        options.alternativeMirrors = Array(mirrors.dropFirst())
        let tool = ToolEnvironment(environment)
        options.workDirectory = tool.workDirectory
        options.lockWait = try tool.lockWait.get()
        return options
    }

    /// Runs the install (or prints its plan); `finished` sees the summary and the log before
    /// the final report. What it wrote for `--register` comes back in the outcome.
    static func execute(
        _ options: InstallOptions, versions: VersionsFile, console: Console,
        finished: ((InstallSummary, String) -> Void)? = nil
    ) throws -> Outcome {
        if options.dryRun {
            let printer = DryRunPrinter(echo: console.out)
            let log = try Log(path: nil, progress: { _ in })
            let ctx = try InstallContext(options: options, versions: versions, runner: printer, log: log)
            printer.note("centos6-ami install \(options.release) \(options.target): plan (dry run, nothing is changed)")
            _ = try Pipeline.run(ctx)
            return Outcome(status: ExitCode.success)
        }
        // Before the log file is made: without root there is nothing we may write.
        guard geteuid() == 0 else { throw DiskError.notRoot }
        Interruption.shared.install()
        // Started by a batch: stop (and unwind) if that batch dies.
        ParentWatch.startIfAsked()
        let (log, logFile) = try DefaultLog.open(explicit: options.logPath, defaultPath: { try defaultLogPath(release: options.release) }, console: console)
        let logPath = logFile ?? "(none)"
        log.say("log: \(logPath)")
        let ctx = try InstallContext(options: options, versions: versions, runner: ProcessRunner(log: log), log: log)
        defer { console.err("log: \(logPath)") }
        // Written as resources are taken, so 'cleanup --local' can undo a run that is killed outright.
        let journal = try RunJournal(
            directory: RunJournal.directory(workDirectory: options.workDirectory),
            command: "centos6-ami install \(options.release) \(options.target)")
        ctx.journal = journal
        Interruption.shared.childObserver = { pid in journal.record(.child(pid: pid, start: RunJournal.startTime(pid) ?? 0)) }
        defer {
            Interruption.shared.childObserver = nil
            if ctx.leftovers { journal.closeKeeping() } else { journal.remove() }
        }
        let summary = try Pipeline.run(ctx)
        var outcome = Outcome(status: ExitCode.success, log: logFile)
        // A device's manifest goes next to the log; with no log file, under /var/tmp.
        if options.stopAfter == nil {
            (outcome.manifest, outcome.sbom) = try writeManifest(
                ctx, logPath: logFile ?? "/var/tmp/centos6-ami-install-\(options.release)-\(Log.fileStamp()).log")
        }
        finished?(summary, logPath)
        if options.stopAfter != nil {
            log.say(String(format: "stopped after '%@' as asked; everything unwound (%.1f s)", options.stopAfter!, summary.seconds))
        } else {
            log.say(summary.render(logPath: logPath))
        }
        return outcome
    }

    /// `IMAGE.manifest.json` (or next to the log for a device): every package in the image with
    /// its sha256 and signing key; `register` records it. Then the SBOMs beside it
    /// (`IMAGE.spdx.json`, `IMAGE.cdx.json`) from the same read of the rpm database. Each is
    /// written atomically (temp file, rename). Returns the manifest's path and the SPDX SBOM's.
    static func writeManifest(_ ctx: InstallContext, logPath: String) throws -> (manifest: String, spdx: String?) {
        var image: String?
        if case let .imageFile(path, _, _) = try ctx.target { image = path }
        let path = BuildManifest.path(imageFile: image, logPath: logPath)
        let created = Date()
        let manifest = try ctx.manifest(toolVersion: CLI.version, created: created)
        try AtomicFile.write(manifest.encoded(), to: path)
        ctx.log.say("manifest: \(path) (\(manifest.packages.count) packages)")
        var spdx: String?
        let input = try ctx.sbomInput(imageName: BuildSBOM.imageName(imageFile: image, logPath: logPath), manifest: manifest, created: created)
        for format in SBOMFormat.allCases {
            let sbom = BuildSBOM.path(imageFile: image, logPath: logPath, format: format)
            try AtomicFile.write(Data(format.render(input).utf8), to: sbom)
            if format == .spdx { spdx = sbom }
            ctx.log.say("sbom: \(sbom) (\(format == .spdx ? "SPDX 2.3" : "CycloneDX 1.5"), \(input.packages.count) packages)")
        }
        return (path, spdx)
    }

    static func defaultLogPath(release: String) throws -> String {
        let dir = "/var/log/centos6-ami"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // The pid makes it unique: two installs started in the same second get two logs.
        return "\(dir)/install-\(release)-\(Log.fileStamp())-\(getpid()).log"
    }
}

extension YumCache {
    /// How `--yum-cache` gives this cache again (batch passes it on).
    var argument: String {
        switch self {
        case let .tmpfs(bytes): return "tmpfs:" + InstallCommand.sizeArgument(bytes)
        case let .device(path), let .directory(path): return path
        }
    }
}
