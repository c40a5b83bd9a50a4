import AMI
import Disk
import Foundation
import Host
import Install
import SBOM
import Versions

struct InstallCommand {
    static let subcommand = Subcommand(spec: spec, run: run)
    static let spec = CommandSpec(
        name: "install",
        summary: "install one CentOS 6 release onto one empty block device or image file",
        forms: [UsageForm("VERSION TARGET")],
        options: [
            OptionSpec("--yum-cache", "tmpfs[:SIZE]|DEVICE|DIR", help: """
                where the target's /var/cache/yum lives during the install, so
                nothing transient lands on the volume: tmpfs (default, \(YumCache.defaultTmpfsBytes >> 20) MiB),
                tmpfs:SIZE, a block device with a filesystem, or a directory
                """),
            OptionSpec("--mirror", "URL", repeatable: true, help: """
                CentOS vault to download from (http, https or file URL;
                default from versions.json: https://archive.kernel.org/centos-vault,
                then its alternatives); repeat it for alternatives, tried in order
                for a file the first cannot serve (metadata must agree)
                """),
            OptionSpec("--size", "SIZE", help: "size of a new image file (default 8G)"),
            OptionSpec("--gpg-key", "FILE", help: "verify packages with this key instead of the embedded CentOS 6 key"),
            OptionSpec("--cache", "DIR", help: """
                the verified download cache on the builder (default /var/cache/centos6-ami;
                shared by runs and releases, never on the target)
                """),
            OptionSpec("--ena", help: """
                build Amazon's ENA driver (versions.json's pinned version, 6.6 to 6.10 only)
                against the release's kernel in a scratch build root on the builder and
                install it as the kmod-ena package; adds net.ifnames=0 to the kernel line
                """),
            OptionSpec("--ena-source", "FILE|DIR", needs: "--ena", help: """
                with --ena: the ENA release .tar.gz or an extracted amzn-drivers tree
                (default: download versions.json's pinned URL); every file of
                kernel/linux/ena must match versions.json's sha256 list
                """),
            OptionSpec("--ena-share", "DIR", needs: "--ena", help: """
                with --ena (batch passes it): the first install of a release builds
                kmod-ena into DIR, the others of that release wait for it and reuse it
                """),
            OptionSpec("--minimal", help: """
                the original script's package set: no acpid, no ntp (by default both are
                installed and enabled; ntpd uses the Amazon Time Sync Service)
                """),
            OptionSpec("--updates", help: """
                also the release's updates repository (<release>/updates/x86_64/, verified
                like os): the newest kernel and packages of that minor release instead of
                the GA set versions.json pins
                """),
            OptionSpec("--speed-limit", "BYTES", help: """
                a download slower than BYTES per second for --speed-time seconds fails,
                naming the URL (default 1000, as curl's option of this name)
                """),
            OptionSpec("--speed-time", "SECONDS", help: "how long a download may stay below --speed-limit (default 30, as curl's)"),
            OptionSpec("--dry-run", help: "print the full ordered plan, one command per line; change nothing"),
            OptionSpec("--log", "FILE", help: "the full log (default /var/log/centos6-ami/install-VERSION-TIMESTAMP-PID.log)"),
            OptionSpec("--keep-on-error", help: "on failure leave mounts and devices in place and print how to clean up"),
            OptionSpec("--stop-after", "STEP", help: """
                stop after STEP and unwind normally (for inspection); steps:
                \(InstallSteps.names(ena: true).joined(separator: ", ")) (the ena-* steps only with --ena)
                """),
            OptionSpec("--hold", "SECONDS", needs: "--stop-after", help: "with --stop-after: keep everything mounted this long first"),
            OptionSpec("--register", help: """
                afterwards, register the AMI ('centos6-ami help register'): an attached
                EBS volume is snapshotted, an image file uploaded through the EBS
                direct APIs (no builder in AWS needed)
                """),
        ] + RegisterCommand.spec.options(named: registerOptions).map { $0.passedOn(needs: "--register", helpPrefix: "with --register: ") } + [
            CommonOptions.versions,
            OptionSpec("--result-json", "FILE", help: """
                write the install's result as JSON to FILE at the end, success or not
                (batch reads it)
                """),
        ],
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

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try spec.parse(arguments)
        guard args.positionals.count == 2 else {
            throw UsageError(args.positionals.count < 2 ? "install needs VERSION and TARGET" : "unexpected argument '\(args.positionals[2])'", usage: usage)
        }
        let versions = try CLI.loadVersions(args.value("--versions"), console: console, usage: usage)
        let options = try makeOptions(args, versions: versions)
        let register = try registerArguments(args, options: options)
        // `--result-json FILE` (batch reads it): written at the end, success or not.
        // The install's log, so a --register run writes its steps into the same file.
        var installLog: String?
        guard let resultPath = args.value("--result-json") else {
            let status = try execute(options, versions: versions, console: console) { _, log in installLog = log }
            return try registerAfterInstall(register, status: status, log: installLog, console: console)
        }
        let started = Date(), kernel = (try? versions.require(options.release).kernel) ?? ""
        do {
            let status = try execute(options, versions: versions, console: console) { summary, log in
                installLog = log
                try? InstallResult(release: options.release, target: options.target, kernel: summary.kernel, ena: options.ena, result: InstallResult.ok,
                                   seconds: summary.seconds, bytesOnVolume: summary.bytesOnVolume, log: log,
                                   bootsOn: summary.bootVerdict?.bootsOn, bootReasons: summary.bootVerdict?.reasons).write(to: resultPath)
            }
            return try registerAfterInstall(register, status: status, log: installLog, console: console)
        } catch {
            let interrupted = Interruption.shared.isInterrupted || { if case HostError.interrupted = StepFailed.cause(of: error) { return true }; return false }()
            try? InstallResult(release: options.release, target: options.target, kernel: kernel, ena: options.ena,
                               result: interrupted ? InstallResult.interrupted : InstallResult.failed,
                               seconds: Date().timeIntervalSince(started), log: options.logPath, error: "\(error)").write(to: resultPath)
            throw error
        }
    }

