import Disk
import Foundation
import Host
import Versions

/// One named step of the install: a flat list of these is the whole build.
public struct Step: Sendable {
    public var name: String
    /// What it does, for the plan and `--help`.
    public var summary: String
    /// Set for steps later issues add: listed in the plan, skipped at run time.
    public var notYetImplemented: Bool
    public var run: @Sendable (InstallContext) throws -> Void

    public init(_ name: String, _ summary: String, notYetImplemented: Bool = false, run: @escaping @Sendable (InstallContext) throws -> Void) {
        self.name = name
        self.summary = summary
        self.notYetImplemented = notYetImplemented
        self.run = run
    }
}

/// The install, step by step (README.md's step table: preflight, partition, format,
/// mount, bootstrap, install-packages, configure, install-bootloader, clean, unmount, verify).
public enum InstallSteps {
    public static func all() -> [Step] {
        [
            Step("preflight", "check root, release, target, host tools; lock the target", run: preflight),
            Step("ena-source", "--ena: eligibility from versions.json; the ENA source extracted on the builder and checked file by file against the pin", run: ENASteps.source),
            Step("fetch-metadata", "repomd.xml, primary and comps of <mirror>/<release>/os/x86_64/, each checked against repomd", run: PackageSteps.fetchMetadata),
            Step("resolve", "the bootstrap set (closure of yum, rpm, bash, coreutils, centos-release...) and the set yum will install", run: PackageSteps.resolve),
            Step("ena-resolve", "--ena: gcc, make, rpm-build and kernel-devel-<kernel> for the build root (downloaded and verified with the rest)", run: ENASteps.resolve),
            Step("download", "every package into the verified, content-addressed cache on the builder (parallel, resumable)", run: PackageSteps.download),
            Step("verify-packages", "each package's signature by the pinned key (gpgv), before anything is unpacked", run: PackageSteps.verifyPackages),
            Step("ena-build", "--ena: scratch build root on the builder, kbuild against kernel-devel, kmod-ena RPM; build root removed", run: ENASteps.build),
            Step("create-image", "create the sparse image file (image targets that do not exist yet)", run: createImage),
            Step("attach-loop", "attach the image file to a loop device with partition scanning", run: attachLoop),
            Step("partition", "msdos label, one bootable primary partition from 1 MiB to the end", run: partition),
            Step("wait-partition", "wait for the partition node (udev settle, re-read, mknod from /sys)", run: waitPartition),
            Step("format", "ext4 with CentOS 6's feature set, 256-byte inodes, label '/', a fresh UUID, no zero-filling", run: format),
            Step("mount", "mount the new filesystem on a private directory", run: mountRoot),
            Step("mount-yum-cache", "mount the yum cache (tmpfs, device or directory) on the target's /var/cache/yum", run: mountYumCache),
            Step("bootstrap", "unpack the verified bootstrap set; /proc, /sys, /dev in the target; rpm --initdb, import the key, register the set", run: PackageSteps.bootstrap),
            Step("install-packages", "the target's yum, one transaction: install @core, the pinned kernel, xfsprogs, grub (acpid, ntp) --exclude=postfix", run: PackageSteps.installPackages),
            Step("ena-install", "--ena: the target's rpm installs kmod-ena (depmod); the kernel line gets net.ifnames=0", run: ENASteps.install),
            Step("configure", "fstab, grub.conf (+ menu.lst link), sysconfig/kernel, network, SELinux off, GMT, repos, sshd, sudoers, rc.local (IMDSv2), dracut's ec2.conf, ntp.conf; ec2-user and root locked; chkconfig acpid, ntpd on", run: ConfigureSteps.configure),
            Step("initramfs", "the target's own dracut regenerates the kernel's initramfs with /etc/dracut.conf.d/ec2.conf (never the builder's dracut)", run: ConfigureSteps.regenerateInitramfs),
            Step("install-bootloader", "grub-legacy stage files into /boot/grub and setup (hd0) through private alias nodes", run: ConfigureSteps.installBootloader),
            Step("clean", "remove host keys, keys, history, udev net rules, yum uuid and cache; truncate logs; empty /tmp", run: ConfigureSteps.clean),
            Step("boot-verdict", "read-only: which of xen-blkfront, xen-netfront, nvme, ena the default kernel has at boot: Xen, Nitro", run: ConfigureSteps.bootVerdict),
            Step("unmount", "unmount the yum cache and the root; flush the device once (sync)", run: unmount),
            Step("verify", "e2fsck -fn on the unmounted filesystem", run: verify),
        ]
    }

    public static var names: [String] { all().map(\.name) }

    // MARK: steps

