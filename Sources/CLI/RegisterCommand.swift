import AMI
import Bootstrap
import Foundation
import Host
import Versions

struct RegisterCommand {
    static let subcommand = Subcommand(name: name, summary: summary, usage: usage, help: help, run: run)
    static let name = "register"
    static let summary = "snapshot a built volume and register it as an AMI (optionally public, copied to other regions)"
    static let usage = "usage: centos6-ami register VERSION TARGET [--ena] [--region R] [--endpoint-url URL] [--public] [--copy-to R1,R2] [--results FILE] [--build-id ID] [--keep-on-error] [options]"
    static let help = """
    TARGET is the EBS volume holding a built image: its id (vol-0123456789abcdef0, also
    '--volume ID'), or the device it is attached as here (/dev/nvme1n1: the volume id is
    its NVMe serial; /dev/xvdf or /dev/sdf: looked up by this instance's attachments).
    A local device must not be mounted; it is synced before the snapshot.

    Steps: CreateSnapshot (tagged with the build id), wait for it, RegisterImage
    (x86_64, hvm, legacy-bios boot, IMDSv2 required, /dev/sda1 -> the snapshot on
    gp3, deleted on termination, ENA support as below), tag, wait, then
    --public and --copy-to. The AMI is named 'CentOS VERSION x86_64 [ENA] YYYY-MM-DD';
    when that name is taken in a region the build id is appended. Every AMI made is
    merged into the results file ('centos6-ami table --from FILE' prints the table).
    If a step fails, what this run created is deleted again (or kept with
    --keep-on-error) and the error names the step.

    The aws CLI does the calls with the usual credentials (AWS_PROFILE, AWS_REGION,
    ~/.aws); nothing is signed here.

    options:
      --ena                  register with --ena-support and mark it (*1). On a local device
                             the image's boot verdict decides (read-only, before any AWS call):
                             ENA support exactly when it boots on Nitro (nvme in its initramfs
                             and ena installed), with or without --ena, and --ena on an image
                             that cannot is refused with the reason. For a volume id the
                             verdict cannot be read: --ena is taken on trust (a warning).
                             Only for releases that can have it.
      --region R             region of the volume (default: AWS_REGION / the profile's)
      --endpoint-url URL     passed to every aws call (a test endpoint, a VPC endpoint)
      --public               make the AMI (and copies) public; checked first against the
                             account's image block public access setting
      --copy-to R1,R2        copy the AMI to these regions (tagged, waited for)
      --results FILE         results file to merge into (default centos6-ami-results.json)
      --build-id ID          tag value and name suffix (default: UTC time + 4 hex digits);
                             letters, digits, '.', '_', '-'
      --imds-support V       v2.0 (default: IMDSv2 only) or none (account default)
      --volume-size GIB      root volume size of instances (default: the snapshot's size)
      --timeout MINUTES      give up waiting for the snapshot / each image after this (default 60)
      --poll SECONDS         how often to ask EC2 while waiting (default 15)
      --keep-on-error        on failure keep the snapshot/AMIs this run made and name them
      --log FILE             the full log (default /var/log/centos6-ami/register-VERSION-TIMESTAMP.log)
      --versions FILE        read this versions.json instead of the embedded one

    exit status: 0 registered, 1 failed (what this run created is removed), 64 usage error, 130 interrupted.
    """

    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        let args = try parseArguments(arguments, flags: ["--ena", "--public", "--keep-on-error"],
                                      options: ["--region", "--endpoint-url", "--copy-to", "--results", "--build-id", "--imds-support",
                                                "--volume-size", "--timeout", "--poll", "--log", "--versions", "--volume"],
                                      usage: usage)
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
        var variant: AMIVariant = args.has("--ena") ? .ena : .plain
        if variant == .ena && !info.ena.eligible {
            throw UsageError("CentOS \(release) cannot have the ENA driver (\(info.ena.reason ?? "not eligible")); drop --ena", usage: usage)
        }
        var options = try makeOptions(args, console: console)
        let logPath = try args.value("--log") ?? defaultLogPath(release: release)
        let log = try Log(path: logPath, progress: console.err)
        Interruption.shared.install()
        log.say("log: \(logPath)")
        defer { console.err("log: \(logPath)") }
        let runner = ProcessRunner(log: log)
        options.instanceID = { try InstanceIdentity.current(runner: runner) }
        if case let .device(path) = target {
            // Before any AWS call: where the image boots decides the ENA flag.
            // The hint speaks of the build ("build the image with --ena"), not of register's --ena.
            let verdict = try readVerdict(device: path, release: info, enaAsked: false, runner: runner, log: log)
            log.say("'\(path)' boots on: \(verdict.summary)")
            if variant == .ena && !verdict.nitro {
                throw AMIError.enaNotInImage("'\(path)' cannot boot on Nitro, so it is not registered with ENA support: \(verdict.reasons.filter { $0.hasPrefix("nitro") }.joined(separator: "; ")); register it without --ena")
            }
            if verdict.nitro && variant == .plain { log.say("registering with ENA support: the image boots on Nitro") }
            variant = verdict.nitro ? .ena : .plain
            options.bootsOn = verdict.bootsOn
        } else if variant == .ena {
            log.say("warning: '\(target)' is a volume id, so where it boots is not checked: --ena (ENA support) is taken on trust")
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
        var options = RegisterOptions(aws: AWSContext(region: args.value("--region"), endpointURL: args.value("--endpoint-url")),
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
        if let seconds = args.value("--poll") {
            guard let s = Double(seconds), s > 0 else { throw UsageError("--poll needs a positive number of seconds", usage: usage) }
            options.snapshotWait.interval = s
            options.imageWait.interval = s
        }
        return options
    }

    /// A local device: mount its first partition read-only (no journal replay, so not
    /// one byte changes) and read the image's boot verdict.
    static func readVerdict(device: String, release: VersionsFile.Release, enaAsked: Bool, runner: ProcessRunner, log: Log) throws -> BootVerdict {
        let name = VolumeLocator.kernelName(device)
        let partName = name + (name.last?.isNumber == true ? "p1" : "1")
        var partition = "/dev/" + partName
        let dir = try makeTemporaryDirectory(prefix: "centos6-ami-ena-check")
        defer { rmdir(dir) }
        // Without udev (containers) the kernel knows the partition but /dev has no node: make a private one.
        if !FileManager.default.fileExists(atPath: partition),
           let text = try? String(contentsOfFile: "/sys/class/block/\(partName)/dev", encoding: .utf8) {
            let numbers = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":").map(String.init)
            if numbers.count == 2 {
                let node = dir + ".node"
                try runner.checked(Command("mknod", ["-m", "0600", node, "b", numbers[0], numbers[1]]))
                partition = node
            }
        }
        defer { if partition.hasPrefix(dir) { unlink(partition) } }
        try runner.checked(Command("mount", ["-o", "ro,noload", "-t", "ext4", partition, dir]))
        defer { _ = runner.run(Command("umount", [dir])) }
        return try BootVerdict.compute(root: dir, enaHint: BootVerdict.enaHint(release: release, enaAsked: enaAsked))
    }

    static func makeTemporaryDirectory(prefix: String) throws -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HostError.cannotWrite(path: "/tmp", reason: String(cString: strerror(errno))) }
        return String(cString: made)
    }

    static func defaultLogPath(release: String) throws -> String {
        let dir = "/var/log/centos6-ami"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return "\(dir)/register-\(release)-\(Log.fileStamp()).log"
    }
}
