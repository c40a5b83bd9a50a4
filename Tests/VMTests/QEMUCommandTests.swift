import Foundation
import Testing
import Host
@testable import VM

@Suite struct QEMUCommandTests {
    func config() -> BootConfig {
        var c = BootConfig(image: "/var/tmp/disk.img", serialLog: "/run/vm/serial.log", qmpSocket: "/run/vm/qmp.sock", imdsPort: 40123)
        c.memoryMiB = 512
        return c
    }

    @Test func fullArgumentList() {
        let cmd = QEMU.command(config())
        #expect(cmd.executable == "qemu-system-x86_64")
        #expect(
            cmd.arguments == [
                "-accel", "tcg",
                "-machine", "pc",
                "-m", "512",
                "-smp", "1",
                "-display", "none",
                "-vga", "std",
                "-monitor", "none",
                "-serial", "file:/run/vm/serial.log",
                "-qmp", "unix:/run/vm/qmp.sock,server=on,wait=off",
                "-drive", "file=/var/tmp/disk.img,format=raw,if=ide,cache=writeback",
                "-netdev",
                "user,id=n0,restrict=on,net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:/bin/bash -c 'exec 2>/dev/null 4<&0 3<>/dev/tcp/127.0.0.1/40123 || exit 1; cat <&4 >&3 & cat <&3; kill -9 $!'",
                "-device", "virtio-net-pci,netdev=n0,romfile=",
                "-boot", "order=c",
                "-no-reboot",
            ])
        #expect(cmd.shellLine.hasPrefix("qemu-system-x86_64 -accel tcg -machine pc -m 512"))
    }

    @Test func neverKVM() {
        let args = QEMU.command(config()).arguments
        #expect(!args.contains("-enable-kvm"))
        #expect(args[args.firstIndex(of: "-accel")! + 1] == "tcg")
    }

    @Test func virtioDiskSnapshotAndSizes() {
        var c = config()
        c.diskInterface = .virtio
        c.snapshot = true
        c.memoryMiB = 1024
        c.cpus = 2
        c.qemu = "/opt/qemu/bin/qemu-system-x86_64"
        let cmd = QEMU.command(c)
        #expect(cmd.executable == "/opt/qemu/bin/qemu-system-x86_64")
        #expect(cmd.arguments.contains("file=/var/tmp/disk.img,format=raw,if=virtio,cache=writeback"))
        #expect(cmd.arguments.last == "-snapshot")
        #expect(cmd.arguments[cmd.arguments.firstIndex(of: "-m")! + 1] == "1024")
        #expect(cmd.arguments[cmd.arguments.firstIndex(of: "-smp")! + 1] == "2")
    }

    @Test func withoutMetadataServiceTheNetworkIsStillRestricted() {
        #expect(QEMU.netdev(imdsHost: "127.0.0.1", imdsPort: nil) == "user,id=n0,restrict=on,net=169.254.0.0/16")
        #expect(
            QEMU.netdev(imdsHost: "127.0.0.2", imdsPort: 80, shell: "/usr/bin/bash").hasSuffix(
                ",guestfwd=tcp:169.254.169.254:80-cmd:/usr/bin/bash -c 'exec 2>/dev/null 4<&0 3<>/dev/tcp/127.0.0.2/80 || exit 1; cat <&4 >&3 & cat <&3; kill -9 $!'"
            ))
        #expect(!QEMU.relay(shell: "/bin/bash", host: "127.0.0.1", port: 1).contains(","))
    }

    @Test func commaInImagePathIsEscaped() {
        #expect(QEMU.drive(image: "/tmp/a,b.img", interface: .ide) == "file=/tmp/a,,b.img,format=raw,if=ide,cache=writeback")
    }

    /// Nitro's view of an EBS root volume: an NVMe controller whose serial is `vol` + the volume id's hex digits.
    @Test func nvmeDiskIsAControllerWithAVolumeSerial() {
        var c = BootConfig(image: "/tmp/c69.img", serialLog: "s", qmpSocket: "q")
        c.diskInterface = .nvme
        let args = QEMU.command(c).arguments
        let drive = args[(args.firstIndex(of: "-drive") ?? 0) + 1]
        #expect(drive == "file=/tmp/c69.img,format=raw,if=none,id=root,cache=writeback")
        let devices = args.indices.filter { args[$0] == "-device" }.map { args[$0 + 1] }
        #expect(devices.contains("nvme,drive=root,serial=\(QEMU.nvmeSerial)"), "\(devices)")
        #expect(QEMU.nvmeSerial.count == 20 && QEMU.nvmeSerial.hasPrefix("vol"))
        c.diskInterface = .ide
        #expect(!QEMU.command(c).arguments.contains { $0.hasPrefix("nvme") })
        #expect(BootConfig(image: "i", serialLog: "s", qmpSocket: "q").failurePatterns.contains("No root device"))
    }

    @Test func defaultsAreThoseOfBootTest() {
        let c = BootConfig(image: "i", serialLog: "s", qmpSocket: "q")
        #expect(c.readyPattern == "login:")
        #expect(c.diskInterface == .ide)
        #expect(c.imdsPort == nil)
        #expect(c.snapshot == false)
        #expect(c.timeout == 120)
    }
}
