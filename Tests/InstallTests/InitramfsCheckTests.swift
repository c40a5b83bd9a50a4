import Foundation
import Testing
@testable import Install

/// One initramfs build per install: the %posttrans image stays when it holds the configured drivers.
@Suite struct InitramfsCheckTests {
    @Test func addDriversLinesAsDracutSourcesThem() {
        let text = """
            # comment add_drivers+=" ignored "
            add_drivers+=" xen-blkfront xen-netfront nvme "
              add_drivers='virtio_blk'
            omit_drivers+=" floppy "
            add_driversx=" no "
            """
        #expect(InitramfsCheck.addDrivers(text) == ["xen-blkfront", "xen-netfront", "nvme", "virtio_blk"])
    }

    @Test func missingDriversAreThoseNeitherInTheImageNorBuiltIn() {
        let configured = ["xen-blkfront", "xen-netfront", "nvme"]
        #expect(InitramfsCheck.missingDrivers(configured: configured, inInitramfs: ["xen_blkfront", "xen_netfront", "nvme"], builtin: []).isEmpty)
        #expect(InitramfsCheck.missingDrivers(configured: configured, inInitramfs: ["xen_blkfront"], builtin: ["xen_netfront"]) == ["nvme"])
    }

    @Test func generatedEntriesAreNotCopies() {
        let k = "2.6.32-696.el6.x86_64"
        #expect(!InitramfsCheck.isCopy("init", kernel: k))
        #expect(!InitramfsCheck.isCopy("lib/modules/\(k)/modules.dep", kernel: k))
        #expect(InitramfsCheck.isCopy("lib/modules/\(k)/kernel/drivers/nvme/host/nvme.ko", kernel: k))
        #expect(InitramfsCheck.isCopy("bin/busybox", kernel: k))
    }

    @Test func theKernelPackageShipsAModuleByItsFileList() {
        let files = [
            "/boot/vmlinuz-2.6.32-696.el6.x86_64", "/lib/modules/2.6.32-696.el6.x86_64/kernel/drivers/block/nvme.ko",
            "/usr/lib/modules/2.6.32-696.el6.x86_64/kernel/drivers/net/xen-netfront.ko.xz",
        ]
        #expect(PackageSteps.shipsModule("nvme", files: files))
        #expect(PackageSteps.shipsModule("xen-netfront", files: files))
        #expect(!PackageSteps.shipsModule("ena", files: files))
        #expect(!PackageSteps.shipsModule("nvme", files: ["/usr/share/doc/nvme.ko"]), "only under a modules tree")
    }

    @Test func aMissingOrChangedImageIsRebuilt() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("initramfs-check-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/boot", withIntermediateDirectories: true)
        let reason = try InitramfsCheck.rebuildReason(root: root, kernel: "k", image: "/boot/initramfs-k.img")
        #expect(reason == "/boot/initramfs-k.img is missing")
        try Data("not an initramfs".utf8).write(to: URL(fileURLWithPath: root + "/boot/initramfs-k.img"))
        #expect(
            try InitramfsCheck.rebuildReason(root: root, kernel: "k", image: "/boot/initramfs-k.img") == "/boot/initramfs-k.img is not a readable initramfs")
    }
}