    /// `register` options install passes on with `--register`.
    static let registerOptions = ["--region", "--endpoint-url", "--results", "--build-id", "--copy-to"]

    /// `--register`: the register command's arguments for this install, checked before
    /// anything is written (an attached EBS volume or an image file; not a loop device).
    static func registerArguments(_ args: ParsedArguments, options: InstallOptions) throws -> [String]? {
        guard args.has("--register") else {
            if let stray = registerOptions.first(where: { args.value($0) != nil }) { throw UsageError("\(stray) needs --register", usage: usage) }
            return nil
        }
        guard options.stopAfter == nil, !options.dryRun else { throw UsageError("--register makes no sense with --stop-after or --dry-run", usage: usage) }
        do { _ = try RegisterTarget.forInstall(target: options.target) } catch { throw UsageError("\(error)", usage: usage) }
        var pass = [options.release, options.target]
        if options.ena { pass.append("--ena") }
        if options.keepOnError { pass.append("--keep-on-error") }
        for option in registerOptions { if let value = args.value(option) { pass += [option, value] } }
        return pass
    }

    /// Runs `register` on the freshly built (unmounted) target when asked; its steps are
    /// logged into the install's log (`log`), after the install's own.
    static func registerAfterInstall(_ register: [String]?, status: Int32, log: String?, console: Console) throws -> Int32 {
        guard var register, status == ExitCode.success else { return status }
        if let log { register += ["--log", log] }
        // A device's manifest is next to the install's log: register cannot guess it.
        if let manifest = writtenManifest, register.count > 1, register[1].hasPrefix("/dev/") { register += ["--manifest", manifest] }
        if let sbom = writtenSBOM, register.count > 1, register[1].hasPrefix("/dev/") { register += ["--sbom", sbom] }
        console.err("register: \(register.joined(separator: " "))")
        return try RegisterCommand.run(register, console: console)
    }

