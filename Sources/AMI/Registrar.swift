import Foundation
import Host

/// What `register` (and `install`/`batch --register`) may change about a registration.
// Unchecked only for its hook closures (instanceID, readImage, makeBlockSender): set by the command, called on the register thread.
public struct RegisterOptions: @unchecked Sendable {
    public var aws: AWSContext
    /// Tags every resource (`centos6-ami:build-id`) so `cleanup --build-id` finds leftovers;
    /// also the name's suffix when the plain name is taken. Letters, digits, `.`, `_`, `-`.
    public var buildID: String
    /// Written into the tags (`centos6-ami:version`).
    public var toolVersion: String
    /// `v2.0`: instances launched from the AMI get IMDSv2 only (the image's rc.local uses a token). Nil: account default.
    public var imdsSupport: String? = "v2.0"
    public var bootMode = "legacy-bios"
    /// GiB of the root gp3 volume; nil: the snapshot's size.
    public var volumeSize: Int?
    public var makePublic = false
    /// Regions to copy the AMI to (tagged, waited for, public too with `makePublic`).
    public var copyTo: [String] = []
    /// On failure keep what this run created and name it, instead of deleting it.
    public var keepOnError = false
    public var snapshotWait = WaitPolicy(timeout: 3600, interval: 15)
    public var imageWait = WaitPolicy(timeout: 3600, interval: 15)
    /// Where the records go (merged atomically); nil: nowhere.
    public var resultsFile: String?
    /// The build date written into the name (UTC day) and the records.
    public var date = Date()
    public var clock: AMIClock = .system
    /// For `--region`-less runs: AWS_REGION / AWS_DEFAULT_REGION.
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// This instance's id, needed only to find a volume by its xvd/sd attachment name.
    public var instanceID: () throws -> String = { throw AMIError.instanceIDUnknown }
    public var sysfsRoot = "/sys"
    public var mountinfoPath = "/proc/self/mountinfo"
    /// The image read here before any AWS call (an image file, the device TARGET, or `--device`):
    /// nil for a volume id that cannot be read from this host (the check step then says so).
    public var readable: String?
    /// Reads `readable` read-only: throws to refuse it (a broken image, the hygiene gate's
    /// findings), else says where it boots. Set by the command (the CLI mounts the image and
    /// computes its boot verdict); the `check-image` step runs it.
    public var readImage: ((_ path: String) throws -> ImageReading)?
    /// How an image file is uploaded (blocks in flight, tries per block).
    public var upload = EBSUploader.Settings()
    /// Makes what sends the blocks for the home region; nil: `EBSBlockClient` with the credential chain
    /// (the environment, `aws.profile`/AWS_PROFILE, the instance role). Tests give an in-memory one.
    public var makeBlockSender: ((_ region: String) throws -> any SnapshotBlockSender)?
    /// The build's package manifest (`IMAGE.manifest.json`): its path goes into the results
    /// file, its sha256 into the `centos6-ami:manifest-sha256` tag.
    public var manifestPath: String?
    public var manifestSHA256: String?
    /// The build's SPDX SBOM (`IMAGE.spdx.json`): its path goes into the results file, its
    /// sha256 into the `centos6-ami:sbom-sha256` tag.
    public var sbomPath: String?
    public var sbomSHA256: String?
    /// The image's boot verdict (`xen,nitro`, `xen`), when it was read from the image: tagged and recorded.
    public var bootsOn: String?

    public init(aws: AWSContext, buildID: String, toolVersion: String) {
        self.aws = aws
        self.buildID = buildID
        self.toolVersion = toolVersion
    }

    /// A fresh build id: UTC time plus 4 random hex digits (unique across parallel batch jobs).
    public static func newBuildID(_ date: Date = Date()) -> String {
        Log.fileStamp(date) + "-" + String(format: "%04x", UInt16.random(in: 0...UInt16.max))
    }

    public static func isValidBuildID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}

/// What reading the image before any AWS call found: where it boots.
public struct ImageReading: Sendable, Equatable {
    /// `xen,nitro`, `xen`: tagged and recorded.
    public var bootsOn: String
    /// It boots on Nitro (nvme at boot, ena installed): registered with ENA support exactly then.
    public var nitro: Bool
    /// "Xen and Nitro", "Xen only: <reason>": for the log.
    public var summary: String
    /// Why it cannot boot on Nitro (empty when it can).
    public var nitroReasons: [String]

