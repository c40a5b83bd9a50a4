// The VM module: boots a raw disk image in QEMU (TCG) with a serial console
// captured to a file and the instance metadata service forwarded to
// 169.254.169.254:80, waits for a ready pattern, powers the guest off.
// It is the engine of `centos6-ami boot-test` and of the integration tests.
import Foundation
import Host

/// How the guest sees its disk. CentOS 6 kernels (and the test vault's Debian
/// kernel, through its initramfs) drive IDE and virtio; NVMe needs the `nvme`
/// driver (CentOS 6.5 and later) in the initramfs.
public enum DiskInterface: String, Sendable, CaseIterable {
    /// PIIX IDE (`ata_piix`): the guest sees /dev/sda (or /dev/hda on old kernels).
    case ide
    /// virtio-blk: the guest sees /dev/vda.
    case virtio
    /// An NVMe controller, as Nitro attaches EBS volumes (serial `vol…`): the guest sees /dev/nvme0n1.
    case nvme
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
    /// The bash that runs the per-connection relay (see `QEMU`); bash, not sh, for `/dev/tcp`.
    public var relayShell: String = "/bin/bash"
    public var diskInterface: DiskInterface = .ide
    public var memoryMiB: Int = 512
    public var cpus: Int = 1
    /// Discard guest writes (QEMU `-snapshot`). boot-test keeps them: the
    /// authorized_keys rc.local writes is part of what it checks.
    public var snapshot: Bool = false
    /// Text on the console that means "booted" (CentOS 6 prints `login:` on
    /// ttyS0 once rc.local has run).
    public var readyPattern: String = "login:"
    /// Console text that means the guest will never get there: CentOS 6's dracut
    /// giving up on the root device, a kernel panic. The run fails at once.
    public var failurePatterns: [String] = QEMU.rootNotFoundPatterns + ["Kernel panic"]
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

/// How the guest reaches the metadata service, and why it looks like this
/// (all checked with QEMU 7.2 / libslirp 4.7 on Debian 12):
/// - slirp is told `net=169.254.0.0/16`: QEMU refuses a `guestfwd` whose
///   address is outside the user network ("Conflicting/invalid host:port in
///   guest forwarding rule" with the default 10.0.2.0/24). The guest then gets
///   169.254.2.15/16 by DHCP (server 169.254.2.2, no router under
///   `restrict=on`), and 169.254.169.254 is on its link.
/// - the forward is `guestfwd=tcp:169.254.169.254:80-cmd:RELAY`, not
///   `...-tcp:127.0.0.1:PORT`: the `tcp:` form is ONE chardev connection made
///   when QEMU starts and shared by every guest connection, so after the first
///   HTTP exchange closes it, the guest's next request hangs (seen: the token
///   PUT answered, the key GET timed out). With `cmd:` slirp runs RELAY for
///   each guest connection, its stdin/stdout being that connection; RELAY opens
///   a fresh TCP connection to the host service and copies both ways, so each
///   guest connection is one host connection (and a refused host connection is
///   a connection the guest sees closed without an answer).
/// - `restrict=on` cuts every other way out.
public enum QEMU {
    public static let metadataAddress = "169.254.169.254"
    public static let userNetwork = "169.254.0.0/16"

    /// The per-connection relay slirp runs (it splits the string like a shell,
    /// no shell features). bash's `/dev/tcp` connects; fd 4 keeps the guest
    /// side as stdin of the background `cat` (a background job's stdin would
    /// otherwise be /dev/null); when the service closes, the relay exits and the
    /// guest sees the end of the answer. `kill -9`, because a SIGTERM the
    /// caller ignores (centos6-ami ignores it while its own handler runs) is
    /// ignored by the whole chain down to that `cat`, which would then linger
    /// holding the guest connection. stderr goes to /dev/null because slirp
    /// connects it to the guest too. No commas (they separate -netdev options).
    public static func relay(shell: String, host: String, port: Int) -> String {
        "\(shell) -c 'exec 2>/dev/null 4<&0 3<>/dev/tcp/\(host)/\(port) || exit 1; cat <&4 >&3 & cat <&3; kill -9 $!'"
    }

    /// The `-netdev` value: restricted user networking, the metadata service forwarded.
    public static func netdev(imdsHost: String, imdsPort: Int?, shell: String = "/bin/bash") -> String {
        var spec = "user,id=n0,restrict=on,net=\(userNetwork)"
        if let imdsPort {
            spec += ",guestfwd=tcp:\(metadataAddress):80-cmd:" + relay(shell: shell, host: imdsHost, port: imdsPort).replacingOccurrences(of: ",", with: ",,")
        }
        return spec
    }

    /// The `-drive` value. A comma in a path must be doubled for QEMU's option parser.
    /// NVMe is not an `if=` type: the drive is `if=none` and an `nvme` device takes it.
    public static func drive(image: String, interface: DiskInterface) -> String {
        let file = "file=\(image.replacingOccurrences(of: ",", with: ",,")),format=raw"
        if interface == .nvme { return file + ",if=none,id=root,cache=writeback" }
        return file + ",if=\(interface.rawValue),cache=writeback"
    }

    /// The serial Nitro gives an EBS volume's NVMe controller: `vol` and the volume id's 17 hex digits.
    public static let nvmeSerial = "vol0c6a0000000000000"

    /// What CentOS 6's dracut (and the test vault's) prints when the root filesystem never appears.
    public static let rootNotFoundPatterns = ["No root device"]

    /// The full command line. TCG always: KVM hangs on the machines this was
    /// written on, and TCG boots a CentOS-6-shaped guest in seconds anyway.
    /// No display, no monitor on stdio, the serial console to a file, QMP on a
    /// private socket, the NIC without its iPXE option ROM (nothing to netboot),
    /// `-no-reboot` so a guest reboot or panic ends the run.
    public static func command(_ config: BootConfig) -> Command {
        var args =
            [
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
            ] + (config.diskInterface == .nvme ? ["-device", "nvme,drive=root,serial=\(nvmeSerial)"] : []) + [
                "-netdev", netdev(imdsHost: config.imdsHost, imdsPort: config.imdsPort, shell: config.relayShell),
                "-device", "virtio-net-pci,netdev=n0,romfile=",
                "-boot", "order=c",
                "-no-reboot",
            ]
        if config.snapshot { args.append("-snapshot") }
        return Command(config.qemu, args)
    }
}