    /// Turns parsed arguments into validated options; every problem here is a usage error.
    static func makeOptions(_ args: ParsedArguments, versions: VersionsFile) throws -> InstallOptions {
        let release = args.positionals[0]
        // An unknown or malformed release is a mistake in the command line: exit 64 (README, exit status).
        do { _ = try versions.require(release) } catch { throw UsageError("\(error)", usage: usage) }
        let mirrors = InstallOptions.mirrorList(given: args.values["--mirror"] ?? [], versions: versions.mirrors)
        var options = InstallOptions(release: release, target: args.positionals[1], mirror: mirrors[0])
        options.alternativeMirrors = Array(mirrors.dropFirst())
        for mirror in mirrors {
            if let problem = InstallOptions.validateMirror(mirror) { throw UsageError(problem, usage: usage) }
        }
        do {
            if let cache = args.value("--yum-cache") { options.yumCache = try YumCache.parse(cache) }
            if let size = args.value("--size") { options.imageSize = try parseSize(size); options.sizeGiven = true }
        } catch let error as DiskError {
            throw UsageError(error.description, usage: usage)
        }
        if options.imageSize < minimumTargetBytes { throw UsageError("--size must be at least \(minimumTargetBytes >> 30)G", usage: usage) }
        if options.imageSize > maximumTargetBytes { throw UsageError(DiskError.sizeTooLarge(args.value("--size") ?? "", maximum: maximumTargetBytes).description, usage: usage) }
        if let text = args.value("--speed-limit") {
            guard let limit = Int(text), limit >= 1 else { throw UsageError("--speed-limit needs a whole number of bytes per second (at least 1)", usage: usage) }
            options.lowSpeedLimit = limit
        }
        if let text = args.value("--speed-time") {
            guard let seconds = Double(text), seconds >= 1, seconds <= 3600 else { throw UsageError("--speed-time needs a number of seconds from 1 to 3600", usage: usage) }
            options.lowSpeedTime = seconds
        }
        options.dryRun = args.has("--dry-run")
        options.keepOnError = args.has("--keep-on-error")
        options.logPath = args.value("--log")
        if let cache = args.value("--cache") { options.cacheDirectory = cache }
        options.gpgKeyPath = args.value("--gpg-key")
        options.ena = args.has("--ena")
        options.minimal = args.has("--minimal")
        options.updates = args.has("--updates")
        options.enaSource = args.value("--ena-source")
        if options.enaSource != nil && !options.ena { throw UsageError("--ena-source needs --ena", usage: usage) }
        options.enaShareDirectory = args.value("--ena-share")
        if options.enaShareDirectory != nil && !options.ena { throw UsageError("--ena-share needs --ena", usage: usage) }
        if let key = options.gpgKeyPath, !FileManager.default.isReadableFile(atPath: key) {
            throw UsageError("--gpg-key '\(key)' is not a readable file", usage: usage)
        }
        if let stop = args.value("--stop-after") {
            let steps = InstallSteps.names(ena: options.ena)
            guard steps.contains(stop) else {
                let enaOnly = InstallSteps.names(ena: true).contains(stop) ? " without --ena" : ""
                throw UsageError("unknown step '\(stop)'\(enaOnly) (steps: \(steps.joined(separator: ", ")))", usage: usage)
            }
            options.stopAfter = stop
        }
        if let hold = args.value("--hold") {
            guard let seconds = Double(hold), seconds >= 0 else { throw UsageError("--hold needs a number of seconds", usage: usage) }
            guard options.stopAfter != nil else { throw UsageError("--hold needs --stop-after", usage: usage) }
            options.holdSeconds = seconds
        }
        if let env = ProcessInfo.processInfo.environment["CENTOS6_AMI_WORK_DIR"] { options.workDirectory = env }
        return options
    }