    public init(bootsOn: String, nitro: Bool, summary: String, nitroReasons: [String] = []) {
        self.bootsOn = bootsOn; self.nitro = nitro; self.summary = summary; self.nitroReasons = nitroReasons
    }
}

/// The AMI and its copies, as recorded in the results file.
public struct RegisteredAMI: Equatable, Sendable {
    public var primary: AMIRecord
    public var copies: [AMIRecord]
    public var all: [AMIRecord] { [primary] + copies }
}

/// Registers a built image as an AMI: a flat list of named steps (`steps(target:variant:options:copyRegions:)`)
/// over one `RegisterRun`, run by the step engine. Everything created is pushed on the engine's
/// cleanup stack the moment it exists, with the command that removes it by hand: when a later
/// step fails it is deleted again, or with `keepOnError` kept and those commands printed.
public enum AMIRegistrar {
    /// `CentOS 6.9 x86_64 ENA 2024-05-01`: the release, the architecture, the variant and the build day (UTC).
    public static func baseName(release: String, variant: AMIVariant, date: Date) -> String {
        "CentOS \(release) x86_64 \(variant == .ena ? "ENA " : "")\(day(date))"
    }

    /// AMI names are unique per account and region: a second build of the same release and
    /// variant on the same day gets the build id appended (it already holds the time).
    public static func uniqueName(base: String, buildID: String, taken: (String) throws -> Bool) throws -> String? {
        if try !taken(base) { return base }
        let suffixed = "\(base) \(buildID)"
        if try !taken(suffixed) { return suffixed }
        return nil
    }

    static func day(_ date: Date) -> String { UTCTime.string(date, format: "yyyy-MM-dd") }

    static func iso(_ date: Date) -> String { UTCTime.string(date, format: "yyyy-MM-dd'T'HH:mm:ss'Z'") }

    public static func tags(name: String, release: String, variant: AMIVariant, options: RegisterOptions) -> [Tag] {
        [
            Tag("Name", name), Tag(TagKey.buildID, options.buildID), Tag(TagKey.release, release),
            Tag(TagKey.variant, variant.rawValue), Tag(TagKey.toolVersion, options.toolVersion),
        ]
            + (options.manifestSHA256.map { [Tag(TagKey.manifestSHA256, $0)] } ?? [])
            + (options.sbomSHA256.map { [Tag(TagKey.sbomSHA256, $0)] } ?? [])
            + (options.bootsOn.map { [Tag(TagKey.bootsOn, $0)] } ?? [])
    }

    /// The description of the snapshot, the AMI and its copies.
    static func description(release: String, variant: AMIVariant, options: RegisterOptions) -> String {
        "CentOS \(release) x86_64\(variant == .ena ? " with the ENA driver" : ""), built from scratch by centos6-ami \(options.toolVersion) (build \(options.buildID))"
    }

    /// Snapshots the target and registers it as an AMI (plus copies); records it in the results file.
    ///
    /// - Important: creates billable EC2 resources (snapshot, AMI, copies). On failure they are
    ///   deleted again, unless `options.keepOnError`; the thrown `StepFailed` names the
    ///   failed step and what was deleted or kept. A check that fails before anything exists
    ///   throws its own error (`publicAccessBlocked`, `volumeTooSmall`, ...).
    public static func register(
        target: RegisterTarget, release: String, variant: AMIVariant, options: RegisterOptions,
        runner: any CommandRunner, log: Log?
    ) throws -> RegisteredAMI {
        let client = EC2Client(context: options.aws, runner: runner)
        // The home region decides which copies there are, so it is known before the step list.
        let region = try client.resolvedRegion(environment: options.environment)
        let run = RegisterRun(
            target: target, release: release, variant: variant, options: options, region: region,
            client: client, cleanup: CleanupStack(log: log), log: log)
        var engine = StepEngine(
            steps: steps(target: target, variant: variant, options: options, copyRegions: run.copyRegions),
            log: log, cleanup: run.cleanup, runner: runner)
        engine.keepOnError = options.keepOnError
        // The engine's report of the failed run's cleanup, read after `run` threw.
        let report = Locked<StepCleanup?>(nil)
        engine.onCleanup = { cleanup in report.withLock { $0 = cleanup } }
        do {
            try engine.run(run)
        } catch {
            throw failure(error, cleanup: report.value, buildID: options.buildID)
        }
        return try run.result()
    }

