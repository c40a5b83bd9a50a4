@testable import CLI
import Foundation
import Testing
@testable import Verdict

@Suite struct InspectCommandTests {
    @Test func firstPartitionOfAnMsdosLabel() {
        var mbr = [UInt8](repeating: 0, count: 512)
        #expect(InspectCommand.firstPartitionOffset(mbr: mbr) == nil, "no 0x55AA signature")
        mbr[510] = 0x55; mbr[511] = 0xAA
        #expect(InspectCommand.firstPartitionOffset(mbr: mbr) == nil, "no first partition")
        mbr[454] = 0x00; mbr[455] = 0x08 // LBA 2048: our partition starts at 1 MiB
        #expect(InspectCommand.firstPartitionOffset(mbr: mbr) == 1_048_576)
    }

    @Test func aMountedRootNeedsNoPrivilegesAndEveryDriverIsNamed() throws {
        let root = NSTemporaryDirectory() + "inspect-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let kver = "2.6.32-696.el6.x86_64"
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/boot/grub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/lib/modules/\(kver)/extra/ena", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        fm.createFile(atPath: root + "/lib/modules/\(kver)/extra/ena/ena.ko", contents: Data())
        try "kernel/drivers/nvme/host/nvme.ko\nkernel/drivers/block/xen-blkfront.ko\nkernel/drivers/net/xen-netfront.ko\n"
            .write(toFile: root + "/lib/modules/\(kver)/modules.builtin", atomically: true, encoding: .utf8)
        try "CentOS release 6.9 (Final)\n".write(toFile: root + "/etc/redhat-release", atomically: true, encoding: .utf8)
        try "default=0\ntitle x\n\tkernel /boot/vmlinuz-\(kver) ro\n\tinitrd /boot/initramfs-\(kver).img\n"
            .write(toFile: root + "/boot/grub/grub.conf", atomically: true, encoding: .utf8)
        // An empty newc archive: just the trailer.
        var trailer = "070701" + String(repeating: "00000000", count: 11) + "0000000B" + "00000000"
        trailer += "TRAILER!!!\0"
        while trailer.utf8.count % 4 != 0 { trailer += "\0" }
        fm.createFile(atPath: root + "/boot/initramfs-\(kver).img", contents: Data(trailer.utf8))
        let r = runCLI(["inspect", root])
        #expect(r.code == 0, "\(r.err)")
        #expect(
            r.out == """
                image:     \(root)
                hygiene: clean (no host keys, authorized_keys, histories, net rules, leases, logs, seed or yum uuid)
                kernel:    \(kver)
                  xen-blkfront  built into the kernel
                  xen-netfront  built into the kernel
                  nvme          built into the kernel
                  ena           installed in /lib/modules/\(kver)
                boots on:  Xen and Nitro
                """)
        let json = runCLI(["inspect", root, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any]
        #expect(object?["bootsOn"] as? String == "xen,nitro" && object?["nitro"] as? Bool == true)
        #expect(runCLI(["inspect"]).code == 64)
        #expect(runCLI(["inspect", root + "/missing"]).code == 1)
    }
}

@Suite struct InspectSBOMCommandTests {
    /// A hostile root whose /var/lib/rpm links to a host directory holding a database: the
    /// link is read inside the root, where there is none, so the host's is never read.
    @Test func aLinkOutOfTheImageFindsNoDatabaseAndReadsNothingOfTheHost() throws {
        let dir = NSTemporaryDirectory() + "inspect-sbom-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = dir + "/root", host = dir + "/host-rpmdb"
        try FileManager.default.createDirectory(atPath: root + "/var/lib", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "host secret".write(toFile: host + "/Packages", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/var/lib/rpm", withDestinationPath: host)
        let result = runCLI(["inspect", root, "--sbom", "spdx"])
        #expect(result.code == 1 && result.out.isEmpty)
        #expect(result.err.contains("the image has no directory /var/lib/rpm"), "\(result.err)")
        #expect(!result.err.contains("host secret"))
    }

    @Test func usageErrors() {
        #expect(runCLI(["inspect", "/", "--sbom", "swid"]).err.contains("--sbom takes spdx or cyclonedx, not 'swid'"))
        #expect(runCLI(["inspect", "/", "--sbom", "spdx", "--json"]).err.contains("--sbom and --json: choose one"))
        #expect(runCLI(["inspect", "/", "--sbom", "spdx", "--json"]).code == 64)
    }
}
