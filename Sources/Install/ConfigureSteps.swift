import Disk
import Foundation
import Host
import Templates
import Verdict
import Versions
#if canImport(Glibc)
    import Glibc
#endif

/// Configure the image from the Templates module's file list, install
/// grub-legacy with the target's own grub, then remove every builder leftover.
enum ConfigureSteps {
    // MARK: configure

    static let configureStep = InstallStep(
        "configure",
        "fstab, grub.conf (+ menu.lst link), sysconfig/kernel, network, SELinux off, GMT, repos, sshd, sudoers, rc.local (IMDSv2), ntp.conf; ec2-user and root locked; chkconfig acpid, ntpd on"
    ) { try configure($0) }
    static func configure(_ ctx: InstallContext) throws {
        let root = try ctx.root
        var config = ImageConfiguration(release: try ctx.plan.release, mirrors: ctx.versions.mirrors, ena: try ctx.enaInstalled)
        config.timeSync = !ctx.options.minimal
        for file in imageFiles(config) {
            try Interruption.shared.check()
            try apply(file, root: root, ctx: ctx)
        }
        try createUsers(ctx)
        if !ctx.options.minimal { try enableServices(ctx) }
    }

    /// `chkconfig NAME on`, as CentOS 6 enables a service (S??NAME links in rc[2345].d).
    static func enableServices(_ ctx: InstallContext) throws {
        let root = try ctx.root
        for service in Services.enabled {
            try ctx.runner.checked(Command("chkconfig", [service, "on"]).inChroot(root))
        }
    }

    /// The installed kernel's initramfs: the one its %posttrans built (new-kernel-pkg →
    /// the target's own dracut, which read ec2.conf, written before the transaction) is
    /// kept when it holds every driver ec2.conf names that the kernel has as a module
    /// and no file it copied from the image has changed since; else the target's own
    /// dracut rebuilds it (never the builder's, which would build for the builder).
    static let initramfsStep = InstallStep(
        "initramfs",
        "keep the initramfs the kernel's %posttrans built when it holds ec2.conf's drivers and nothing it copied changed since; else the target's own dracut rebuilds it"
    ) { try initramfs($0) }
    static func initramfs(_ ctx: InstallContext) throws {
        let root = try ctx.root, version = try ctx.plan.kernel
        let kernel = GrubMenu.installedKernel(version)
        let image = "/boot/initramfs-\(kernel).img"
        // The dry run cannot read an image that was never built: it shows the rebuild.
        var reason: String? = "(dry run: decided from the image the kernel's %posttrans builds)"
        try ctx.runner.perform("check \(image): ec2.conf's drivers in it, nothing it copied from the image written after it") {
            reason = try InitramfsCheck.rebuildReason(root: root, kernel: kernel, image: image)
        }
        guard let reason else {
            ctx.log.say("initramfs: kept the one kernel-\(version)'s %posttrans built (it holds ec2.conf's drivers; nothing it copied changed since)")
            return
        }
        ctx.log.say("initramfs: rebuilding it: \(reason)")
        try ctx.runner.checked(Command("dracut", ["-f", image, kernel]).inChroot(root))
    }

    /// Where the image boots, from its own files (read only).
    static let bootVerdictStep = InstallStep(
        "boot-verdict", "read-only: which of xen-blkfront, xen-netfront, nvme, ena the default kernel has at boot: Xen, Nitro"
    ) { try bootVerdict($0) }
    static func bootVerdict(_ ctx: InstallContext) throws {
        let root = try ctx.root, release = try ctx.plan.release
        try ctx.runner.perform("boot verdict: read /boot/grub/grub.conf, the default kernel's initramfs, modules.builtin and /lib/modules of the target") {
            let verdict = try BootVerdict.compute(root: root, enaHint: BootVerdict.enaHint(release: release, enaAsked: ctx.options.ena))
            ctx.bootVerdictIfMade = verdict
            ctx.log.say("boots on: \(verdict.summary)")
        }
    }

    /// Writes one `ImageFile` into the image. Whatever stood at the path (a
    /// package's symlink, say) is replaced, never followed.
    static func apply(_ file: ImageFile, root: String, ctx: InstallContext) throws {
        let path = root + file.path
        let mode = Int(file.mode)
        switch file.content {
        case let .text(text):
            try ctx.write(text, to: path, mode: mode)
        case let .edit(edit):
            // An edit reads the package's file back: the plan names it.
            try ctx.runner.perform("edit \(path)") {
                let original = try? String(contentsOfFile: path, encoding: .utf8)
                if original == nil && edit.requiresOriginal {
                    throw InstallError.imageFileMissing(path: file.path)
                }
                try ctx.write(edit.apply(to: original ?? ""), to: path, mode: mode)
            }
        case let .copy(source):
            // Inside the chroot, so a symlink in the image (zoneinfo's GMT -> Etc/GMT)
            // resolves in the image, never on the builder.
            try ctx.runner.checked(Command("rm", ["-f", file.path]).inChroot(root))
            try ctx.runner.checked(Command("cp", [source, file.path]).inChroot(root))
            try ctx.runner.checked(Command("chmod", [String(mode, radix: 8), file.path]).inChroot(root))
        case let .symlink(target):
            try ctx.runner.checked(Command("ln", ["-sfn", target, path]))
        case .directory:
            try ctx.runner.checked(Command("mkdir", ["-p", path]))
            try ctx.runner.checked(Command("chmod", [String(mode, radix: 8), path]))
        }
        if case .symlink = file.content { return }
        try ctx.runner.perform { try ctx.runner.checked(Command("chown", ["-h", "\(file.uid):\(file.gid)", path])) }
    }