    /// The steps of one registration: only those the target and the options ask for
    /// (no upload for a volume, no make-public without `makePublic`, one copy step a region).
    /// Nothing is created before `choose-name` has passed; every check comes first.
    public static func steps(
        target: RegisterTarget, variant: AMIVariant, options: RegisterOptions,
        copyRegions: [String]
    ) -> [Step<RegisterRun>] {
        var steps: [Step<RegisterRun>] = [
            Step(
                "check-image",
                "the image read-only before any AWS call: its partition table and filesystem, the hygiene gate, where it boots (which decides ENA support)",
                run: { try checkImage($0) })
        ]
        if case .image = target {
            steps.append(
                Step(
                    "scan-image", "the image file's blocks that hold data (512 KiB each, all-zero ones skipped) and the volume size it needs",
                    run: { try scanImage($0) }))
        }
        if options.makePublic {
            steps.append(Step("preflight", "image block public access allows --public in every region, before anything is created", run: { try preflight($0) }))
        }
        switch target {
        case .device:
            steps.append(Step("locate-volume", "the device is not mounted and is synced; the EBS volume behind it and its size", run: { try locateVolume($0) }))
        case .volume:
            steps.append(Step("locate-volume", "the volume and its size", run: { try locateVolume($0) }))
        case .image:
            break
        }
        steps.append(
            Step("choose-name", "the AMI's name, free in every region (the build id appended when the plain name is taken)", run: { try chooseName($0) }))
        if case .image = target {
            steps.append(
                Step("start-snapshot", "StartSnapshot (EBS direct APIs) of the image's size, tagged with the build id", run: { try startSnapshot($0) }))
            steps.append(
                Step("upload-image", "PutSnapshotBlock for every block that holds data, each with its SHA-256; CompleteSnapshot", run: { try uploadImage($0) }))
        } else {
            steps.append(Step("create-snapshot", "CreateSnapshot of the volume, tagged with the build id", run: { try createSnapshot($0) }))
        }
        steps.append(Step("wait-snapshot", "wait for the snapshot to complete", run: { try waitForSnapshot($0) }))
        steps.append(Step("register-image", "RegisterImage: x86_64, hvm, legacy-bios, the snapshot as the gp3 root volume", run: { try registerImage($0) }))
        steps.append(Step("tag-image", "tag the AMI (build id, release, variant, tool version)", run: { try tagImage($0) }))
        steps.append(Step("wait-image", "wait for the AMI to become available", run: { try waitForImage($0) }))
        if options.makePublic {
            steps.append(Step("make-public", "launch permission for everyone (--public)", run: { try makePublic($0) }))
        }
        for region in copyRegions {
            steps.append(
                Step("copy-to-\(region)", "CopyImage to \(region), tagged (its snapshot too) and waited for\(options.makePublic ? ", made public" : "")") {
                    try copy($0, to: region)
                })
        }
        if let path = options.resultsFile {
            steps.append(Step("record-results", "merge the AMI\(copyRegions.isEmpty ? "" : " and its copies") into '\(path)'", run: { try recordResults($0) }))
        }
        return steps
    }

    // MARK: - Steps

    /// Reads the image before any AWS call and lets where it boots decide the variant: ENA
    /// support exactly when it boots on Nitro; `--ena` on an image that cannot is refused.
    /// A volume id this host cannot read is taken on trust, and the log says so.
    static func checkImage(_ run: RegisterRun) throws {
        guard let path = run.options.readable, let read = run.options.readImage else {
            run.say(
                "warning: '\(run.target)' cannot be read from this host, so it was not checked for host keys, authorized_keys, histories, net rules or logs; check the image with 'centos6-ami inspect' before it becomes a volume"
            )
            if run.variant == .ena {
                run.say("warning: '\(run.target)' is a volume id, so where it boots is not checked: --ena (ENA support) is taken on trust")
            }
            return
        }
        let reading = try read(path)
        run.say("'\(path)' boots on: \(reading.summary)")
        if run.variant == .ena && !reading.nitro {
            throw AMIError.enaNotInImage(image: path, reasons: reading.nitroReasons)
        }
        if reading.nitro && run.variant == .plain { run.say("registering with ENA support: the image boots on Nitro") }
        run.variant = reading.nitro ? .ena : .plain
        run.options.bootsOn = reading.bootsOn
    }

