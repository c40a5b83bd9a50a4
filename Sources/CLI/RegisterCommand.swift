import AMI
import Fetch
import Foundation
import Host
import VM
import Install
import Verdict
import Versions

struct RegisterCommand {
    static let subcommand = Subcommand(spec: spec, run: run)
    static let spec = CommandSpec(
        name: "register",
        summary: "snapshot a built volume (or upload an image file) and register it as an AMI (optionally public, copied to other regions)",
        forms: [UsageForm("VERSION TARGET|IMAGE.img")],
        options: [
            OptionSpec("--ena", help: """
                register with --ena-support and mark it (*1). On a local device or
                an image file the image's boot verdict decides (read-only, before any
                AWS call): ENA support exactly when it boots on Nitro (nvme in its
                initramfs and ena installed), with or without --ena, and --ena on an
                image that cannot is refused with the reason. For a volume id the
                verdict cannot be read: --ena is taken on trust (a warning).
                Only for releases that can have it.
                """),
            OptionSpec("--region", "R", help: "region of the volume (default: AWS_REGION / the profile's)"),
            OptionSpec("--endpoint-url", "URL", help: "passed to every aws call and used for PutSnapshotBlock (a test endpoint, a VPC endpoint)"),
            OptionSpec("--profile", "NAME", help: """
                the AWS profile (~/.aws/credentials, ~/.aws/config): passed to every aws
                call and the credentials of the block upload (default: AWS_PROFILE)
                """),
            OptionSpec("--public", help: """
                make the AMI (and copies) public; checked first against the
                account's image block public access setting
                """),
            OptionSpec("--copy-to", "R1,R2", help: "copy the AMI to these regions (tagged, waited for)"),
            OptionSpec("--results", "FILE", help: "results file to merge into (default centos6-ami-results.json)"),
            OptionSpec("--build-id", "ID", help: """
                tag value and name suffix (default: UTC time + 4 hex digits);
                letters, digits, '.', '_', '-'
                """),
            OptionSpec("--imds-support", "v2.0|none", help: "v2.0 (default: IMDSv2 only) or none (account default)"),
            OptionSpec("--volume-size", "GIB", help: "root volume size of instances (default: the snapshot's size)"),
            OptionSpec("--timeout", "MINUTES", help: "give up waiting for the snapshot / each image after this (default 60)"),
            OptionSpec("--poll", "SECONDS", help: "how often to ask EC2 while waiting (default 15)"),
            OptionSpec("--keep-on-error", help: "on failure keep the snapshot/AMIs this run made and name them"),
            OptionSpec("--volume", "ID", help: "the volume id, given as an option instead of TARGET"),
            OptionSpec("--device", "DEV", help: """
                with a volume id: the local device that volume is (checked read-only
                by the hygiene gate and for --ena); for tests, a loop device
                """),
            OptionSpec("--allow-dirty", help: "snapshot even with hygiene findings (they are printed as a warning)"),
            OptionSpec("--upload-jobs", "N", help: """
                image file: PutSnapshotBlock requests in flight at once
                (default 16)
                """),
            OptionSpec("--manifest", "FILE", help: """
                the build's package manifest
                (default for an image: IMAGE.manifest.json, if present)
                """),
            OptionSpec("--sbom", "FILE", help: """
                the build's SPDX SBOM (default for an image: IMAGE.spdx.json, if present)
                """),
            OptionSpec("--log", "FILE", help: "the full log (default /var/log/centos6-ami/register-VERSION-TIMESTAMP.log)"),
            CommonOptions.versions,
        ],
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

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try spec.parse(arguments)
        var positionals = args.positionals
        if let volume = args.value("--volume") { positionals.append(volume) }
        guard positionals.count == 2 else {
            throw UsageError(positionals.count < 2 ? "register needs VERSION and TARGET (a volume id or a device)" : "unexpected argument '\(positionals[2])'", usage: usage)
        }
        let versions = try CLI.loadVersions(args.value("--versions"), console: console, usage: usage)
        let release = positionals[0]
        guard let info = versions.release(release) else {
            throw UsageError("unknown release '\(release)'; valid releases: \(versions.releaseNames.joined(separator: ", "))", usage: usage)
        }
        let target: RegisterTarget
        do { target = try RegisterTarget.parse(positionals[1]) } catch { throw UsageError("\(error)", usage: usage) }
        let localDevice: String?
        switch (target, args.value("--device")) {
        case let (.device(path), nil): localDevice = path
        case (.device, _?): throw UsageError("--device goes with a volume id, not with a device target", usage: usage)
        case let (.volume, device): localDevice = device
        case (.image, nil): localDevice = nil  // read through its own loop device before the upload
        case (.image, _?): throw UsageError("--device goes with a volume id, not with an image file", usage: usage)
        }
        if let localDevice, !FileManager.default.fileExists(atPath: localDevice) {
            throw UsageError("--device '\(localDevice)' does not exist", usage: usage)
        }
        if let readable = localDevice ?? { if case let .image(path) = target { return path } else { return nil } }() {
            try BuildInProgress.refuse(readable)
        }
        var variant: AMIVariant = args.has("--ena") ? .ena : .plain
        if variant == .ena && !info.ena.eligible {
            throw UsageError("CentOS \(release) cannot have the ENA driver (\(info.ena.reason ?? "not eligible")); drop --ena", usage: usage)
        }
        // Reading an image or a device (loop devices, read-only mounts) needs root: said first.
        if localDevice != nil || { if case .image = target { return true } else { return false } }(), geteuid() != 0 {
            throw UsageError("register needs root: it reads '\(positionals[1])' through a read-only loop device or mount before anything goes to AWS", usage: usage)
        }
        // --device DEV VOL_ID: DEV must be that volume where the platform says (Nitro's NVMe serial).
        var deviceCheck: String?
        if case let .volume(id) = target, let device = localDevice {
            switch VolumeLocator.check(device: device, isVolume: id, sysfsRoot: console.environment["CENTOS6_AMI_SYSFS_ROOT"] ?? "/sys") {
            case .same: deviceCheck = "'\(device)' is \(id) (its NVMe serial says so)"
            case let .other(found): throw UsageError("--device '\(device)' is \(found), not \(id) (its NVMe serial says so); name the device of \(id)", usage: usage)
            case .unknown: deviceCheck = "could not check that '\(device)' is \(id): it has no EBS NVMe serial (a Xen instance, or not an EBS volume); taken on trust"
            }
        }
        var options = try makeOptions(args, console: console)
        // Before any AWS call: the results file must take the records at the end.
        if let results = options.resultsFile { try ResultsFile.checkWritable(path: results) }
        let (log, logFile) = try DefaultLog.open(explicit: args.value("--log"), defaultPath: { try defaultLogPath(release: release) }, console: console)
        let logPath = logFile ?? "(none)"
        Interruption.shared.install()
        log.say("log: \(logPath)")
        if let deviceCheck { log.say(deviceCheck) }
        defer { console.err("log: \(logPath)") }
        let runner = ProcessRunner(log: log)
        // For 'cleanup --local' if this run is killed: the image checks' loop device and mount, its children.
        let journal = CommandJournal.start("centos6-ami register \(release) \(positionals[1])", console: console)
        defer { CommandJournal.finish(journal) }
        options.instanceID = { try InstanceIdentity.current(runner: runner) }
        // Before any AWS request, read-only: nothing a boot or a person left may reach a
        // snapshot (the hygiene gate), and where the image boots decides the ENA flag.
        var readable = localDevice
        if case let .image(path) = target { readable = path }
        if let readable {
            if case .volume = target { _ = runner.run(Command("blockdev", ["--flushbufs", readable])) }
            // As boot-test: an MBR with a Linux partition, and a filesystem e2fsck finds clean. Nothing broken or GPT is uploaded.
            try ImageCheck.check(readable)
            let (findings, verdict) = try ReadOnlyImage.with(readable, log: log, journal: journal, checkPartition: ReadOnlyImage.requireCleanFilesystem) { root -> ([HygieneFinding], BootVerdict) in
                if case .image = target { try ImageInspection.runChecks(root: root, image: readable) }
                // The hint speaks of the build ("build the image with --ena"), not of register's --ena.
                return (Hygiene.findings(root: root), try BootVerdict.compute(root: root, enaHint: BootVerdict.enaHint(release: info, enaAsked: false)))
            }
            try hygieneGate(findings, target: readable, allowDirty: args.has("--allow-dirty"), log: log)
            log.say("'\(readable)' boots on: \(verdict.summary)")
            if variant == .ena && !verdict.nitro {
                throw AMIError.enaNotInImage(image: readable, reasons: verdict.reasons.filter { $0.hasPrefix("nitro") })
            }
            if verdict.nitro && variant == .plain { log.say("registering with ENA support: the image boots on Nitro") }
            variant = verdict.nitro ? .ena : .plain
            options.bootsOn = verdict.bootsOn
        } else {
            log.say("warning: '\(target)' cannot be read from this host, so it was not checked for host keys, authorized_keys, histories, net rules or logs; check the image with 'centos6-ami inspect' before it becomes a volume")
            if variant == .ena { log.say("warning: '\(target)' is a volume id, so where it boots is not checked: --ena (ENA support) is taken on trust") }
        }
        var image: String?
        if case let .image(path) = target { image = path }
        if let (path, sha256) = try buildFile(args, option: "--manifest", what: "manifest", beside: image.map(ImageInspection.defaultManifestPath), log: log) {
            options.manifestPath = path
            options.manifestSHA256 = sha256
        }
        if let (path, sha256) = try buildFile(args, option: "--sbom", what: "sbom", beside: image.map(ImageInspection.defaultSBOMPath), log: log) {
            options.sbomPath = path
            options.sbomSHA256 = sha256
        }
        // Tests point this at a fake sysfs to give a loop device an EBS volume's NVMe serial.
        if let sysfs = console.environment["CENTOS6_AMI_SYSFS_ROOT"] { options.sysfsRoot = sysfs }
        let result = try AMIRegistrar.register(target: target, release: release, variant: variant, options: options, runner: runner, log: log)
        for record in result.all {
            console.out("\(record.region)\t\(record.amiId)\t\(record.name)")
        }
        if let path = options.resultsFile { log.say("recorded in '\(path)' (print the table: centos6-ami table --from \(shellQuote(path)))") }
        return ExitCode.success
    }