    static func execute(_ options: InstallOptions, versions: VersionsFile, console: Console,
                        finished: ((InstallSummary, String) -> Void)? = nil) throws -> Int32 {
        if options.dryRun {
            let printer = DryRunPrinter(echo: console.out)
            let log = try Log(path: nil, progress: { _ in })
            let ctx = try InstallContext(options: options, versions: versions, runner: printer, log: log)
            printer.note("centos6-ami install \(options.release) \(options.target): plan (dry run, nothing is changed)")
            _ = try Pipeline.run(ctx)
            return ExitCode.success
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
        let journal = try RunJournal(directory: RunJournal.directory(workDirectory: options.workDirectory),
                                     command: "centos6-ami install \(options.release) \(options.target)")
        ctx.journal = journal
        Interruption.shared.childObserver = { pid in journal.record(.child(pid: pid, start: RunJournal.startTime(pid) ?? 0)) }
        defer {
            Interruption.shared.childObserver = nil
            if ctx.leftovers { journal.closeKeeping() } else { journal.remove() }
        }
        let summary = try Pipeline.run(ctx)
        // A device's manifest goes next to the log; with no log file, under /var/tmp.
        if options.stopAfter == nil { try writeManifest(ctx, logPath: logFile ?? "/var/tmp/centos6-ami-install-\(options.release)-\(Log.fileStamp()).log") }
        finished?(summary, logPath)
        if options.stopAfter != nil {
            log.say(String(format: "stopped after '%@' as asked; everything unwound (%.1f s)", options.stopAfter!, summary.seconds))
        } else {
            log.say(summary.render(logPath: logPath))
        }
        return ExitCode.success
    }

    /// The manifest this process's install wrote (one install per process), for `--register`.
    nonisolated(unsafe) static var writtenManifest: String?
    /// The SPDX SBOM it wrote beside the manifest, for `--register`.
    nonisolated(unsafe) static var writtenSBOM: String?

    /// `IMAGE.manifest.json` (or next to the log for a device): every package in the image with
    /// its sha256 and signing key; `register` records it. Then the SBOMs beside it
    /// (`IMAGE.spdx.json`, `IMAGE.cdx.json`) from the same read of the rpm database. Each is
    /// written atomically (temp file, rename).
    static func writeManifest(_ ctx: InstallContext, logPath: String) throws {
        var image: String?
        if case let .imageFile(path, _, _) = try ctx.target { image = path }
        let path = BuildManifest.path(imageFile: image, logPath: logPath)
        let created = Date()
        let manifest = try ctx.manifest(toolVersion: CLI.version, created: created)
        try writeAtomically(manifest.encoded(), to: path)
        writtenManifest = path
        ctx.log.say("manifest: \(path) (\(manifest.packages.count) packages)")
        let input = try ctx.sbomInput(imageName: BuildSBOM.imageName(imageFile: image, logPath: logPath), manifest: manifest, created: created)
        for format in SBOMFormat.allCases {
            let sbom = BuildSBOM.path(imageFile: image, logPath: logPath, format: format)
            try writeAtomically(Data(format.render(input).utf8), to: sbom)
            if format == .spdx { writtenSBOM = sbom }
            ctx.log.say("sbom: \(sbom) (\(format == .spdx ? "SPDX 2.3" : "CycloneDX 1.5"), \(input.packages.count) packages)")
        }
    }

    /// Written whole or not at all (temp file, rename): a reader never sees half a file.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let temp = path + ".tmp-\(getpid())"
        do {
            try data.write(to: URL(fileURLWithPath: temp))
            guard rename(temp, path) == 0 else { throw HostError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        } catch {
            unlink(temp)
            throw HostError.cannotWrite(path: path, reason: "\(error)")
        }
    }

    static func defaultLogPath(release: String) throws -> String {
        let dir = "/var/log/centos6-ami"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // The pid makes it unique: two installs started in the same second get two logs.
        return "\(dir)/install-\(release)-\(Log.fileStamp())-\(getpid()).log"
    }
}
