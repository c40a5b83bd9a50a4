import Disk
import Foundation
import Host
import Versions

/// One named step of the install, run by `Host.StepEngine` over the install's context.
public typealias InstallStep = Step<InstallContext>

/// The install, step by step; each step is declared next to its code
/// (here, PackageSteps.swift, ENASteps.swift, ConfigureSteps.swift).
public enum InstallSteps {
    /// Every step in order, the ENA ones included.
    static let every: [InstallStep] = [
        preflightStep, ENASteps.sourceStep, PackageSteps.fetchMetadataStep, PackageSteps.resolveStep, ENASteps.resolveStep,
        PackageSteps.downloadStep, PackageSteps.verifyPackagesStep, ENASteps.buildStep,
        createImageStep, attachLoopStep, partitionStep, waitPartitionStep, formatStep, mountStep, mountYumCacheStep,
        PackageSteps.bootstrapStep, PackageSteps.installPackagesStep, ENASteps.installStep,
        ConfigureSteps.configureStep, ConfigureSteps.initramfsStep, ConfigureSteps.installBootloaderStep, ConfigureSteps.cleanStep,
        ConfigureSteps.bootVerdictStep, unmountStep, verifyStep,
    ]

    /// The install these options ask for: the ENA steps only with `--ena`.
    public static func steps(for options: InstallOptions) -> [InstallStep] { steps(ena: options.ena) }

    public static func steps(ena: Bool) -> [InstallStep] {
        let enaSteps = Set(ENASteps.steps.map(\.name))
        return every.filter { ena || !enaSteps.contains($0.name) }
    }

    public static func names(ena: Bool) -> [String] { steps(ena: ena).map(\.name) }

    // MARK: steps

    static let preflightStep = InstallStep("preflight", "check root, release, target, host tools; lock the target") { try preflight($0) }
    static func preflight(_ ctx: InstallContext) throws {
        let target = try inspectTarget(ctx.options.target)
        // The lock comes first: another run's own loop device and mounts must not be reported as ours.
        try ctx.runner.perform {
            for path in TargetIdentity.lockPaths(target, directory: ctx.options.lockDirectory) { try lockTarget(ctx, lockPath: path) }
            try RecoveryCheck.refuseDeadRunLeftovers(target: target, journalDirectory: RunJournal.directory(workDirectory: ctx.options.workDirectory))
        }
        var tools = Preflight.requiredTools
        if case .imageFile = target { tools += Preflight.loopTools }
        if ctx.options.mirrors.contains(where: { $0.lowercased().hasPrefix("https:") }) { tools += Preflight.httpsTools }
        if ctx.options.ena { tools += Preflight.enaTools }
        var facts = Preflight.gather(target: target, tools: tools)
        // Reads back: the plan needs no root.
        if ctx.runner.isDryRun && !facts.isRoot {
            // The plan needs no privileges; the real run checks again.
            facts.isRoot = true
            ctx.note("not running as root: the real run must")
        }
        if let first = Preflight.errors(facts).first { throw first }
        if let error = Preflight.sizeOptionError(target: target, requested: ctx.options.imageSize, given: ctx.options.sizeGiven) { throw error }
        if case let .device(path) = ctx.options.yumCache {
            try checkYumCacheDevice(path, target: target)
        }
        if case let .directory(path) = ctx.options.yumCache {
            try ctx.runner.perform {
                if FileManager.default.isWritableFile(atPath: path) == false { throw DiskError.yumCache(.directoryNotWritable(path)) }
            }
        }
        try ctx.runner.perform { try checkCacheWritable(ctx.options.cacheDirectory) }
        if case let .blockDevice(path, _) = target { ctx.journal?.record(.target(path)) }
        ctx.targetIfMade = target
    }

    /// `--cache` must take downloads: said before anything starts, naming the option.
    /// (access(2) reports a read-only filesystem even for root.)
    static func checkCacheWritable(_ cache: String) throws {
        var existing = cache
        while !FileManager.default.fileExists(atPath: existing), existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        guard access(existing, W_OK) == 0 else {
            let reason = errno == EROFS ? "on a read-only filesystem (EROFS)" : "not writable (\(String(cString: strerror(errno))))"
            throw InstallError.cacheNotWritable(path: cache, reason: existing == cache ? reason : "'\(existing)', where it would be made, is \(reason)")
        }
    }

    /// Takes one of the target's locks (`TargetIdentity`) and pushes its release, which removes the file.
    static func lockTarget(_ ctx: InstallContext, lockPath: String) throws {
        let described = URL(fileURLWithPath: ctx.options.target).standardizedFileURL.path
        let lock: FileLock
        do {
            lock = try FileLock.acquire(
                lockPath, holderDescription: "centos6-ami install \(ctx.options.release) \(described)",
                removeOnRelease: true, base: ctx.options.lockDirectory)
        } catch let HostError.lockHeld(_, holder) {
            throw DiskError.inUseByRun(path: ctx.options.target, holder: holder)
        }
        ctx.locks.append(lock)
        ctx.journal?.record(.lock(lock.path))
        ctx.cleanup.push("release lock \(lock.path)") { lock.release() }
    }