    /// Every option except the target and release; problems are usage errors.
    static func makeOptions(_ args: ParsedArguments, console: Console) throws -> RegisterOptions {
        let buildID = args.value("--build-id") ?? RegisterOptions.newBuildID()
        guard RegisterOptions.isValidBuildID(buildID) else {
            throw UsageError("build id '\(buildID)' may hold only letters, digits, '.', '_' and '-' (at most 64)", usage: usage)
        }
        var options = RegisterOptions(aws: AWSContext(region: args.value("--region"), endpointURL: args.value("--endpoint-url"), profile: args.value("--profile")),
                                      buildID: buildID, toolVersion: CLI.version)
        options.environment = console.environment
        options.makePublic = args.has("--public")
        options.keepOnError = args.has("--keep-on-error")
        options.resultsFile = args.value("--results") ?? "centos6-ami-results.json"
        if let copy = args.value("--copy-to") {
            let regions = copy.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !regions.isEmpty, regions.allSatisfy({ $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }) else {
                throw UsageError("--copy-to needs a comma-separated list of regions, e.g. us-east-1,eu-west-1", usage: usage)
            }
            options.copyTo = regions
        }
        switch args.value("--imds-support") {
        case nil, "v2.0": options.imdsSupport = "v2.0"
        case "none": options.imdsSupport = nil
        case let other?: throw UsageError("--imds-support must be v2.0 or none, not '\(other)'", usage: usage)
        }
        if let size = args.value("--volume-size") {
            guard let gib = Int(size), gib > 0, gib <= 16384 else { throw UsageError("--volume-size needs a whole number of GiB (1-16384)", usage: usage) }
            options.volumeSize = gib
        }
        if let minutes = args.value("--timeout") {
            guard let m = Double(minutes), m > 0 else { throw UsageError("--timeout needs a positive number of minutes", usage: usage) }
            options.snapshotWait.timeout = m * 60
            options.imageWait.timeout = m * 60
        }
        if let jobs = args.value("--upload-jobs") {
            guard let n = Int(jobs), n > 0, n <= 256 else { throw UsageError("--upload-jobs needs a whole number from 1 to 256", usage: usage) }
            options.upload.jobs = n
        }
        if let seconds = args.value("--poll") {
            guard let s = Double(seconds), s > 0 else { throw UsageError("--poll needs a positive number of seconds", usage: usage) }
            options.snapshotWait.interval = s
            options.imageWait.interval = s
        }
        return options
    }

