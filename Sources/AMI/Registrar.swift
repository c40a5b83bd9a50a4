import Foundation
import Host

/// What `register` (and `install`/`batch --register`) may change about a registration.
// Unchecked only for its hook closures (instanceID, enaCheck, preUploadCheck): set by the command, called on the register thread.
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
    public var instanceID: () throws -> String = { throw AMIError.badTarget("instance id unknown") }
    public var sysfsRoot = "/sys"
    public var mountinfoPath = "/proc/self/mountinfo"
    /// Called before anything is created when the variant is ENA: throws if the image lacks kmod-ena.
    /// `install` knows what it installed and leaves it nil; `register` on a local device checks the files.
    public var enaCheck: (() throws -> Void)?
    /// Runs first for an image-file target, before any AWS call: throws to refuse the image.
    /// This is where the image's hygiene gate and boot verdict plug in (the CLI's default
    /// mounts the image read-only and checks it holds a kernel).
    public var preUploadCheck: ((_ imagePath: String) throws -> Void)?
    /// How an image file is uploaded (parallel aws CLI calls, tries per block).
    public var upload = EBSUploader.Settings()
    /// The build's package manifest (`IMAGE.manifest.json`): its path goes into the results
    /// file, its sha256 into the `centos6-ami:manifest-sha256` tag.
    public var manifestPath: String?
    public var manifestSHA256: String?
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

/// The AMI and its copies, as recorded in the results file.
public struct RegisteredAMI: Equatable, Sendable {
    public var primary: AMIRecord
    public var copies: [AMIRecord]
    public var all: [AMIRecord] { [primary] + copies }
}

/// Snapshot → wait → RegisterImage → tag → wait → (public) → (copies) → results file.
/// Everything created is deleted again if a later step fails, unless `keepOnError`.
public enum AMIRegistrar {
    /// `CentOS 6.9 x86_64 ENA 2024-05-01`, as the issue names them.
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

    static func day(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f.string(from: date)
    }

