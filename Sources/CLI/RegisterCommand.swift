import AMI
import Fetch
import Foundation
import Host
import VM
import Install
import Verdict
import Versions

/// What `register` was given, as its options declare it (`install --register` fills one in).
struct RegisterArguments {
    var release = ""
    /// TARGET, or `--volume`'s id.
    var target = ""
    var ena = false
    var region: String?
    var endpointURL: String?
    var profile: String?
    var makePublic = false
    var copyTo: [String]?
    var results: String?
    var buildID: String?
    /// `--imds-support`: nil when not given (v2.0), `.some(nil)` for none (the account's default).
    var imdsSupport: String?? = nil
    var volumeSize: Int?
    var timeoutMinutes: Double?
    var pollSeconds: Double?
    var keepOnError = false
    var volume: String?
    var device: String?
    var allowDirty = false
    var uploadJobs: Int?
    var manifest: String?
    var sbom: String?
    var log: String?
    var versions: String?
}

struct RegisterCommand {
    static let subcommand = Subcommand(spec: spec, run: run)

    /// Every option of register, declared once (install passes some of them on).
    static let options = Options<RegisterArguments>(
        [
            .flag(
                "--ena", \.ena,
                help: """
                    register with --ena-support and mark it (*1). On a local device or
                    an image file the image's boot verdict decides (read-only, before any
                    AWS call): ENA support exactly when it boots on Nitro (nvme in its
                    initramfs and ena installed), with or without --ena, and --ena on an
                    image that cannot is refused with the reason. For a volume id the
                    verdict cannot be read: --ena is taken on trust (a warning).
                    Only for releases that can have it.
                    """),
            .text("--region", "R", \.region, help: "region of the volume (default: AWS_REGION / the profile's)"),
            .text("--endpoint-url", "URL", \.endpointURL, help: "passed to every aws call and used for PutSnapshotBlock (a test endpoint, a VPC endpoint)"),
            .text(
                "--profile", "NAME", \.profile,
                help: """
                    the AWS profile (~/.aws/credentials, ~/.aws/config): passed to every aws
                    call and the credentials of the block upload (default: AWS_PROFILE)
                    """),
            .flag(
                "--public", \.makePublic,
                help: """
                    make the AMI (and copies) public; checked first against the
                    account's image block public access setting
                    """),
            .value(
                "--copy-to", "R1,R2", \.copyTo, help: "copy the AMI to these regions (tagged, waited for)",
                render: { $0.joined(separator: ",") }
            ) { text in
                let regions = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !regions.isEmpty, regions.allSatisfy({ $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }) else {
                    throw OptionProblem("--copy-to needs a comma-separated list of regions, e.g. us-east-1,eu-west-1")
                }
                return regions
            },
            .text("--results", "FILE", \.results, help: "results file to merge into (default centos6-ami-results.json)"),
            .text(
                "--build-id", "ID", \.buildID,
                help: """
                    tag value and name suffix (default: UTC time + 4 hex digits);
                    letters, digits, '.', '_', '-'
                    """
            ) { id in
                RegisterOptions.isValidBuildID(id) ? nil : "build id '\(id)' may hold only letters, digits, '.', '_' and '-' (at most 64)"
            },
            .value(
                "--imds-support", "v2.0|none", \.imdsSupport, help: "v2.0 (default: IMDSv2 only) or none (account default)",
                render: { $0 ?? "none" }
            ) { text in
                switch text {
                case "v2.0": return "v2.0"
                case "none": return nil
                default: throw OptionProblem("--imds-support must be v2.0 or none, not '\(text)'")
                }
            },
            .value(
                "--volume-size", "GIB", \.volumeSize, help: "root volume size of instances (default: the snapshot's size)",
                render: String.init, parse: OptionCheck.integer(1...16384, "--volume-size needs a whole number of GiB (1-16384)")),
            .value(
                "--timeout", "MINUTES", \.timeoutMinutes, help: "give up waiting for the snapshot / each image after this (default 60)",
                render: OptionCheck.render,
                parse: OptionCheck.number(
                    Double.leastNonzeroMagnitude...Double.greatestFiniteMagnitude,
                    "--timeout needs a positive number of minutes")),
            .value(
                "--poll", "SECONDS", \.pollSeconds, help: "how often to ask EC2 while waiting (default 15)",
                render: OptionCheck.render,
                parse: OptionCheck.number(
                    Double.leastNonzeroMagnitude...Double.greatestFiniteMagnitude,
                    "--poll needs a positive number of seconds")),
            .flag("--keep-on-error", \.keepOnError, help: "on failure keep the snapshot/AMIs this run made and name them"),
            .text("--volume", "ID", \.volume, help: "the volume id, given as an option instead of TARGET"),
            .text(
                "--device", "DEV", \.device,
                help: """
                    with a volume id: the local device that volume is (checked read-only
                    by the hygiene gate and for --ena); for tests, a loop device
                    """),
            .flag("--allow-dirty", \.allowDirty, help: "snapshot even with hygiene findings (they are printed as a warning)"),
            .value(
                "--upload-jobs", "N", \.uploadJobs,
                help: """
                    image file: PutSnapshotBlock requests in flight at once
                    (default 16)
                    """, render: String.init, parse: OptionCheck.integer(1...256, "--upload-jobs needs a whole number from 1 to 256")),
            .text(
                "--manifest", "FILE", \.manifest,
                help: """
                    the build's package manifest
                    (default for an image: IMAGE.manifest.json, if present)
                    """),
            .text(
                "--sbom", "FILE", \.sbom,
                help: """
                    the build's SPDX SBOM (default for an image: IMAGE.spdx.json, if present)
                    """),
            .text("--log", "FILE", \.log, help: "the full log (default /var/log/centos6-ami/register-VERSION-TIMESTAMP.log)"),
            .text("--versions", "FILE", \.versions, help: CommonOptions.versions.help),
        ], defaults: RegisterArguments())