    static func scanImage(_ run: RegisterRun) throws {
        guard case let .image(path) = run.target else { return }
        let scan = try EBSBlocks.scan(path: path)
        if let wanted = run.options.volumeSize, wanted < scan.volumeSizeGiB {
            throw AMIError.imageTooBig(requested: wanted, needed: scan.volumeSizeGiB)
        }
        run.say(
            "'\(path)': \(scan.size) bytes (\(scan.volumeSizeGiB) GiB volume), \(scan.blocks.count) blocks of 512 KiB hold data"
                + " (\(scan.zeroBlocksSkipped) all-zero blocks in its data extents skipped)")
        run.scan = scan
    }

    static func preflight(_ run: RegisterRun) throws {
        for region in [run.region] + run.copyRegions {
            try preflightPublic(client: run.client.inRegion(region), region: region, say: run.say)
        }
    }

    static func locateVolume(_ run: RegisterRun) throws {
        let volumeID: String
        switch run.target {
        case let .volume(id):
            volumeID = id
        case let .device(path):
            let o = run.options
            try VolumeLocator.quiesce(device: path, sysfsRoot: o.sysfsRoot, mountinfoPath: o.mountinfoPath, runner: run.client.runner)
            volumeID = try VolumeLocator.locate(device: path, sysfsRoot: o.sysfsRoot, instanceID: o.instanceID, client: run.home)
            run.say("'\(path)' is volume '\(volumeID)'")
        case .image:
            return
        }
        let volume = try run.home.describeVolume(id: volumeID)
        if let wanted = run.options.volumeSize, let size = volume.Size, wanted < size {
            throw AMIError.volumeTooSmall(requested: wanted, snapshot: size)
        }
        run.volume = volume
    }

    static func chooseName(_ run: RegisterRun) throws {
        let base = baseName(release: run.release, variant: run.variant, date: run.options.date)
        var name = base
        for region in [run.region] + run.copyRegions {
            let there = run.client.inRegion(region)
            let free = try uniqueName(base: name, buildID: run.options.buildID) { !(try there.describeImages(filters: [Filter("name", [$0])])).isEmpty }
            guard let free else { throw AMIError.nameTaken(name: "\(base) \(run.options.buildID)", region: region) }
            name = free
        }
        run.name = name
    }

    static func createSnapshot(_ run: RegisterRun) throws {
        let volume = try run.volume.made("the volume", by: "locate-volume")
        run.say("creating a snapshot of '\(volume.VolumeId)' in '\(run.region)'")
        let snapshot = try run.home.createSnapshot(volumeID: volume.VolumeId, description: run.description, tags: try run.tags())
        run.pushSnapshot(snapshot.SnapshotId)
        run.snapshotSize = snapshot.VolumeSize
    }

    static func startSnapshot(_ run: RegisterRun) throws {
        let scan = try run.scan.made("the image scan", by: "scan-image")
        // Credentials first: without them nothing is created.
        run.blockSender = try run.options.makeBlockSender?(run.region) ?? defaultBlockSender(run)
        run.say("starting a snapshot of \(scan.volumeSizeGiB) GiB in '\(run.region)' (EBS direct APIs)")
        let started = try run.home.startSnapshot(volumeSizeGiB: scan.volumeSizeGiB, description: run.description, tags: try run.tags())
        // A pending snapshot can be deleted; failing that, StartSnapshot's timeout cancels it.
        run.pushSnapshot(started.SnapshotId)
        run.snapshotSize = started.VolumeSize ?? scan.volumeSizeGiB
    }

    /// PutSnapshotBlock from this process, to `--endpoint-url` or the region's EBS endpoint,
    /// signed with the first credentials of the chain (only their source is logged).
    static func defaultBlockSender(_ run: RegisterRun) throws -> any SnapshotBlockSender {
        let o = run.options
        let chain = CredentialChain(environment: o.environment, profile: o.aws.profile)
        let credentials = try chain.resolve()
        let endpoint = try EBSBlockClient.endpoint(region: run.region, endpointURL: o.aws.endpointURL)
        run.say("PutSnapshotBlock to \(endpoint.absoluteString) with \(try credentials.current())")
        return EBSBlockClient(endpoint: endpoint, region: run.region, credentials: credentials, connections: o.upload.jobs)
    }