    static func preflight(_ ctx: InstallContext) throws {
        let target = try inspectTarget(ctx.options.target)
        ctx.target = target
        // The lock comes first: another run's own loop device and mounts must not be reported as ours.
        if !ctx.dryRun {
            for path in TargetIdentity.lockPaths(target, directory: ctx.options.lockDirectory) { try lockTarget(ctx, lockPath: path) }
            try RecoveryCheck.refuseDeadRunLeftovers(target: target, journalDirectory: RunJournal.directory(workDirectory: ctx.options.workDirectory))
        }
        var tools = Preflight.requiredTools
        if case .imageFile = target { tools += Preflight.loopTools }
        if ctx.options.mirror.lowercased().hasPrefix("https:") { tools += Preflight.httpsTools }
        if ctx.options.ena { tools += Preflight.enaTools }
        var facts = Preflight.gather(target: target, tools: tools)
        if ctx.dryRun && !facts.isRoot {
            // The plan needs no privileges; the real run checks again.
            facts.isRoot = true
            ctx.note("not running as root: the real run must")
        }
        if let first = Preflight.errors(facts).first { throw first }
        if let error = Preflight.sizeOptionError(target: target, requested: ctx.options.imageSize, given: ctx.options.sizeGiven) { throw error }
        if case let .device(path) = ctx.options.yumCache {
            try checkYumCacheDevice(path, target: target)
        }
        if case let .directory(path) = ctx.options.yumCache, !ctx.dryRun {
            if FileManager.default.isWritableFile(atPath: path) == false { throw DiskError.yumCache("directory '\(path)' is not writable") }
        }
        ctx.filesystemUUID = ctx.options.filesystemUUID ?? UUID().uuidString.lowercased()
        ctx.workDir = "\(ctx.options.workDirectory)/\(ctx.options.release)-\(ctx.filesystemUUID.prefix(8))"
        if case let .blockDevice(path, _) = target { ctx.device = path; ctx.journal?.record(.target(path)) }
    }