    static let spec = CommandSpec(
        name: "register",
        summary: "snapshot a built volume (or upload an image file) and register it as an AMI (optionally public, copied to other regions)",
        forms: [UsageForm("VERSION TARGET|IMAGE.img")],
        options: options.specs,
        about: """
            TARGET is the EBS volume holding a built image: its id (vol-0123456789abcdef0, also
            '--volume ID'), or the device it is attached as here (/dev/nvme1n1: the volume id is
            its NVMe serial; /dev/xvdf or /dev/sdf: looked up by this instance's attachments).
            A local device must not be mounted; it is synced before the snapshot.

            Or TARGET is a built image file (from any machine with credentials, no instance in
            AWS needed): it is checked read-only first, then written into a new snapshot through
            the EBS direct APIs (aws ebs start-snapshot, then PutSnapshotBlock from this process
            over kept-alive HTTPS connections, signed here, then aws ebs complete-snapshot):
            only the 512 KiB blocks that hold data are sent (the file's data extents, all-zero
            blocks skipped), each with its SHA-256, 16 at once (--upload-jobs), each retried
            with backoff on 5xx, throttling and lost connections.
            The snapshot's size is the image's size rounded up to GiB. Its package manifest
            (IMAGE.manifest.json, written by install) goes into the results file and its sha256
            into the 'centos6-ami:manifest-sha256' tag; so does its SPDX SBOM (IMAGE.spdx.json,
            tag 'centos6-ami:sbom-sha256'; IMAGE.cdx.json, the same packages, lies beside it).

            Hygiene gate: before any AWS request the image (an image file, a local device TARGET, or
            --device) is mounted read-only and checked for what a boot or a person left
            (SSH host keys, any authorized_keys, root's .ssh, shell histories, udev's
            70-persistent-net.rules, HWADDR/UUID in ifcfg files, non-empty logs, DHCP
            leases, a random seed, yum's uuid; 'centos6-ami inspect' lists the same).
            Any finding refuses the snapshot, with the list and the fix. A volume id
            that cannot be read here is not checked (a warning says so).

            Steps: CreateSnapshot (tagged with the build id), wait for it, RegisterImage
            (x86_64, hvm, legacy-bios boot, IMDSv2 required, /dev/sda1 -> the snapshot on
            gp3, deleted on termination, ENA support as below), tag, wait, then
            --public and --copy-to. The AMI is named 'CentOS VERSION x86_64 [ENA] YYYY-MM-DD';
            when that name is taken in a region the build id is appended. Every AMI made is
            merged into the results file ('centos6-ami table --from FILE' prints the table).
            If a step fails, what this run created is deleted again (or kept with
            --keep-on-error) and the error names the step.

            The aws CLI does the other calls with the usual credentials (AWS_PROFILE, AWS_REGION,
            ~/.aws). PutSnapshotBlock is signed here (SigV4) with credentials found the same
            way: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN; else --profile or
            AWS_PROFILE (or 'default') in AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE
            (~/.aws/credentials, ~/.aws/config): static keys or credential_process; else this
            instance's role through IMDSv2 (renewed before it expires). Secrets are never put
            on a command line or in the log.
            """,
        notes: "exit status: 0 registered, 1 failed (what this run created is removed), 64 usage error, 130 interrupted.")
    static let usage = spec.usage