    /// ec2-user with a locked password (rc.local adds the launch key at first
    /// boot); root's password locked too.
    static func createUsers(_ ctx: InstallContext) throws {
        let user = Accounts.user, runner = ctx.runner, root = try ctx.root
        // Reads back: whether a package made the user.
        let exists = !runner.isDryRun && runner.run(Command("id", [user]).inChroot(root)).status == 0
        if !exists { try runner.checked(Command("useradd", ["-m", user]).inChroot(root)) }
        try runner.checked(Command("passwd", ["-l", user]).inChroot(root))
        try runner.checked(Command("passwd", ["-l", "root"]).inChroot(root))
    }

    // MARK: bootloader

    /// Where the private alias nodes live: on the yum-cache mount, never on the volume.
    static let aliasDirectory = PackageSteps.chrootWork + "/grubdev"

    /// grub-legacy's shell names partition n of disk D as `D<n>`: `/dev/loop0` → `/dev/loop01`,
    /// which does not exist. `xvdz`/`xvdz1` nodes with the disk's and the partition's
    /// numbers make `setup (hd0)` work for loop, nvme, sd and xvd targets alike.
    static func grubScript(disk: String) -> String {
        "device (hd0) \(disk)\nroot (hd0,0)\nsetup (hd0)\nquit\n"
    }

    static let installBootloaderStep = InstallStep("install-bootloader", "grub-legacy stage files into /boot/grub and setup (hd0) through private alias nodes")
    { try installBootloader($0) }
    static func installBootloader(_ ctx: InstallContext) throws {
        let root = try ctx.root, runner = ctx.runner
        // The stage files from the grub package, as the original copied them.
        try runner.perform("copy /usr/share/grub/*/*stage* of the image into /boot/grub") {
            let shareDir = root + "/usr/share/grub"
            let platforms = (try? FileManager.default.contentsOfDirectory(atPath: shareDir)) ?? []
            var copied = 0
            for platform in platforms.sorted() {
                let dir = shareDir + "/" + platform
                for name in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() where name.contains("stage") {
                    try runner.checked(Command("cp", ["-f", dir + "/" + name, root + "/boot/grub/" + name]))
                    copied += 1
                }
            }
            guard copied > 0 else { throw InstallError.noGrubStageFiles }
        }
        let aliases = root + aliasDirectory
        try runner.checked(Command("mkdir", ["-p", aliases]))
        let device = try ctx.device
        let disk = majorMinor(of: device, runner: runner), part = majorMinor(of: try ctx.partition, runner: runner)
        for (name, numbers) in [("xvdz", disk), ("xvdz1", part)] {
            try runner.checked(Command("mknod", ["-m", "0600", aliases + "/" + name, "b", numbers.0, numbers.1]))
        }
        ctx.cleanup.push("remove grub alias nodes", manual: ["rm -rf \(aliases)"]) {
            _ = runner.run(Command("rm", ["-rf", aliases]))
        }
        // grub reads the filesystem from the raw device: flush the page cache first.
        try runner.checked(Command("sync", ["-f", root + "/boot/grub"]))
        try runner.checked(Command("blockdev", ["--flushbufs", device]))
        let script = grubScript(disk: aliasDirectory + "/xvdz")
        let result = try runner.checked(Command("grub", ["--batch", "--no-floppy", "--device-map=/dev/null"], standardInput: Data(script.utf8)).inChroot(root))
        // grub --batch exits 0 even when setup fails: read what it said.
        try runner.perform {
            let output = result.stdoutText + result.stderrText
            guard output.contains("succeeded"), !output.contains("Error ") else {
                throw InstallError.grubSetupFailed(output: output)
            }
        }
        ctx.cleanup.unwindEntry(named: "remove grub alias nodes")
    }

    /// `(major, minor)` of a block device from sysfs (placeholders in a dry run).
    static func majorMinor(of device: String, runner: CommandRunner) -> (String, String) {
        // Reads back: sysfs.
        guard !runner.isDryRun, let name = BlockDevices.kernelName(of: device), let info = BlockDevices.info(kernelName: name) else {
            return ("MAJOR", "MINOR")
        }
        let parts = info.majorMinor.split(separator: ":").map(String.init)
        return (parts[0], parts[1])
    }

    // MARK: clean

    /// Paths (relative to the image root) that must not be in an image.
    static let removedFiles = [
        "/etc/udev/rules.d/70-persistent-net.rules", "/etc/udev/rules.d/70-persistent-cd.rules",
        "/var/lib/yum/uuid", "/root/.bash_history", "/root/.ssh", "/root/.viminfo", "/root/.lesshst",
    ]