    static func uploadImage(_ run: RegisterRun) throws {
        guard case let .image(path) = run.target else { return }
        let scan = try run.scan.made("the image scan", by: "scan-image")
        let snapshotID = try run.snapshotID.made("the snapshot", by: run.snapshotStep)
        let settings = run.options.upload
        let sender = try run.blockSender.made("the block sender", by: "start-snapshot")
        run.say("uploading \(scan.blocks.count) blocks of '\(path)' into '\(snapshotID)' (\(settings.jobs) at a time, SHA-256 by \(FastSHA256.implementation))")
        let sent = try EBSUploader.send(
            image: path, scan: scan, snapshotID: snapshotID, client: run.home, sender: sender, settings: settings,
            clock: run.options.clock, progress: { run.say($0.line) })
        let megabytes = Double(sent.blocksSent) * Double(EBSBlocks.blockSize) / 1e6
        run.say(
            String(
                format: "uploaded %d blocks (%.1f MB) in %.1f s (%.1f MB/s); snapshot completed with checksum %@",
                sent.blocksSent, megabytes, sent.seconds, sent.seconds > 0 ? megabytes / sent.seconds : 0, sent.aggregateChecksum))
    }

    static func waitForSnapshot(_ run: RegisterRun) throws {
        let snapshotID = try run.snapshotID.made("the snapshot", by: run.snapshotStep)
        let done = try Waiter.snapshotCompleted(snapshotID, client: run.home, policy: run.options.snapshotWait, clock: run.options.clock, progress: run.say)
        let size = done.VolumeSize ?? run.snapshotSize ?? run.volume?.Size ?? 8
        if let wanted = run.options.volumeSize, wanted < size { throw AMIError.volumeTooSmall(requested: wanted, snapshot: size) }
        run.snapshotSize = size
    }

    static func registerImage(_ run: RegisterRun) throws {
        let name = try run.name.made("the name", by: "choose-name")
        let snapshotID = try run.snapshotID.made("the snapshot", by: run.snapshotStep)
        let snapshotSize = try run.snapshotSize.made("the snapshot's size", by: "wait-snapshot")
        var request = EC2Args.RegisterImage(
            name: name, description: run.description, snapshotID: snapshotID,
            volumeSize: max(run.options.volumeSize ?? snapshotSize, snapshotSize), enaSupport: run.variant == .ena)
        request.imdsSupport = run.options.imdsSupport
        request.bootMode = run.options.bootMode
        // Pushed before the call: if the answer is lost (interrupted, network), the undo finds the AMI by its
        // unique name. No manual line until its id is known: 'cleanup --build-id' finds it by its tagged snapshot.
        let pending = "image '\(name)' in '\(run.region)'"
        let home = run.home
        run.cleanup.push(pending, onlyOnFailure: true) { [run] in
            try deregisterAll(client: home, id: run.imageID, name: name, keepSnapshots: [snapshotID])
        }
        let imageID = try home.registerImage(request)
        run.imageID = imageID
        run.cleanup.amend(
            pending, to: "image '\(imageID)' in '\(run.region)'",
            manual: [home.context.ec2("deregister-image", EC2Args.deregisterImage(id: imageID)).shellLine])
        run.say("registered '\(imageID)' ('\(name)') in '\(run.region)'")
    }

    static func tagImage(_ run: RegisterRun) throws {
        try run.home.createTags(resources: [try run.imageID.made("the AMI", by: "register-image")], tags: try run.tags())
    }

    static func waitForImage(_ run: RegisterRun) throws {
        let imageID = try run.imageID.made("the AMI", by: "register-image")
        _ = try Waiter.imageAvailable(imageID, client: run.home, region: run.region, policy: run.options.imageWait, clock: run.options.clock, progress: run.say)
    }

    static func makePublic(_ run: RegisterRun) throws {
        let imageID = try run.imageID.made("the AMI", by: "register-image")
        try run.home.makePublic(imageID: imageID)
        run.say("'\(imageID)' is public")
    }

