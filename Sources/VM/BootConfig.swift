// The VM module: boots a raw disk image in QEMU (TCG) with a serial console
// captured to a file and the instance metadata service forwarded to
// 169.254.169.254:80, waits for a ready pattern, powers the guest off.
// It is the engine of `centos6-ami boot-test` and of the integration tests.
import Foundation
import Host

/// How the guest sees its disk. CentOS 6 kernels (and the test vault's Debian
/// cloud kernel, through its initramfs) drive both; Debian's cloud kernel has no AHCI.
public enum DiskInterface: String, Sendable, CaseIterable {
    /// PIIX IDE (`ata_piix`): the guest sees /dev/sda (or /dev/hda on old kernels).
    case ide
    /// virtio-blk: the guest sees /dev/vda.
    case virtio
}

/// Everything one boot needs. The defaults are those of `boot-test`.
public struct BootConfig: Sendable, Equatable {
    /// The raw disk image (a file or a block device). QEMU writes to it unless `snapshot`.
    public var image: String
    /// Where the guest's serial console (ttyS0) is written.
    public var serialLog: String
    /// The QMP socket used to ask the guest to power off (ACPI power button).
    public var qmpSocket: String
    /// The host TCP port (on `imdsHost`) forwarded to 169.254.169.254:80 in the
    /// guest; nil leaves the guest with no reachable service at all.
    public var imdsPort: Int?
    public var imdsHost: String = "127.0.0.1"
    public var diskInterface: DiskInterface = .ide
    public var memoryMiB: Int = 512
    public var cpus: Int = 1
    /// Discard guest writes (QEMU `-snapshot`). boot-test keeps them: the
    /// authorized_keys rc.local writes is part of what it checks.
    public var snapshot: Bool = false
    /// Text on the console that means "booted" (CentOS 6 prints `login:` on
    /// ttyS0 once rc.local has run).
    public var readyPattern: String = "login:"
    /// Hard limit from QEMU's start to the ready pattern.
    public var timeout: TimeInterval = 120
    /// After the pattern: how long the guest may take to power off on the ACPI
    /// request before QEMU is stopped with SIGTERM (which still flushes the image).
    public var powerOffGrace: TimeInterval = 10
    /// After SIGTERM: how long before SIGKILL.
    public var killGrace: TimeInterval = 5
    public var qemu: String = "qemu-system-x86_64"

    public init(image: String, serialLog: String, qmpSocket: String, imdsPort: Int? = nil) {
        self.image = image
        self.serialLog = serialLog
        self.qmpSocket = qmpSocket
        self.imdsPort = imdsPort
    }
}

/// Why slirp is told `net=169.254.0.0/16`: QEMU refuses a `guestfwd` whose
/// address is outside the user network ("Conflicting/invalid host:port in
/// guest forwarding rule" with the default 10.0.2.0/24). With the user network
/// being 169.254.0.0/16 the guest gets 169.254.2.15 by DHCP (gateway
/// 169.254.2.2, no default route under `restrict=on`), 169.254.169.254 is on
/// its link, and the guest's TCP connections to port 80 there reach the host
/// port. `restrict=on` cuts every other way out (checked with QEMU 7.2).
public enum QEMU {
    public static let metadataAddress = "169.254.169.254"
    public static let userNetwork = "169.254.0.0/16"

    /// The `-netdev` value: restricted user networking, the metadata service forwarded.
    public static func netdev(imdsHost: String, imdsPort: Int?) -> String {
        var spec = "user,id=n0,restrict=on,net=\(userNetwork)"
        if let imdsPort {
            spec += ",guestfwd=tcp:\(metadataAddress):80-tcp:\(imdsHost):\(imdsPort)"
        }
        return spec
    }

    /// The `-drive` value. A comma in a path must be doubled for QEMU's option parser.
    public static func drive(image: String, interface: DiskInterface) -> String {
        "file=\(image.replacingOccurrences(of: ",", with: ",,")),format=raw,if=\(interface.rawValue),cache=writeback"
    }

    /// The full command line. TCG always: KVM hangs on the machines this was
    /// written on, and TCG boots a CentOS-6-shaped guest in seconds anyway.
    /// No display, no monitor on stdio, the serial console to a file, QMP on a
    /// private socket, the NIC without its iPXE option ROM (nothing to netboot),
    /// `-no-reboot` so a guest reboot or panic ends the run.
    public static func command(_ config: BootConfig) -> Command {
        var args = [
            "-accel", "tcg",
            "-machine", "pc",
            "-m", String(config.memoryMiB),
            "-smp", String(config.cpus),
            "-display", "none",
            "-vga", "std",
            "-monitor", "none",
            "-serial", "file:" + config.serialLog,
            "-qmp", "unix:\(config.qmpSocket),server=on,wait=off",
            "-drive", drive(image: config.image, interface: config.diskInterface),
            "-netdev", netdev(imdsHost: config.imdsHost, imdsPort: config.imdsPort),
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-boot", "order=c",
            "-no-reboot",
        ]
        if config.snapshot { args.append("-snapshot") }
        return Command(config.qemu, args)
    }
}
