// Whole files we write: fstab, grub.conf, /etc/sysconfig/kernel, network, clock; and the SELinux edit.

/// How /etc/fstab (and the kernel line) find the root filesystem.
public enum RootReference: Equatable, Sendable {
    /// `LABEL=/`, as the original: the install labels the filesystem `/`.
    case label
    /// `UUID=<uuid>`: the filesystem's own (fresh, per image) UUID.
    case uuid(String)

    var fstabSpec: String {
        switch self {
        case .label: return "LABEL=/"
        case let .uuid(uuid): return "UUID=\(uuid)"
        }
    }
}

public enum Fstab {
    /// /etc/fstab: the root filesystem (ext4, `defaults,noatime`, checked first)
    /// and CentOS 6's four virtual filesystems, in anaconda's order and columns.
    public static func render(root: RootReference = .label) -> String {
        func line(_ spec: String, _ file: String, _ type: String, _ options: String, _ dump: Int, _ pass: Int) -> String {
            // anaconda's "%-23s %-23s %-7s %-15s %d %d"
            "\(pad(spec, 23)) \(pad(file, 23)) \(pad(type, 7)) \(pad(options, 15)) \(dump) \(pass)\n"
        }
        return "\n#\n# /etc/fstab\n# Created by centos6-ami\n#\n"
            + "# Accessible filesystems, by reference, are maintained under '/dev/disk'\n"
            + "# See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info\n#\n"
            + line(root.fstabSpec, "/", "ext4", "defaults,noatime", 1, 1)
            + line("tmpfs", "/dev/shm", "tmpfs", "defaults", 0, 0)
            + line("devpts", "/dev/pts", "devpts", "gid=5,mode=620", 0, 0)
            + line("sysfs", "/sys", "sysfs", "defaults", 0, 0)
            + line("proc", "/proc", "proc", "defaults", 0, 0)
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}

public enum GrubMenu {
    /// The real file, as CentOS 6 ships it: its kernel scriptlets
    /// (`new-kernel-pkg`, through grubby) edit `/boot/grub/grub.conf`.
    public static let configPath = "/boot/grub/grub.conf"

    /// The links CentOS 6 keeps beside grub.conf: `menu.lst -> grub.conf`
    /// (the name GNU grub's stage2 reads) and `/etc/grub.conf -> ../boot/grub/grub.conf`.
    public static let links: [(path: String, target: String)] = [
        ("/boot/grub/menu.lst", "grub.conf"),
        ("/etc/grub.conf", "../boot/grub/grub.conf"),
    ]

    /// The kernel's name in /boot for a versions.json kernel (`2.6.32-696.el6` -> `2.6.32-696.el6.x86_64`).
    public static func installedKernel(_ kernel: String, arch: String = "x86_64") -> String {
        kernel.hasSuffix("." + arch) ? kernel : kernel + "." + arch
    }

    /// grub.conf: one entry booting at once, console on both the VGA and the
    /// serial port (EC2's console log reads ttyS0), and grub itself on the
    /// serial port too (`serial`/`terminal`), so the entry it boots is echoed
    /// in the console log. `net.ifnames=0` keeps eth0 when the ENA module is
    /// installed. A kernel update copies this entry's arguments into its own
    /// (new-kernel-pkg through grubby) and, with `UPDATEDEFAULT=yes` in
    /// /etc/sysconfig/kernel, makes it the default.
    public static func render(release: String, kernel: String, ena: Bool) -> String {
        let extra = ena ? " net.ifnames=0" : ""
        return """
            default=0
            timeout=0
            hiddenmenu
            serial --unit=0 --speed=115200
            terminal --timeout=0 serial console
            title CentOS \(release)
            \troot (hd0,0)
            \tkernel /boot/vmlinuz-\(kernel) ro root=LABEL=/ console=tty0 console=ttyS0,115200 xen_pv_hvm=enable\(extra)
            \tinitrd /boot/initramfs-\(kernel).img

            """
    }
}

/// /etc/sysconfig/kernel as CentOS 6's kernel setup ships it: a kernel
/// update becomes the default entry (new-kernel-pkg reads UPDATEDEFAULT) and
/// `kernel` is the package type grubby treats as the default kernel.
public enum SysconfigKernel {
    public static let path = "/etc/sysconfig/kernel"
    public static let text = """
        # UPDATEDEFAULT specifies if new-kernel-pkg should make
        # new kernels the default
        UPDATEDEFAULT=yes

        # DEFAULTKERNEL specifies the default kernel package type
        DEFAULTKERNEL=kernel

        """
}

public enum Network {
    /// ifcfg-eth0: DHCP, as the original; no HWADDR and no UUID, so the
    /// interface of whatever instance boots the image matches.
    public static let ifcfgEth0 = """
        DEVICE=eth0
        BOOTPROTO=dhcp
        ONBOOT=yes
        TYPE=Ethernet
        USERCTL=yes
        PEERDNS=yes
        IPV6INIT=no

        """

    /// /etc/sysconfig/network: no builder hostname in the image.
    public static let sysconfigNetwork = """
        NETWORKING=yes
        HOSTNAME=localhost.localdomain

        """
}

public enum SELinux {
    public static let configPath = "/etc/selinux/config"

    /// Sets `SELINUX=disabled` whatever it was, keeping the rest of the file;
    /// appends the line when there is none.
    public static func disable(_ original: String) -> String {
        var lines = Lines(original)
        var found = false
        for i in lines.items.indices where lines.items[i].trimmingLeadingSpaces.hasPrefix("SELINUX=") {
            lines.items[i] = "SELINUX=disabled"
            found = true
        }
        if !found { lines.append("SELINUX=disabled") }
        return lines.text
    }
}

public enum Clock {
    public static let localtimePath = "/etc/localtime"
    /// /etc/localtime is a copy of this file of the image (not a link: /usr may be separate, and CentOS copies).
    public static let zoneinfoSource = "/usr/share/zoneinfo/GMT"
    public static let clockPath = "/etc/sysconfig/clock"
    /// /etc/sysconfig/clock, which tzdata-update reads to refresh /etc/localtime.
    public static let sysconfigClock = "ZONE=\"GMT\"\n"
}

/// A text as lines, remembering whether it ended with a newline (edits keep the file's shape).
struct Lines {
    var items: [String]

    init(_ text: String) {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        items = parts
    }

    mutating func append(_ line: String) { items.append(line) }

    /// Always newline-terminated: the files we edit are line-oriented configuration.
    var text: String { items.isEmpty ? "" : items.joined(separator: "\n") + "\n" }
}

extension String {
    var trimmingLeadingSpaces: Substring { drop { $0 == " " || $0 == "\t" } }
}
