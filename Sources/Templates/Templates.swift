import Versions

// The Templates module: every file the install writes into the image, as pure
// functions (a file's exact text, or original text -> new text for files the
// packages ship), and the list of them (`imageFiles`) the configure step walks.
// No processes, no file IO: the configure step reads and writes, we only say what.

/// One thing the configure step puts into the image, relative to the target root.
public struct ImageFile: Equatable, Sendable {
    /// Absolute path inside the image (`/etc/fstab`), never the host's.
    public var path: String
    public var content: Content
    /// Permission bits (0o644); ignored for symlinks.
    public var mode: UInt16
    /// Numeric owner inside the image: all our files belong to root (0:0).
    public var uid: UInt32
    public var gid: UInt32

    public init(path: String, content: Content, mode: UInt16, uid: UInt32 = 0, gid: UInt32 = 0) {
        self.path = path
        self.content = content
        self.mode = mode
        self.uid = uid
        self.gid = gid
    }

    public enum Content: Equatable, Sendable {
        /// Write exactly this text (replacing whatever is there).
        case text(String)
        /// Read the file the packages installed, apply the edit, write the result back.
        case edit(Edit)
        /// Copy another file of the image (`/usr/share/zoneinfo/GMT`), not a host file.
        case copy(fromImagePath: String)
        /// A symbolic link with this target (replacing a file or link already there).
        case symlink(target: String)
        /// A directory (created if missing; its mode is set either way).
        case directory
    }

    /// Edits of files shipped by packages. Each is idempotent: applying it twice gives the same text.
    public enum Edit: Equatable, Sendable {
        case selinuxDisabled
        case centosBaseRepo(mirror: String, commentedMirror: String)
        case sshdConfig
        case sudoersIncludeDir

        /// Whether a missing original is an error (the package should have shipped it) or edited as empty text.
        public var requiresOriginal: Bool {
            switch self {
            case .selinuxDisabled: return false // selinux-policy may be absent from a minimal install
            case .centosBaseRepo, .sshdConfig, .sudoersIncludeDir: return true
            }
        }

        /// The edited text.
        public func apply(to original: String) -> String {
            switch self {
            case .selinuxDisabled: return SELinux.disable(original)
            case let .centosBaseRepo(mirror, commented): return YumRepos.rewriteCentOSBase(original, mirror: mirror, commentedMirror: commented)
            case .sshdConfig: return SSHD.harden(original)
            case .sudoersIncludeDir: return Sudoers.addIncludeDir(original)
            }
        }
    }
}

/// Everything `imageFiles` needs to know about the image being built.
public struct ImageConfiguration: Equatable, Sendable {
    /// `6.9`.
    public var release: String
    /// The kernel as installed in /boot (`2.6.32-696.el6.x86_64`), see `GrubMenu.installedKernel`.
    public var kernel: String
    /// ENA module installed: adds `net.ifnames=0` to the kernel line.
    public var ena: Bool
    /// How fstab names the root filesystem.
    public var root: RootReference
    /// versions.json `mirrors.image`: the active baseurl in the image.
    public var mirror: String
    /// versions.json `mirrors.imageCommented`: the commented baseurl in the image.
    public var commentedMirror: String
    /// ntp is installed (not `--minimal`): /etc/ntp.conf points at the Amazon Time Sync Service.
    public var timeSync: Bool = false

    public init(release: String, kernel: String, ena: Bool, root: RootReference = .label, mirror: String, commentedMirror: String) {
        self.release = release
        self.kernel = kernel
        self.ena = ena
        self.root = root
        self.mirror = mirror
        self.commentedMirror = commentedMirror
    }

    /// From the versions table: GA kernel of the release (x86_64) and the image mirrors.
    public init(release: VersionsFile.Release, mirrors: VersionsFile.Mirrors, ena: Bool, root: RootReference = .label) {
        self.init(
            release: release.release, kernel: GrubMenu.installedKernel(release.kernel), ena: ena, root: root,
            mirror: mirrors.image, commentedMirror: mirrors.imageCommented)
    }
}