    /// A file install wrote beside the build (the manifest, the SPDX SBOM) and its sha256: the
    /// option's path, which must exist, else `beside` (next to an image file) when it exists.
    static func buildFile(_ args: ParsedArguments, option: String, what: String, beside: String?, log: Log) throws -> (String, String)? {
        let given = args.value(option)
        guard let path = given ?? beside else { return nil }
        guard FileManager.default.fileExists(atPath: path) else {
            if given != nil { throw UsageError("\(what) '\(path)' does not exist", usage: usage) }
            return nil
        }
        let sha256 = try Checksum.of(file: path, kind: .sha256).hex
        log.say("\(what): '\(path)' (sha256 \(sha256))")
        return (path, sha256)
    }

    /// The hygiene gate's verdict on `findings`: refuse with the list and the fix,
    /// or with --allow-dirty carry on with a loud warning.
    static func hygieneGate(_ findings: [HygieneFinding], target: String, allowDirty: Bool, log: Log) throws {
        guard !findings.isEmpty else {
            log.say("hygiene: '\(target)' is clean (no host keys, authorized_keys, histories, net rules, leases, logs, seed or yum uuid)")
            return
        }
        guard allowDirty else { throw HygieneError.dirty(target: target, findings: findings) }
        log.say("WARNING: --allow-dirty: registering '\(target)' although it holds what a boot or a person left; every instance inherits:\n"
                + findings.map { "  \($0.path): \($0.what)" }.joined(separator: "\n"))
    }

    static func defaultLogPath(release: String) throws -> String {
        let dir = "/var/log/centos6-ami"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return "\(dir)/register-\(release)-\(Log.fileStamp()).log"
    }
}