    static func checkYumCacheDevice(_ path: String, target: TargetKind) throws {
        guard let name = BlockDevices.kernelName(of: path), let info = BlockDevices.info(kernelName: name) else {
            throw DiskError.yumCache(.notBlockDevice(path))
        }
        if case let .blockDevice(_, t) = target, t.name == info.name || t.partitions.contains(info.name) {
            throw DiskError.yumCache(.isTarget(path))
        }
        if let mount = Mounts.current().first(where: { $0.majorMinor == info.majorMinor }) {
            throw DiskError.yumCache(.mounted(path: path, mountPoint: mount.mountPoint))
        }
        if Signatures.detect(Signatures.readProbe(path) ?? []).isEmpty {
            throw DiskError.yumCache(.noFilesystem(path))
        }
    }

    static let createImageStep = InstallStep("create-image", "create the sparse image file (image targets that do not exist yet)") { try createImage($0) }
    static func createImage(_ ctx: InstallContext) throws {
        guard case let .imageFile(path, exists, _) = try ctx.target, !exists else { return }
        // A half-built image is worse than none: remove it if the install fails. Pushed
        // before truncate runs: a truncate that fails ("File too large") still leaves
        // an empty file that the next run would take for an existing image.
        ctx.journal?.record(.image(path))
        ctx.cleanup.push("remove unfinished image \(path)", manual: ["rm -f \(shellQuote(path))"], onlyOnFailure: true) {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        }
        try ctx.runner.checked(Preparation.createImage(path: path, bytes: ctx.options.imageSize))
        // Now that the file exists, its inode is locked too: a hard link or symlink made to it meanwhile is refused.
        try ctx.runner.perform {
            if let key = TargetIdentity.inodeKey(ofFile: path) {
                try lockTarget(ctx, lockPath: TargetIdentity.lockPath(key: key, directory: ctx.options.lockDirectory))
            }
        }
    }

    static let attachLoopStep = InstallStep("attach-loop", "attach the image file to a loop device with partition scanning") { try attachLoop($0) }
    static func attachLoop(_ ctx: InstallContext) throws {
        let target = try ctx.target
        guard case let .imageFile(path, _, _) = target else {
            // A block device is written as it is: nothing to attach.
            ctx.diskIfMade = AttachedDisk(device: target.path, cleanupMark: ctx.cleanup.count)
            return
        }
        ctx.journal?.record(.loopOf(path))
        let result = try ctx.runner.checked(Preparation.attachLoop(image: path))
        let runner = ctx.runner
        var device = "/dev/loopN"
        try runner.perform("losetup prints the loop device; it is called /dev/loopN below") {
            device = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            guard device.hasPrefix("/dev/loop") else { throw InstallError.notALoopDevice(printed: device) }
        }
        ctx.journal?.record(.loop(device: device, image: path))
        ctx.cleanup.push("detach \(device)", manual: ["losetup -d \(device)"]) {
            // Only if it is still attached to our image (reads back).
            guard runner.isDryRun || BlockDevices.loopDevices(backing: path).contains(device) else { return }
            try runner.checked(Preparation.detachLoop(device))
        }
        ctx.diskIfMade = AttachedDisk(device: device, cleanupMark: ctx.cleanup.count)
    }

    static let partitionStep = InstallStep("partition", "msdos label, one bootable primary partition from 1 MiB to the end") { try partition($0) }
    static func partition(_ ctx: InstallContext) throws {
        let device = try ctx.device
        try ctx.runner.checked(Preparation.partition(device: device))
        ctx.partitionIfMade = BlockDevices.partitionPath(disk: device, number: 1)
    }

    static let waitPartitionStep = InstallStep("wait-partition", "wait for the partition node (udev settle, re-read, mknod from /sys)") {
        try waitPartition($0)
    }
    static func waitPartition(_ ctx: InstallContext) throws {
        let partition = try ctx.partition
        try ctx.runner.perform("wait for \(partition): udevadm settle where there is udev, else blockdev --rereadpt / partx, else mknod from /sys/class/block")
        {
            try ensurePartitionNode(ctx)
        }
    }