    static let cleanStep = InstallStep("clean", "remove host keys, keys, history, udev net rules, yum uuid and cache; truncate logs; empty /tmp") {
        try clean($0)
    }
    static func clean(_ ctx: InstallContext) throws {
        let root = try ctx.root, runner = ctx.runner
        // yum's cache is a mount over the image's /var/cache/yum (Preparation.mountYumCache), so
        // `yum clean all` never touches the image: a tmpfs cache is discarded at unmount anyway;
        // a device or directory given with --yum-cache is cleaned as the original script did.
        if ctx.options.yumCache.isDiscardedAtUnmount {
            ctx.note("yum clean all: not needed, the tmpfs yum cache is discarded at unmount")
        } else {
            try runner.checked(PackageSteps.yum(ctx, in: root, ["clean", "all"]))
        }
        // The filesystem's use is measured once it is clean (0 in a dry run).
        var used: UInt64 = 0
        try runner.perform(
            "remove host keys, authorized_keys, known_hosts, private keys, shell history, persistent udev rules, /var/lib/yum/uuid; truncate logs; empty /tmp and /var/tmp"
        ) {
            used = try removeLeftovers(ctx, root: root)
        }
        ctx.bytesOnVolumeIfMade = used
    }

    /// Returns the bytes the filesystem then uses.
    static func removeLeftovers(_ ctx: InstallContext, root: String) throws -> UInt64 {
        let fm = FileManager.default
        var removed: [String] = []
        for path in removedFiles where fm.fileExists(atPath: root + path) || isSymlink(root + path) {
            try fm.removeItem(atPath: root + path)
            removed.append(path)
        }
        for name in (try? fm.contentsOfDirectory(atPath: root + "/etc/ssh")) ?? [] where name.hasPrefix("ssh_host_") {
            try fm.removeItem(atPath: root + "/etc/ssh/" + name)
            removed.append("/etc/ssh/" + name)
        }
        // Anywhere in the image: history, authorized keys, known hosts, private keys.
        let secrets: Set<String> = [
            ".bash_history", ".sh_history", ".ash_history", ".python_history", "authorized_keys", "authorized_keys2",
            "known_hosts", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519",
        ]
        for found in findFiles(root: root, excluding: ["/proc", "/sys", "/dev", "/var/cache/yum"], named: secrets) {
            try fm.removeItem(atPath: root + found)
            removed.append(found)
        }
        for dir in ["/tmp", "/var/tmp"] {
            for name in (try? fm.contentsOfDirectory(atPath: root + dir)) ?? [] {
                try fm.removeItem(atPath: root + dir + "/" + name)
                removed.append(dir + "/" + name)
            }
        }
        // Logs stay as (empty) files: daemons expect them.
        var truncated = 0
        for path in findFiles(root: root + "/var/log", excluding: [], named: nil) where !isSymlink(root + "/var/log" + path) {
            truncate(root + "/var/log" + path, 0)
            truncated += 1
        }
        if let hostname = try? String(contentsOfFile: root + "/etc/hostname", encoding: .utf8),
            hostname.trimmingCharacters(in: .whitespacesAndNewlines) == ProcessInfo.processInfo.hostName
        {
            try fm.removeItem(atPath: root + "/etc/hostname")
            removed.append("/etc/hostname")
        }
        ctx.log.write("clean: removed \(removed.count) paths: \(removed.joined(separator: " ")); truncated \(truncated) logs")
        var fs = statvfs()
        return statvfs(root, &fs) == 0 ? UInt64(fs.f_blocks - fs.f_bfree) * UInt64(fs.f_frsize) : 0
    }

    static func isSymlink(_ path: String) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
    }

    /// Regular files (not symlinks) below `root`, as paths relative to it, skipping
    /// the `excluding` subtrees and, with `named`, keeping only those basenames.
    /// readdir(3) with d_type: no stat and no URL per entry (an image has ~20,000).
    static func findFiles(root: String, excluding: [String], named: Set<String>?) -> [String] {
        var found: [String] = []
        var pending = [""]
        while let relative = pending.popLast() {
            guard let dir = opendir(root + (relative.isEmpty ? "/" : relative)) else { continue }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name == "." || name == ".." { continue }
                let path = relative + "/" + name
                var type = entry.pointee.d_type
                if type == UInt8(DT_UNKNOWN) {
                    // Filesystems that do not fill d_type: ask lstat.
                    var st = stat()
                    guard lstat(root + path, &st) == 0 else { continue }
                    type = (st.st_mode & S_IFMT) == S_IFDIR ? UInt8(DT_DIR) : (st.st_mode & S_IFMT) == S_IFREG ? UInt8(DT_REG) : UInt8(DT_LNK)
                }
                if type == UInt8(DT_DIR) {
                    if !excluding.contains(path) { pending.append(path) }
                } else if type == UInt8(DT_REG), named?.contains(name) ?? true {
                    found.append(path)
                }
            }
        }
        return found.sorted()
    }
}