    /// Takes one of the target's locks (`TargetIdentity`) and pushes its release, which removes the file.
    static func lockTarget(_ ctx: InstallContext, lockPath: String) throws {
        let described = URL(fileURLWithPath: ctx.options.target).standardizedFileURL.path
        let lock: FileLock
        do {
            lock = try FileLock.acquire(lockPath, holderDescription: "centos6-ami install \(ctx.options.release) \(described)",
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
            throw DiskError.yumCache("'\(path)' is not a block device")
        }
        if case let .blockDevice(_, t) = target, t.name == info.name || t.partitions.contains(info.name) {
            throw DiskError.yumCache("'\(path)' is the target itself")
        }
        if let mount = Mounts.current().first(where: { $0.majorMinor == info.majorMinor }) {
            throw DiskError.yumCache("'\(path)' is mounted on '\(mount.mountPoint)'; unmount it first")
        }
        if Signatures.detect(Signatures.readProbe(path) ?? []).isEmpty {
            throw DiskError.yumCache("'\(path)' has no filesystem; make one first (e.g. 'mkfs.ext4 \(path)')")
        }
    }

    static func createImage(_ ctx: InstallContext) throws {
        guard case let .imageFile(path, exists, _) = ctx.target, !exists else { return }
        // A half-built image is worse than none: remove it if the install fails. Pushed
        // before truncate runs: a truncate that fails ("File too large") still leaves
        // an empty file that the next run would take for an existing image.
        ctx.journal?.record(.image(path))
        ctx.cleanup.push("remove unfinished image \(path)", manual: ["rm -f \(shellQuote(path))"], onlyOnFailure: true) {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        }
        try ctx.runner.checked(Preparation.createImage(path: path, bytes: ctx.options.imageSize))
        // Now that the file exists, its inode is locked too: a hard link or symlink made to it meanwhile is refused.
        if !ctx.dryRun, let key = TargetIdentity.inodeKey(ofFile: path) {
            try lockTarget(ctx, lockPath: TargetIdentity.lockPath(key: key, directory: ctx.options.lockDirectory))
        }
    }

    static func attachLoop(_ ctx: InstallContext) throws {
        guard case let .imageFile(path, _, _) = ctx.target else { ctx.deviceMark = ctx.cleanup.count; return }
        ctx.journal?.record(.loopOf(path))
        let result = try ctx.runner.checked(Preparation.attachLoop(image: path))
        let device = ctx.dryRun ? "/dev/loopN" : result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard ctx.dryRun || device.hasPrefix("/dev/loop") else {
            throw InstallError.incomplete(step: "attach-loop", reason: "losetup printed '\(device)' instead of a loop device")
        }
        ctx.device = device
        ctx.journal?.record(.loop(device: device, image: path))
        if ctx.dryRun { ctx.note("losetup prints the loop device; it is called /dev/loopN below") }
        let runner = ctx.runner
        ctx.cleanup.push("detach \(device)", manual: ["losetup -d \(device)"]) {
            // Only if it is still attached to our image.
            guard runner.isDryRun || BlockDevices.loopDevices(backing: path).contains(device) else { return }
            try runner.checked(Preparation.detachLoop(device))
        }
        ctx.deviceMark = ctx.cleanup.count
    }

    static func partition(_ ctx: InstallContext) throws {
        try ctx.runner.checked(Preparation.partition(device: ctx.device))
        ctx.partition = BlockDevices.partitionPath(disk: ctx.device, number: 1)
    }

    static func waitPartition(_ ctx: InstallContext) throws {
        if ctx.dryRun {
            ctx.note("wait for \(ctx.partition): udevadm settle where there is udev, else blockdev --rereadpt / partx, else mknod from /sys/class/block")
            return
        }
        try ensurePartitionNode(ctx)
    }

    /// Before each use of the partition node (see `PartitionNode`).
    static func ensurePartitionNode(_ ctx: InstallContext) throws {
        guard !ctx.dryRun else { return }
        guard try PartitionNode.ensure(partition: ctx.partition, disk: ctx.device, runner: ctx.runner) else { return }
        ctx.log.write("made \(ctx.partition) from /sys/class/block")
        let node = ctx.partition
        ctx.journal?.record(.node(node))
        if !ctx.cleanup.names.contains("remove node \(node)") {
            ctx.cleanup.push("remove node \(node)", manual: ["rm -f \(node)"]) { try? FileManager.default.removeItem(atPath: node) }
        }
    }

    static func format(_ ctx: InstallContext) throws {
        try ensurePartitionNode(ctx)
        try ctx.runner.checked(Preparation.mkfs(partition: ctx.partition, uuid: ctx.filesystemUUID))
    }

    static func mountRoot(_ ctx: InstallContext) throws {
        let runner = ctx.runner
        let workDir = ctx.workDir, root = ctx.root
        ctx.journal?.record(.workDir(workDir))
        ctx.journal?.record(.root(root))
        ctx.journal?.record(.mount(root))
        try runner.checked(Command("mkdir", ["-p", "-m", "0700", root]))
        ctx.cleanup.push("remove \(workDir)", manual: ["rmdir \(root) \(workDir)"]) {
            guard !runner.isDryRun else { _ = runner.run(Command("rmdir", [root, workDir])); return }
            // rmdir only: never delete contents, in case something is still mounted there.
            for dir in [root, workDir] where FileManager.default.fileExists(atPath: dir) { try runner.checked(Command("rmdir", [dir])) }
        }
        try ensurePartitionNode(ctx)
        try runner.checked(Preparation.mountRoot(partition: ctx.partition, at: root))
        pushUnmount(ctx, root)
    }

    static func mountYumCache(_ ctx: InstallContext) throws {
        let cacheDir = ctx.root + "/var/cache/yum"
        try ctx.runner.checked(Command("mkdir", ["-p", cacheDir]))
        try ctx.runner.checked(Preparation.mountYumCache(ctx.options.yumCache, at: cacheDir))
        pushUnmount(ctx, cacheDir)
    }

    /// Pushes an unmount that first checks the mount is still there, and retries a busy one.
    static func pushUnmount(_ ctx: InstallContext, _ mountPoint: String) {
        let runner = ctx.runner
        ctx.cleanup.push("unmount \(mountPoint)", manual: ["umount \(shellQuote(mountPoint))"]) {
            guard runner.isDryRun || Mounts.isMountPoint(mountPoint) else { return }
            var last = CommandResult.success
            for attempt in 0..<5 {
                last = runner.run(Preparation.unmount(mountPoint))
                if last.status == 0 { return }
                usleep(UInt32(200_000 * (attempt + 1)))
                if !Mounts.isMountPoint(mountPoint) { return }
            }
            throw CommandFailed(command: Preparation.unmount(mountPoint), result: last)
        }
    }

    static func unmount(_ ctx: InstallContext) throws {
        if let runner = ctx.runner as? ProcessRunner { runner.isUnwinding = true }
        defer { if let runner = ctx.runner as? ProcessRunner { runner.isUnwinding = false } }
        let failures = ctx.cleanup.unwind(downTo: ctx.deviceMark)
        if let first = failures.first { throw InstallError.incomplete(step: "unmount", reason: first) }
        // The root was mounted with barrier=0 (Preparation.mountRoot): one flush for the whole build.
        try ctx.runner.checked(Preparation.flush(device: ctx.device))
    }

    static func verify(_ ctx: InstallContext) throws {
        try ensurePartitionNode(ctx)
        try ctx.runner.checked(Preparation.fsck(partition: ctx.partition))
    }
}