    /// Parses register's words: VERSION, TARGET (or `--volume ID`) and the options.
    static func parse(_ arguments: [String]) throws -> RegisterArguments {
        try options.parse(arguments, usage: usage) { values, given in
            let positionals = given + (values.volume.map { [$0] } ?? [])
            guard positionals.count == 2 else {
                throw UsageError(
                    positionals.count < 2 ? "register needs VERSION and TARGET (a volume id or a device)" : "unexpected argument '\(positionals[2])'",
                    usage: usage)
            }
            values.release = positionals[0]
            values.target = positionals[1]
        }.values
    }

    /// The words that give this registration (`install --register` prints the one it runs).
    static func words(_ values: RegisterArguments) -> [String] {
        var plain = values
        plain.volume = nil
        return [values.release, values.target] + options.words(plain)
    }

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        try run(parse(arguments), console: console)
    }

    static func run(_ arguments: RegisterArguments, console: Console) throws -> Int32 {
        let versions = try CLI.loadVersions(arguments.versions, console: console, usage: usage)
        let release = arguments.release, named = arguments.target
        guard let info = versions.release(release) else {
            throw UsageError("unknown release '\(release)'; valid releases: \(versions.releaseNames.joined(separator: ", "))", usage: usage)
        }
        let target: RegisterTarget
        do { target = try RegisterTarget.parse(named) } catch { throw UsageError("\(error)", usage: usage) }
        let localDevice: String?
        switch (target, arguments.device) {
        case let (.device(path), nil): localDevice = path
        case (.device, _?): throw UsageError("--device goes with a volume id, not with a device target", usage: usage)
        case let (.volume, device): localDevice = device
        case (.image, nil): localDevice = nil // read through its own loop device before the upload
        case (.image, _?): throw UsageError("--device goes with a volume id, not with an image file", usage: usage)
        }
        if let localDevice, !FileManager.default.fileExists(atPath: localDevice) {
            throw UsageError("--device '\(localDevice)' does not exist", usage: usage)
        }
        if let readable = localDevice ?? { if case let .image(path) = target { return path } else { return nil } }() {
            try BuildInProgress.refuse(readable)
        }
        let variant: AMIVariant = arguments.ena ? .ena : .plain
        if variant == .ena && !info.ena.eligible {
            throw UsageError("CentOS \(release) cannot have the ENA driver (\(info.ena.reason ?? "not eligible")); drop --ena", usage: usage)
        }
        // Reading an image or a device (loop devices, read-only mounts) needs root: said first.
        if localDevice != nil || { if case .image = target { return true } else { return false } }(), geteuid() != 0 {
            throw UsageError("register needs root: it reads '\(named)' through a read-only loop device or mount before anything goes to AWS", usage: usage)
        }
        // --device DEV VOL_ID: DEV must be that volume where the platform says (Nitro's NVMe serial).
        var deviceCheck: String?
        if case let .volume(id) = target, let device = localDevice {
            switch VolumeLocator.check(device: device, isVolume: id, sysfsRoot: console.tool.sysfsRoot) {
            case .same: deviceCheck = "'\(device)' is \(id) (its NVMe serial says so)"
            case let .other(found):
                throw UsageError("--device '\(device)' is \(found), not \(id) (its NVMe serial says so); name the device of \(id)", usage: usage)
            case .unknown:
                deviceCheck = "could not check that '\(device)' is \(id): it has no EBS NVMe serial (a Xen instance, or not an EBS volume); taken on trust"
            }
        }
        var options = makeOptions(arguments, console: console)
        // Before any AWS call: the results file must take the records at the end.
        if let results = options.resultsFile { try ResultsFile.checkWritable(path: results) }
        let (log, logFile) = try DefaultLog.open(explicit: arguments.log, defaultPath: { try defaultLogPath(release: release) }, console: console)
        let logPath = logFile ?? "(none)"
        Interruption.shared.install()
        log.say("log: \(logPath)")
        if let deviceCheck { log.say(deviceCheck) }
        defer { console.err("log: \(logPath)") }
        let runner = ProcessRunner(log: log)
        // For 'cleanup --local' if this run is killed: the image checks' loop device and mount, its children.
        let journal = CommandJournal.start("centos6-ami register \(release) \(named)", console: console)
        defer { CommandJournal.finish(journal) }
        options.instanceID = { try InstanceIdentity.current(runner: runner) }
        // The registrar's check-image step reads it before any AWS request, read-only: nothing a
        // boot or a person left may reach a snapshot (the hygiene gate), and where the image
        // boots decides the ENA flag.
        options.readable = localDevice ?? { if case let .image(path) = target { return path } else { return nil } }()
        options.readImage = { readable in
            try readImage(readable, target: target, release: info, allowDirty: arguments.allowDirty, runner: runner, log: log, journal: journal)
        }
        var image: String?
        if case let .image(path) = target { image = path }
        if let (path, sha256) = try buildFile(given: arguments.manifest, what: "manifest", beside: image.map(ImageInspection.defaultManifestPath), log: log) {
            options.manifestPath = path
            options.manifestSHA256 = sha256
        }
        if let (path, sha256) = try buildFile(given: arguments.sbom, what: "sbom", beside: image.map(ImageInspection.defaultSBOMPath), log: log) {
            options.sbomPath = path
            options.sbomSHA256 = sha256
        }
        options.sysfsRoot = console.tool.sysfsRoot
        let result = try AMIRegistrar.register(target: target, release: release, variant: variant, options: options, runner: runner, log: log)
        for record in result.all {
            console.out("\(record.region)\t\(record.amiId)\t\(record.name)")
        }
        if let path = options.resultsFile { log.say("recorded in '\(path)' (print the table: centos6-ami table --from \(shellQuote(path)))") }
        return ExitCode.success
    }

    /// Register's arguments as the registrar's options: the defaults where nothing was given.
    static func makeOptions(_ arguments: RegisterArguments, console: Console) -> RegisterOptions {
        var options = RegisterOptions(
            aws: AWSContext(region: arguments.region, endpointURL: arguments.endpointURL, profile: arguments.profile),
            buildID: arguments.buildID ?? RegisterOptions.newBuildID(), toolVersion: CLI.version)
        options.environment = console.environment
        options.makePublic = arguments.makePublic
        options.keepOnError = arguments.keepOnError
        options.resultsFile = arguments.results ?? "centos6-ami-results.json"
        if let regions = arguments.copyTo { options.copyTo = regions }
        if let imds = arguments.imdsSupport { options.imdsSupport = imds }
        options.volumeSize = arguments.volumeSize
        if let minutes = arguments.timeoutMinutes {
            options.snapshotWait.timeout = minutes * 60
            options.imageWait.timeout = minutes * 60
        }
        if let jobs = arguments.uploadJobs { options.upload.jobs = jobs }
        if let seconds = arguments.pollSeconds {
            options.snapshotWait.interval = seconds
            options.imageWait.interval = seconds
        }
        return options
    }

    /// A file install wrote beside the build (the manifest, the SPDX SBOM) and its sha256: the
    /// option's path (`given`), which must exist, else `beside` (next to an image file) when it exists.
    static func buildFile(given: String?, what: String, beside: String?, log: Log) throws -> (String, String)? {
        guard let path = given ?? beside else { return nil }
        guard FileManager.default.fileExists(atPath: path) else {
            if given != nil { throw UsageError("\(what) '\(path)' does not exist", usage: usage) }
            return nil
        }
        let sha256 = try Checksum.of(file: path, kind: .sha256).hex
        log.say("\(what): '\(path)' (sha256 \(sha256))")
        return (path, sha256)
    }

    /// The image read-only, as the registrar's check-image step asks: its partition table
    /// and a filesystem e2fsck finds clean (as boot-test: nothing broken or GPT is uploaded),
    /// an image file's own checks, the hygiene gate, and where it boots.
    static func readImage(
        _ readable: String, target: RegisterTarget, release: VersionsFile.Release, allowDirty: Bool,
        runner: any CommandRunner, log: Log, journal: RunJournal?
    ) throws -> ImageReading {
        if case .volume = target { _ = runner.run(Command("blockdev", ["--flushbufs", readable])) }
        try ImageCheck.check(readable)
        let (findings, verdict) = try ReadOnlyImage.with(readable, log: log, journal: journal, checkPartition: ReadOnlyImage.requireCleanFilesystem) {
            root -> ([HygieneFinding], BootVerdict) in
            if case .image = target { try ImageInspection.runChecks(root: root, image: readable) }
            // The hint speaks of the build ("build the image with --ena"), not of register's --ena.
            return (Hygiene.findings(root: root), try BootVerdict.compute(root: root, enaHint: BootVerdict.enaHint(release: release, enaAsked: false)))
        }
        try hygieneGate(findings, target: readable, allowDirty: allowDirty, log: log)
        return ImageReading(
            bootsOn: verdict.bootsOn, nitro: verdict.nitro, summary: verdict.summary,
            nitroReasons: verdict.reasons.filter { $0.hasPrefix("nitro") })
    }

    /// The hygiene gate's verdict on `findings`: refuse with the list and the fix,
    /// or with --allow-dirty carry on with a loud warning.
    static func hygieneGate(_ findings: [HygieneFinding], target: String, allowDirty: Bool, log: Log) throws {
        guard !findings.isEmpty else {
            log.say("hygiene: '\(target)' is clean (no host keys, authorized_keys, histories, net rules, leases, logs, seed or yum uuid)")
            return
        }
        guard allowDirty else { throw HygieneError.dirty(target: target, findings: findings) }
        log.say(
            "WARNING: --allow-dirty: registering '\(target)' although it holds what a boot or a person left; every instance inherits:\n"
                + findings.map { "  \($0.path): \($0.what)" }.joined(separator: "\n"))
    }

    static func defaultLogPath(release: String) throws -> String {
        let dir = "/var/log/centos6-ami"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return "\(dir)/register-\(release)-\(Log.fileStamp()).log"
    }
}
