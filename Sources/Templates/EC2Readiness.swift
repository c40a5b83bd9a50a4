// Files that make an image ready for both EC2 platforms: the drivers dracut
// puts into every initramfs (Xen: xen-blkfront, xen-netfront; Nitro: nvme),
// and ntpd on the Amazon Time Sync Service.

/// `/etc/dracut.conf.d/ec2.conf`: CentOS 6's dracut (004) sources every
/// `/etc/dracut.conf.d/*.conf` and adds the `add_drivers` modules to the image.
public enum DracutEC2 {
    public static let path = "/etc/dracut.conf.d/ec2.conf"
    public static let directory = "/etc/dracut.conf.d"

    /// The drivers for the release's kernel: `nvme` only when the kernel has it
    /// (CentOS 6.5, 2.6.32-431, and later), else dracut would fail to find it.
    public static func drivers(nvme: Bool) -> [String] {
        ["xen-blkfront", "xen-netfront"] + (nvme ? ["nvme"] : [])
    }

    public static func render(nvme: Bool) -> String {
        """
        # Written by centos6-ami: the drivers EC2 instances boot from, in every
        # initramfs dracut builds (Xen: root disk and network; Nitro: the NVMe root volume).
        add_drivers+=" \(drivers(nvme: nvme).joined(separator: " ")) "

        """
    }
}

/// `/etc/ntp.conf`: CentOS 6's ntp.conf with the Amazon Time Sync Service
/// (169.254.169.123, reachable from every instance) as the preferred server,
/// instead of the pool servers.
public enum NTPConf {
    public static let path = "/etc/ntp.conf"
    public static let timeSyncAddress = "169.254.169.123"

    public static let text = """
        # Written by centos6-ami. See ntp.conf(5).

        driftfile /var/lib/ntp/drift

        # Permit time synchronization with our time source, but do not
        # permit the source to query or modify the service on this system.
        restrict default kod nomodify notrap nopeer noquery
        restrict -6 default kod nomodify notrap nopeer noquery

        # Permit all access over the loopback interface.
        restrict 127.0.0.1
        restrict -6 ::1

        # The Amazon Time Sync Service, on a link-local address of every EC2 instance.
        server \(timeSyncAddress) prefer iburst

        includefile /etc/ntp/crypto/pw

        # Key file containing the keys and key identifiers used when operating
        # with symmetric key cryptography.
        keys /etc/ntp/keys

        """
}

/// The services the image starts at boot, enabled as CentOS 6 does it
/// (`chkconfig NAME on`: `S??NAME` links in /etc/rc.d/rc[2345].d).
public enum Services {
    /// acpid: Nitro instances stop and terminate promptly only when the ACPI power button is handled.
    /// ntp (service ntpd): the Amazon Time Sync Service.
    public static let packages = ["acpid", "ntp"]
    public static let enabled = ["acpid", "ntpd"]
}