    static func iso(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    public static func tags(name: String, release: String, variant: AMIVariant, options: RegisterOptions) -> [Tag] {
        [Tag("Name", name), Tag(TagKey.buildID, options.buildID), Tag(TagKey.release, release),
         Tag(TagKey.variant, variant.rawValue), Tag(TagKey.toolVersion, options.toolVersion)]
            + (options.manifestSHA256.map { [Tag(TagKey.manifestSHA256, $0)] } ?? [])
            + (options.bootsOn.map { [Tag(TagKey.bootsOn, $0)] } ?? [])
    }

    /// Snapshots the target and registers it as an AMI (plus copies); records it in the results file.
    ///
    /// - Important: creates billable EC2 resources (snapshot, AMI, copies). On failure they are
    ///   deleted again, unless `options.keepOnError`; the thrown `AMIError.stepFailed` names the
    ///   failed step and what was deleted or kept.
    public static func register(target: RegisterTarget, release: String, variant: AMIVariant, options: RegisterOptions,
                                runner: any CommandRunner, log: Log?) throws -> RegisteredAMI {
        let say: (String) -> Void = { text in if let log { log.step(text) } }
        let client = EC2Client(context: options.aws, runner: runner)
        var step = "preflight"
        let created = CleanupStack(log: log)
        // What exists so far, by id, with the command that removes it: named in the error.
        var ledger: [(name: String, manual: String)] = []
        do {
            // Preflight: nothing is created until every check passed.
            let region = try client.resolvedRegion(environment: options.environment)
            let copyRegions = options.copyTo.filter { $0 != region }
            // An image file is checked (hygiene, boot verdict) and scanned before anything else.
            var imageScan: EBSBlocks.Scan?
            if case let .image(path) = target {
                step = "check image"
                try options.preUploadCheck?(path)
                step = "scan image"
                let scan = try EBSBlocks.scan(path: path)
                if let wanted = options.volumeSize, wanted < scan.volumeSizeGiB {
                    throw AMIError.imageTooBig(requested: wanted, needed: scan.volumeSizeGiB)
                }
                say("'\(path)': \(scan.size) bytes (\(scan.volumeSizeGiB) GiB volume), \(scan.blocks.count) blocks of 512 KiB hold data"
                    + " (\(scan.zeroBlocksSkipped) all-zero blocks in its data extents skipped)")
                imageScan = scan
            }
            step = "preflight"
            if variant == .ena, let check = options.enaCheck { try check() }
            if options.makePublic {
                for r in [region] + copyRegions { try preflightPublic(client: client.inRegion(r), region: r, say: say) }
            }
            var volumeID: String?
            switch target {
            case let .volume(id):
                volumeID = id
            case let .device(path):
                step = "check target"
                try VolumeLocator.quiesce(device: path, sysfsRoot: options.sysfsRoot, mountinfoPath: options.mountinfoPath, runner: runner)
                volumeID = try VolumeLocator.locate(device: path, sysfsRoot: options.sysfsRoot, instanceID: options.instanceID, client: client.inRegion(region))
                say("'\(path)' is volume '\(volumeID ?? "")'")
            case .image:
                volumeID = nil
            }
            var volume: Volume?
            if let volumeID {
                step = "describe volume"
                volume = try client.inRegion(region).describeVolume(id: volumeID)
                if let wanted = options.volumeSize, let size = volume?.Size, wanted < size {
                    throw AMIError.volumeTooSmall(requested: wanted, snapshot: size)
                }
            }
            step = "choose name"
            let base = baseName(release: release, variant: variant, date: options.date)
            var name = base
            for r in [region] + copyRegions {
                let c = client.inRegion(r)
                guard let n = try uniqueName(base: name, buildID: options.buildID, taken: { !(try c.describeImages(filters: [Filter("name", [$0])])).isEmpty }) else {
                    throw AMIError.nameTaken(name: "\(base) \(options.buildID)", region: r)
                }
                name = n
            }
            let description = "CentOS \(release) x86_64\(variant == .ena ? " with the ENA driver" : ""), built from scratch by centos6-ami \(options.toolVersion) (build \(options.buildID))"
            let tags = tags(name: name, release: release, variant: variant, options: options)
            let home = client.inRegion(region)

            let snapshotID: String
            var startedSize: Int?
            if case let .image(path) = target, let scan = imageScan {
                step = "start snapshot"
                say("starting a snapshot of \(scan.volumeSizeGiB) GiB in '\(region)' (EBS direct APIs)")
                let started = try home.startSnapshot(volumeSizeGiB: scan.volumeSizeGiB, description: description, tags: tags)
                snapshotID = started.SnapshotId
                startedSize = started.VolumeSize ?? scan.volumeSizeGiB
                // A pending snapshot can be deleted; failing that, StartSnapshot's timeout cancels it.
                created.push("snapshot '\(snapshotID)'") { try home.deleteSnapshot(id: snapshotID) }
                ledger.append(("snapshot '\(snapshotID)' in '\(region)'", home.context.ec2("delete-snapshot", EC2Args.deleteSnapshot(id: snapshotID)).shellLine))

                step = "upload image"
                say("uploading \(scan.blocks.count) blocks of '\(path)' into '\(snapshotID)' (\(options.upload.jobs) at a time)")
                let sent = try EBSUploader.send(image: path, scan: scan, snapshotID: snapshotID, client: home, settings: options.upload,
                                                clock: options.clock, progress: { say($0.line) })
                say(String(format: "uploaded %d blocks (%.1f MB) in %.1f s (%.1f MB/s); snapshot completed with checksum %@",
                           sent.blocksSent, Double(sent.blocksSent) * Double(EBSBlocks.blockSize) / 1e6, sent.seconds,
                           sent.seconds > 0 ? Double(sent.blocksSent) * Double(EBSBlocks.blockSize) / 1e6 / sent.seconds : 0, sent.aggregateChecksum))
            } else {
                guard let volumeID else { throw AMIError.badTarget("no volume to snapshot") }
                step = "create snapshot"
                say("creating a snapshot of '\(volumeID)' in '\(region)'")
                let snapshot = try home.createSnapshot(volumeID: volumeID, description: description, tags: tags)
                snapshotID = snapshot.SnapshotId
                startedSize = snapshot.VolumeSize
                created.push("snapshot '\(snapshotID)'") { try home.deleteSnapshot(id: snapshotID) }
                ledger.append(("snapshot '\(snapshotID)' in '\(region)'", home.context.ec2("delete-snapshot", EC2Args.deleteSnapshot(id: snapshotID)).shellLine))
            }

            step = "wait for snapshot"
            let done = try Waiter.snapshotCompleted(snapshotID, client: home, policy: options.snapshotWait, clock: options.clock, progress: say)
            let snapshotSize = done.VolumeSize ?? startedSize ?? volume?.Size ?? 8
            if let wanted = options.volumeSize, wanted < snapshotSize { throw AMIError.volumeTooSmall(requested: wanted, snapshot: snapshotSize) }

            step = "register image"
            var request = EC2Args.RegisterImage(name: name, description: description, snapshotID: snapshotID,
                                                volumeSize: max(options.volumeSize ?? snapshotSize, snapshotSize), enaSupport: variant == .ena)
            request.imdsSupport = options.imdsSupport
            request.bootMode = options.bootMode
            // Pushed before the call: if the answer is lost (interrupted, network), the undo finds the AMI by its unique name.
            let imageBox = Box<String?>(nil)
            created.push("image '\(name)' in '\(region)'") {
                try deregisterAll(client: home, id: imageBox.value, name: name, keepSnapshots: [snapshotID])
            }
            let imageID = try home.registerImage(request)
            imageBox.value = imageID
            ledger.append(("image '\(imageID)' in '\(region)'", home.context.ec2("deregister-image", EC2Args.deregisterImage(id: imageID)).shellLine))
            say("registered '\(imageID)' ('\(name)') in '\(region)'")

            step = "tag image"
            try home.createTags(resources: [imageID], tags: tags)

            step = "wait for image"
            _ = try Waiter.imageAvailable(imageID, client: home, region: region, policy: options.imageWait, clock: options.clock, progress: say)

            if options.makePublic {
                step = "make public"
                try home.makePublic(imageID: imageID)
                say("'\(imageID)' is public")
            }
            let date = iso(options.date)
            var primary = AMIRecord(release: release, region: region, variant: variant, amiId: imageID, snapshotId: snapshotID,
                                    name: name, date: date, buildId: options.buildID, public: options.makePublic, bootsOn: options.bootsOn)
            primary.manifest = options.manifestPath

            var copies: [AMIRecord] = []
            for r in copyRegions {
                step = "copy to \(r)"
                let there = client.inRegion(r)
                let copyID = try there.copyImage(sourceImageID: imageID, sourceRegion: region, name: name, description: description)
                created.push("copy '\(copyID)' in '\(r)'") {
                    try deregisterAll(client: there, id: copyID, name: nil, keepSnapshots: [])
                }
                ledger.append(("copy '\(copyID)' in '\(r)'", there.context.ec2("deregister-image", EC2Args.deregisterImage(id: copyID)).shellLine
                               + "  # and its snapshot"))
                say("copying '\(imageID)' to '\(r)' as '\(copyID)'")
                try there.createTags(resources: [copyID], tags: tags)
                let image = try Waiter.imageAvailable(copyID, client: there, region: r, policy: options.imageWait, clock: options.clock, progress: say)
                if let copySnapshot = image.snapshotIDs.first {
                    try? there.createTags(resources: [copySnapshot], tags: tags)
                }
                if options.makePublic { try there.makePublic(imageID: copyID) }
                var copy = AMIRecord(release: release, region: r, variant: variant, amiId: copyID, snapshotId: image.snapshotIDs.first ?? "",
                                     name: name, date: date, buildId: options.buildID, copiedFrom: imageID, public: options.makePublic,
                                     bootsOn: options.bootsOn)
                copy.manifest = options.manifestPath
                copies.append(copy)
            }

            let result = RegisteredAMI(primary: primary, copies: copies)
            if let path = options.resultsFile {
                step = "record results"
                try ResultsFile.merge(result.all, into: path)
            }
            _ = created.abandon() // success: everything created stays
            return result
        } catch {
            if created.isEmpty {
                // Checks of our own explain themselves; a failed call gets the step it belongs to.
                switch error {
                case AMIError.callFailed, AMIError.unexpectedAnswer:
                    throw AMIError.stepFailed(step: step, reason: "\(error)", cleanup: "nothing had been created")
                default:
                    throw error
                }
            }
            let reason = (error as? AMIError)?.description ?? "\(error)"
            let names = ledger.map(\.name).reversed()
            if options.keepOnError {
                _ = created.abandon()
                var text = "kept what this run created (--keep-on-error): " + names.joined(separator: ", ")
                text += "\nremove it with 'centos6-ami cleanup --build-id \(options.buildID)' or by hand:\n  "
                    + ledger.reversed().map(\.manual).joined(separator: "\n  ")
                throw AMIError.stepFailed(step: step, reason: reason, cleanup: text)
            }
            // After ^C the runner refuses new commands unless it is unwinding.
            (runner as? ProcessRunner)?.isUnwinding = true
            let failures = created.unwind()
            var text = names.isEmpty ? "nothing had been created" : "deleted what this run created: " + names.joined(separator: ", ")
            if !failures.isEmpty {
                text += "\nsome cleanup failed: " + failures.joined(separator: "; ")
                    + "\nrun 'centos6-ami cleanup --build-id \(options.buildID)' to retry"
            }
            throw AMIError.stepFailed(step: step, reason: reason, cleanup: text)
        }
    }

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

/// A mutable cell shared with an undo closure.
// Unchecked: set and read by the register thread and its undo closures, which the same thread runs.
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