/// Every file the configure step writes, in the order to write them (directories
/// before what goes in them; grub.conf before its links). Run it after the
/// packages are installed: the edits need the packages' files, and grub.conf
/// written after the kernel keeps one entry, ours (new-kernel-pkg edits
/// grub.conf only when it exists, so the kernel's own scriptlet added none).
///
/// Not here, because they are commands rather than files: creating ec2-user
/// with a locked password (`useradd -m ec2-user`, `passwd -l ec2-user`, see
/// `Accounts`), and grub's `setup (hd0)`.
public func imageFiles(_ c: ImageConfiguration) -> [ImageFile] {
    [
        ImageFile(path: "/etc/fstab", content: .text(Fstab.render(root: c.root)), mode: 0o644),
        ImageFile(path: "/boot/grub", content: .directory, mode: 0o755),
        ImageFile(path: GrubMenu.configPath, content: .text(GrubMenu.render(release: c.release, kernel: c.kernel, ena: c.ena)), mode: 0o600),
    ]
        + GrubMenu.links.map { ImageFile(path: $0.path, content: .symlink(target: $0.target), mode: 0o777) }
        + [
            ImageFile(path: SysconfigKernel.path, content: .text(SysconfigKernel.text), mode: 0o644),
            ImageFile(path: "/etc/sysconfig/network-scripts/ifcfg-eth0", content: .text(Network.ifcfgEth0), mode: 0o644),
            ImageFile(path: "/etc/sysconfig/network", content: .text(Network.sysconfigNetwork), mode: 0o644),
            ImageFile(path: SELinux.configPath, content: .edit(.selinuxDisabled), mode: 0o644),
            ImageFile(path: Clock.localtimePath, content: .copy(fromImagePath: Clock.zoneinfoSource), mode: 0o644),
            ImageFile(path: Clock.clockPath, content: .text(Clock.sysconfigClock), mode: 0o644),
            ImageFile(path: YumRepos.centosBasePath, content: .edit(.centosBaseRepo(mirror: c.mirror, commentedMirror: c.commentedMirror)), mode: 0o644),
            ImageFile(path: "/etc/yum/vars", content: .directory, mode: 0o755),
            ImageFile(path: YumRepos.releaseverPath, content: .text(YumRepos.releasever(c.release)), mode: 0o644),
            ImageFile(path: SSHD.configPath, content: .edit(.sshdConfig), mode: 0o600),
            ImageFile(path: Sudoers.path, content: .edit(.sudoersIncludeDir), mode: Sudoers.mode),
            ImageFile(path: Sudoers.directory, content: .directory, mode: Sudoers.directoryMode),
            ImageFile(path: Sudoers.ec2UserPath, content: .text(Sudoers.ec2UserRule), mode: Sudoers.ec2UserMode),
            ImageFile(path: RcLocal.path, content: .text(RcLocal.script), mode: RcLocal.mode),
            ImageFile(path: RcLocal.linkPath, content: .symlink(target: RcLocal.linkTarget), mode: 0o777),
        ]
        + (c.timeSync ? [ImageFile(path: NTPConf.path, content: .text(NTPConf.text), mode: 0o644)] : [])
}

/// dracut's configuration, written before the package transaction (not by the configure
/// step): the kernel's %posttrans builds the initramfs with it. `nvme` when the kernel
/// package ships the module.
public func dracutImageFiles(nvme: Bool) -> [ImageFile] {
    [
        ImageFile(path: DracutEC2.directory, content: .directory, mode: 0o755),
        ImageFile(path: DracutEC2.path, content: .text(DracutEC2.render(nvme: nvme)), mode: 0o644),
    ]
}

/// The login account of the image (as Amazon Linux and the original script call it).
public enum Accounts {
    public static let user = "ec2-user"
}