    static func copy(_ run: RegisterRun, to region: String) throws {
        let imageID = try run.imageID.made("the AMI", by: "register-image")
        let name = try run.name.made("the name", by: "choose-name")
        let tags = try run.tags()
        let there = run.client.inRegion(region)
        let copyID = try there.copyImage(sourceImageID: imageID, sourceRegion: run.region, name: name, description: run.description)
        run.cleanup.push(
            "copy '\(copyID)' in '\(region)'",
            manual: [there.context.ec2("deregister-image", EC2Args.deregisterImage(id: copyID)).shellLine + "  # and its snapshot"],
            onlyOnFailure: true
        ) {
            try deregisterAll(client: there, id: copyID, name: nil, keepSnapshots: [])
        }
        run.say("copying '\(imageID)' to '\(region)' as '\(copyID)'")
        try there.createTags(resources: [copyID], tags: tags)
        let image = try Waiter.imageAvailable(copyID, client: there, region: region, policy: run.options.imageWait, clock: run.options.clock, progress: run.say)
        if let copySnapshot = image.snapshotIDs.first {
            try? there.createTags(resources: [copySnapshot], tags: tags)
        }
        if run.options.makePublic { try there.makePublic(imageID: copyID) }
        var record = AMIRecord(
            release: run.release, region: region, variant: run.variant, amiId: copyID, snapshotId: image.snapshotIDs.first ?? "",
            name: name, date: iso(run.options.date), buildId: run.options.buildID, copiedFrom: imageID,
            public: run.options.makePublic, bootsOn: run.options.bootsOn)
        record.manifest = run.options.manifestPath
        record.sbom = run.options.sbomPath
        run.copies.append(record)
    }

    static func recordResults(_ run: RegisterRun) throws {
        guard let path = run.options.resultsFile else { return }
        try ResultsFile.merge(try run.result().all, into: path)
    }

    // MARK: - Failure

    /// The error a failed registration throws: the step and its cause, with what the cleanup did
    /// (deleted, or kept with `--keep-on-error`) once something existed. Before that a check of our
    /// own explains itself and a failed call gets the step it belongs to.
    static func failure(_ error: any Error, cleanup report: StepCleanup?, buildID: String) -> any Error {
        guard let report else { return StepFailed.cause(of: error) }
        let cause = StepFailed.cause(of: report.error)
        // An entry without a manual line is an AMI whose RegisterImage answer never came: not known to exist.
        let created = report.entries.filter { !$0.manual.isEmpty }.map(\.name)
        guard !created.isEmpty else {
            switch cause {
            case AMIError.callFailed, AMIError.unexpectedAnswer:
                return StepFailed(step: report.step, cause: cause, aftermath: "nothing had been created")
            default:
                return StepFailed.cause(of: error)
            }
        }
        var text: String
        if report.kept {
            text =
                "kept what this run created (--keep-on-error): " + created.joined(separator: ", ")
                + "\nremove it with 'centos6-ami cleanup --build-id \(buildID)' or by hand with the commands printed above (also in the log)"
        } else {
            text = "deleted what this run created: " + created.joined(separator: ", ")
            if !report.failures.isEmpty {
                text +=
                    "\nsome cleanup failed: " + report.failures.joined(separator: "; ")
                    + "\nrun 'centos6-ami cleanup --build-id \(buildID)' to retry"
            }
        }
        return StepFailed(step: report.step, cause: cause, aftermath: text)
    }

    // MARK: - Helpers

    /// Refuses `--public` up front when the account blocks public AMIs in `region`.
    /// An endpoint that cannot answer (older API, no permission) only gets a warning:
    /// the later ModifyImageAttribute would then fail and be cleaned up.
    static func preflightPublic(client: EC2Client, region: String, say: (String) -> Void) throws {
        let state: String
        do {
            state = try client.imageBlockPublicAccessState()
        } catch let error as AMIError {
            say("warning: cannot read image block public access in '\(region)' (\(error)); trying --public anyway")
            return
        }
        if state != "unblocked" { throw AMIError.publicAccessBlocked(region: region, state: state) }
    }