    /// Before each use of the partition node (see `PartitionNode`).
    static func ensurePartitionNode(_ ctx: InstallContext) throws {
        // Reads back: whether the node is there.
        guard !ctx.runner.isDryRun else { return }
        let node = try ctx.partition
        guard try PartitionNode.ensure(partition: node, disk: try ctx.device, runner: ctx.runner) else { return }
        ctx.log.write("made \(node) from /sys/class/block")
        ctx.journal?.record(.node(node))
        if !ctx.cleanup.names.contains("remove node \(node)") {
            ctx.cleanup.push("remove node \(node)", manual: ["rm -f \(node)"]) { try? FileManager.default.removeItem(atPath: node) }
        }
    }

    static let formatStep = InstallStep("format", "ext4 with CentOS 6's feature set, 256-byte inodes, label '/', a fresh UUID, no zero-filling") {
        try format($0)
    }
    static func format(_ ctx: InstallContext) throws {
        try ensurePartitionNode(ctx)
        try ctx.runner.checked(Preparation.mkfs(partition: try ctx.partition, uuid: ctx.filesystemUUID))
    }

    static let mountStep = InstallStep("mount", "mount the new filesystem on a private directory") { try mountRoot($0) }
    static func mountRoot(_ ctx: InstallContext) throws {
        let runner = ctx.runner
        let workDir = ctx.workDir, root = ctx.rootPath
        ctx.journal?.record(.workDir(workDir))
        ctx.journal?.record(.root(root))
        ctx.journal?.record(.mount(root))
        try runner.checked(Command("mkdir", ["-p", "-m", "0700", root]))
        ctx.cleanup.push("remove \(workDir)", manual: ["rmdir \(root) \(workDir)"]) {
            // rmdir only: never delete contents, in case something is still mounted there. Reads back: which exist.
            let present = runner.isDryRun ? [root, workDir] : [root, workDir].filter { FileManager.default.fileExists(atPath: $0) }
            if !present.isEmpty { try runner.checked(Command("rmdir", present)) }
        }
        try ensurePartitionNode(ctx)
        try runner.checked(Preparation.mountRoot(partition: try ctx.partition, at: root))
        pushUnmount(ctx, root)
        ctx.mountedIfMade = RootTree(root: root, workDir: workDir, cleanup: ctx.cleanup, stamp: ctx.stamp())
    }

    static let mountYumCacheStep = InstallStep("mount-yum-cache", "mount the yum cache (tmpfs, device or directory) on the target's /var/cache/yum") {
        try mountYumCache($0)
    }
    static func mountYumCache(_ ctx: InstallContext) throws {
        let cacheDir = try ctx.root + "/var/cache/yum"
        try ctx.runner.checked(Command("mkdir", ["-p", cacheDir]))
        try ctx.runner.checked(Preparation.mountYumCache(ctx.options.yumCache, at: cacheDir))
        pushUnmount(ctx, cacheDir)
    }

    /// Pushes an unmount that first checks the mount is still there, and retries a busy one.
    static func pushUnmount(_ ctx: InstallContext, _ mountPoint: String) {
        pushUnmount(ctx.cleanup, mountPoint, runner: ctx.runner)
    }

    /// The same on any cleanup stack (a scratch root's own), in any `UnmountStyle`.
    static func pushUnmount(_ stack: CleanupStack, _ mountPoint: String, runner: CommandRunner, style: UnmountStyle = .plain) {
        let command = Preparation.unmount(mountPoint, style)
        stack.push("unmount \(mountPoint)", manual: [command.shellLine]) {
            try unmountRetrying(mountPoint, command: command, runner: runner)
        }
    }

    /// Unmounts `point` if it is still mounted, retrying a busy mount a few times.
    static func unmountRetrying(_ point: String, command: Command, runner: CommandRunner) throws {
        // Reads back: whether it is still mounted.
        guard runner.isDryRun || Mounts.isMountPoint(point) else { return }
        var last = CommandResult.success
        for attempt in 0..<5 {
            last = runner.run(command)
            if last.status == 0 || !Mounts.isMountPoint(point) { return }
            usleep(UInt32(200_000 * (attempt + 1)))
        }
        throw CommandFailed(command: command, result: last)
    }

    static let unmountStep = InstallStep("unmount", "unmount the yum cache and the root; flush the device once (sync)") { try unmount($0) }
    static func unmount(_ ctx: InstallContext) throws {
        let mark = try ctx.disk.cleanupMark
        let failures = ctx.runner.unwinding { ctx.cleanup.unwind(downTo: mark) }
        if let first = failures.first { throw InstallError.undoFailed(first) }
        // The root was mounted with barrier=0 (Preparation.mountRoot): one flush for the whole build.
        try ctx.runner.checked(Preparation.flush(device: try ctx.device))
    }

    static let verifyStep = InstallStep("verify", "e2fsck -fn on the unmounted filesystem") { try verify($0) }
    static func verify(_ ctx: InstallContext) throws {
        try ensurePartitionNode(ctx)
        try ctx.runner.checked(Preparation.fsck(partition: try ctx.partition))
    }
}
