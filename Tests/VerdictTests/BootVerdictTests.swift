import Foundation
import TestSupport
import Testing
@testable import Verdict

/// An image root with one kernel, a grub.conf and an initramfs holding `initramfs` modules.
struct VerdictFixture {
    let root = NSTemporaryDirectory() + "verdict-\(UUID().uuidString)"
    let kver: String

    init(
        kver: String = "2.6.32-696.el6.x86_64", initramfs: [String], installed: [String], builtin: [String]? = nil,
        config: String? = nil, compress: Bool = true, grub: String? = nil
    ) throws {
        self.kver = kver
        let fm = FileManager.default
        let mods = "\(root)/lib/modules/\(kver)"
        try fm.createDirectory(atPath: mods + "/kernel", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/boot/grub", withIntermediateDirectories: true)
        for path in installed {
            try fm.createDirectory(atPath: (mods + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            fm.createFile(atPath: mods + "/" + path, contents: Data("ko".utf8))
        }
        if let builtin { try builtin.joined(separator: "\n").write(toFile: mods + "/modules.builtin", atomically: true, encoding: .utf8) }
        if let config { try config.write(toFile: "\(root)/boot/config-\(kver)", atomically: true, encoding: .utf8) }
        fm.createFile(atPath: "\(root)/boot/vmlinuz-\(kver)", contents: Data())
        let menu =
            grub ?? """
                default=0
                timeout=0
                title CentOS 6.9
                \troot (hd0,0)
                \tkernel /boot/vmlinuz-\(kver) ro root=LABEL=/ console=ttyS0,115200
                \tinitrd /boot/initramfs-\(kver).img

                """
        try menu.write(toFile: root + "/boot/grub/menu.lst", atomically: true, encoding: .utf8)
        try fm.createSymbolicLink(atPath: root + "/boot/grub/grub.conf", withDestinationPath: "menu.lst")
        var archive = NewcArchive()
        archive.dir(".")
        archive.file("init", "#!/bin/sh\n", mode: 0o755)
        archive.dir("lib/modules/\(kver)")
        for path in initramfs { archive.file("lib/modules/\(kver)/\(path)", "\u{7f}ELF module") }
        archive.trailer()
        let bytes = compress ? try hostGzip(archive.bytes) : archive.bytes
        try Data(bytes).write(to: URL(fileURLWithPath: "\(root)/boot/initramfs-\(kver).img"))
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct InitramfsBoundTests {
    /// An initramfs that unpacks past the cap is refused, not read into memory whole.
    @Test func initramfsPastTheCapIsRefused() throws {
        var archive = NewcArchive()
        archive.dir(".")
        archive.file("init", String(repeating: "#", count: 300_000), mode: 0o755)
        archive.trailer()
        let packed = try hostGzip(archive.bytes)
        #expect(try BootVerdict.initramfsNames(packed).contains("init"))
        do {
            _ = try BootVerdict.initramfsNames(packed, limit: 100_000)
            Issue.record("an initramfs over the limit was read")
        } catch {
            #expect("\(error)".contains("more than 100000 bytes"), "\(error)")
        }
        #expect(BootVerdict.maxInitramfsBytes == 512 << 20)
    }
}

@Suite struct BootVerdictTests {
    static let xenInitramfs = ["kernel/drivers/block/xen-blkfront.ko", "kernel/drivers/net/xen-netfront.ko"]
    static let nvmeModules = ["kernel/drivers/nvme/host/nvme-core.ko", "kernel/drivers/nvme/host/nvme.ko"]
    static let ena = "extra/ena/ena.ko"

    @Test func enaImageBootsOnXenAndNitro() throws {
        let f = try VerdictFixture(initramfs: Self.xenInitramfs + Self.nvmeModules, installed: Self.xenInitramfs + Self.nvmeModules + [Self.ena], builtin: [])
        defer { f.remove() }
        let v = try BootVerdict.compute(root: f.root)
        #expect(v.kernel == "2.6.32-696.el6.x86_64")
        #expect(v.xen && v.nitro && v.bootsOn == "xen,nitro" && v.reasons.isEmpty, "\(v)")
        #expect(v.drivers == ["xen-blkfront": .initramfs, "xen-netfront": .initramfs, "nvme": .initramfs, "ena": .installed])
        #expect(v.summary == "Xen and Nitro")
    }

    @Test func withoutENAItIsXenOnlyAndSaysWhy() throws {
        let f = try VerdictFixture(initramfs: Self.xenInitramfs + Self.nvmeModules, installed: Self.xenInitramfs + Self.nvmeModules, builtin: [])
        defer { f.remove() }
        let v = try BootVerdict.compute(root: f.root, enaHint: "build the image with --ena")
        #expect(v.xen && !v.nitro && v.bootsOn == "xen")
        #expect(v.reasons == ["nitro: no network, ENA not installed (build the image with --ena)"])
        #expect(v.summary == "Xen only: no network, ENA not installed (build the image with --ena)")
    }

    @Test func aKernelWithoutNVMeCannotBootOnNitro() throws {
        let f = try VerdictFixture(kver: "2.6.32-358.el6.x86_64", initramfs: Self.xenInitramfs, installed: Self.xenInitramfs, builtin: [])
        defer { f.remove() }
        let v = try BootVerdict.compute(root: f.root, enaHint: "6.4 cannot have it")
        #expect(v.bootsOn == "xen")
        #expect(v.reasons == ["nitro: no nvme driver in 2.6.32-358.el6", "nitro: no network, ENA not installed (6.4 cannot have it)"])
        #expect(v.summary.hasPrefix("Xen only: no nvme driver in 2.6.32-358.el6"))
    }

    @Test func anNVMeModuleLeftOutOfTheInitramfsDoesNotCount() throws {
        let f = try VerdictFixture(initramfs: Self.xenInitramfs, installed: Self.xenInitramfs + Self.nvmeModules + [Self.ena], builtin: [])
        defer { f.remove() }
        let v = try BootVerdict.compute(root: f.root)
        #expect(!v.nitro && v.drivers["nvme"] == .installed)
        #expect(v.reasons == ["nitro: nvme is not in the initramfs of 2.6.32-696.el6 (add it to /etc/dracut.conf.d and rerun dracut)"])
    }

    @Test func noXenBlockDriverInTheInitramfsMeansNoXen() throws {
        let f = try VerdictFixture(initramfs: Self.nvmeModules, installed: Self.nvmeModules + [Self.ena], builtin: [])
        defer { f.remove() }
        let v = try BootVerdict.compute(root: f.root)
        #expect(!v.xen && v.nitro && v.bootsOn == "nitro")
        #expect(v.reasons == ["xen: no xen-blkfront driver in 2.6.32-696.el6", "xen: no network, no xen-netfront driver in 2.6.32-696.el6"])
        #expect(v.summary.hasPrefix("Nitro only: "))
    }

    @Test func builtInDriversCountFromModulesBuiltin() throws {
        // Debian's cloud kernel: NVMe and the Xen front ends built in, nothing in the initramfs.
        let f = try VerdictFixture(
            initramfs: [], installed: [Self.ena],
            builtin: [
                "kernel/drivers/nvme/host/nvme-core.ko", "kernel/drivers/nvme/host/nvme.ko",
                "kernel/drivers/block/xen-blkfront.ko", "kernel/drivers/net/xen-netfront.ko",
            ])
        defer { f.remove() }
        let v = try BootVerdict.compute(root: f.root)
        #expect(v.bootsOn == "xen,nitro" && v.drivers["nvme"] == .builtin && v.drivers["xen-blkfront"] == .builtin, "\(v)")
    }

    @Test func builtInDriversCountFromTheConfigWithoutModulesBuiltin() throws {
        let config = "CONFIG_BLK_DEV_NVME=y\nCONFIG_XEN_BLKDEV_FRONTEND=m\n# CONFIG_ENA_ETHERNET is not set\nCONFIG_XEN_NETDEV_FRONTEND=y\n"
        let f = try VerdictFixture(initramfs: ["kernel/drivers/block/xen-blkfront.ko"], installed: [], builtin: nil, config: config)
        defer { f.remove() }
        let v = try BootVerdict.compute(root: f.root)
        #expect(v.drivers == ["nvme": .builtin, "xen-blkfront": .initramfs, "xen-netfront": .builtin, "ena": .missing], "\(v.drivers)")
        #expect(BootVerdict.builtin(config: config) == ["nvme", "xen_netfront"])
    }

    @Test func anUncompressedInitramfsAndCompressedModulesAreRead() throws {
        let f = try VerdictFixture(
            initramfs: ["kernel/drivers/block/xen-blkfront.ko.xz", "kernel/drivers/net/xen-netfront.ko.gz"], installed: [],
            builtin: [], compress: false)
        defer { f.remove() }
        #expect(try BootVerdict.compute(root: f.root).xen)
    }

    @Test func anEarlyArchiveBeforeTheCompressedOneIsSkipped() throws {
        var early = NewcArchive()
        early.file("kernel/x86/microcode/GenuineIntel.bin", "ucode")
        early.trailer()
        var main = NewcArchive()
        main.file("lib/modules/k/kernel/drivers/nvme/host/nvme.ko", "m")
        main.trailer()
        let names = try BootVerdict.initramfsModules(early.bytes + [0, 0, 0, 0] + (try hostGzip(main.bytes)))
        #expect(names == ["nvme"])
        #expect(throws: BootVerdict.Failure.self) { try BootVerdict.initramfsModules(Array("not an initramfs at all, no".utf8)) }
    }

    @Test func theDefaultEntryOfGrubConfPicksTheKernel() {
        let conf = """
            default=1
            timeout=5
            title new
            \tkernel /boot/vmlinuz-2.6.32-754.el6.x86_64 ro root=LABEL=/
            \tinitrd /boot/initramfs-2.6.32-754.el6.x86_64.img
            title old
            \tkernel /vmlinuz-2.6.32-696.el6.x86_64 ro
            \tinitrd /initramfs-2.6.32-696.el6.x86_64.img
            """
        let entry = BootVerdict.defaultEntry(grubConf: conf)
        #expect(entry?.kernel == "2.6.32-696.el6.x86_64" && entry?.initrd == "/initramfs-2.6.32-696.el6.x86_64.img")
        #expect(BootVerdict.defaultEntry(grubConf: "default=0\n") == nil)
    }

    @Test func notABuiltImageIsAClearError() throws {
        let dir = NSTemporaryDirectory() + "verdict-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect { try BootVerdict.compute(root: dir) } throws: { "\($0)".contains("no kernel ('/boot/vmlinuz-*') in the image") }
    }
}