    /// Deregisters an image (by id, or found by its unique name) and deletes the snapshots
    /// behind it except `keepSnapshots` (the run's own snapshot has its own undo).
    static func deregisterAll(client: EC2Client, id: String?, name: String?, keepSnapshots: Set<String>) throws {
        var images: [Image] = []
        if let id {
            do { images = [try client.describeImage(id: id)] } catch let error as AMIError where error.isNotFound {
                images = [Image(ImageId: id)]
            }
        } else if let name {
            images = try client.describeImages(filters: [Filter("name", [name])])
        }
        for image in images {
            try client.deregisterImage(id: image.ImageId)
            for snap in image.snapshotIDs where !keepSnapshots.contains(snap) {
                do { try client.deleteSnapshot(id: snap) } catch let error as AMIError where error.isNotFound {}
            }
        }
    }
}

/// One registration as its steps see it: what was asked (fixed for the run) and what each
/// step found or made, nil until that step ran. The steps run one at a time, in order.
public final class RegisterRun {
    public let target: RegisterTarget
    public let release: String
    /// As asked, until `check-image` has read where the image boots.
    public internal(set) var variant: AMIVariant
    /// As given; `check-image` adds where the image boots (`bootsOn`).
    public internal(set) var options: RegisterOptions
    /// The home region: `--region`, else the environment's or the aws CLI's default.
    public let region: String
    /// The regions the AMI is copied to (never the home region itself).
    public let copyRegions: [String]
    /// EC2 without a region of its own (`inRegion` aims it); `home` is aimed at `region`.
    let client: EC2Client
    let home: EC2Client
    /// The engine's cleanup stack: every resource is pushed on it the moment it exists.
    let cleanup: CleanupStack
    let log: Log?

    /// scan-image: the image file's data blocks.
    public internal(set) var scan: EBSBlocks.Scan?
    /// locate-volume: the volume to snapshot.
    public internal(set) var volume: Volume?
    /// choose-name: the AMI's name, free in every region.
    public internal(set) var name: String?
    /// start-snapshot: what sends the blocks (made, credentials and all, before the snapshot exists).
    var blockSender: (any SnapshotBlockSender)?
    /// create-snapshot / start-snapshot.
    public internal(set) var snapshotID: String?
    /// The snapshot's size in GiB: as started, then as completed (wait-snapshot).
    public internal(set) var snapshotSize: Int?
    /// register-image.
    public internal(set) var imageID: String?
    /// copy-to-REGION: one record a copy.
    public internal(set) var copies: [AMIRecord] = []

    init(
        target: RegisterTarget, release: String, variant: AMIVariant, options: RegisterOptions, region: String,
        client: EC2Client, cleanup: CleanupStack, log: Log?
    ) {
        self.target = target
        self.release = release
        self.variant = variant
        self.options = options
        self.region = region
        self.copyRegions = options.copyTo.filter { $0 != region }
        self.client = client
        self.home = client.inRegion(region)
        self.cleanup = cleanup
        self.log = log
    }

    var description: String { AMIRegistrar.description(release: release, variant: variant, options: options) }

    func tags() throws -> [Tag] {
        AMIRegistrar.tags(name: try name.made("the name", by: "choose-name"), release: release, variant: variant, options: options)
    }

    /// A progress line on stderr and in the log.
    func say(_ text: String) { log?.say(text) }

    /// The step that makes the snapshot: uploaded for an image file, else snapshotted from the volume.
    var snapshotStep: String {
        if case .image = target { return "start-snapshot" }
        return "create-snapshot"
    }

    /// The run's snapshot: deleted again if a later step fails (a completed one as much as a pending one).
    func pushSnapshot(_ id: String) {
        snapshotID = id
        let home = home
        cleanup.push(
            "snapshot '\(id)' in '\(region)'", manual: [home.context.ec2("delete-snapshot", EC2Args.deleteSnapshot(id: id)).shellLine],
            onlyOnFailure: true
        ) { try home.deleteSnapshot(id: id) }
    }

    /// The AMI and its copies as the results file records them.
    func result() throws -> RegisteredAMI {
        var primary = AMIRecord(
            release: release, region: region, variant: variant, amiId: try imageID.made("the AMI", by: "register-image"),
            snapshotId: try snapshotID.made("the snapshot", by: snapshotStep), name: try name.made("the name", by: "choose-name"),
            date: AMIRegistrar.iso(options.date), buildId: options.buildID, public: options.makePublic, bootsOn: options.bootsOn)
        primary.manifest = options.manifestPath
        primary.sbom = options.sbomPath
        return RegisteredAMI(primary: primary, copies: copies)
    }
}
