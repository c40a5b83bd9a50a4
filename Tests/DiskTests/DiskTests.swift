import Foundation
import Testing
@testable import Disk
import Host

@Suite struct PreparationTests {
    @Test func mkfsArgumentListIsExactlyCentOS6Compatible() {
        let cmd = Preparation.mkfs(partition: "/dev/loop3p1", uuid: "0b7e0f2a-1111-4222-8333-444455556666")
        #expect(cmd.executable == "mkfs.ext4")
        #expect(cmd.arguments == ["-q", "-F", "-O",
                                  "none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,flex_bg,sparse_super,large_file,huge_file,uninit_bg,dir_nlink,extra_isize",
                                  "-I", "256", "-L", "/", "-U", "0b7e0f2a-1111-4222-8333-444455556666",
                                  "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "/dev/loop3p1"])
        // Nothing e2fsprogs 1.41.12 would refuse at boot.
        for banned in ["metadata_csum", "64bit", "orphan_file", "metadata_csum_seed"] {
            #expect(!Preparation.ext4Features.contains(banned))
        }
    }

    @Test func partitionScriptAndMounts() {
        let cmd = Preparation.partition(device: "/dev/xvdf")
        #expect(cmd.arguments.last == "/dev/xvdf")
        #expect(String(decoding: cmd.standardInput!, as: UTF8.self) == "label: dos\nstart=2048, type=83, bootable\n")
        #expect(Preparation.mountRoot(partition: "/dev/xvdf1", at: "/r").arguments == ["-t", "ext4", "-o", "noatime,noinit_itable", "/dev/xvdf1", "/r"])
        #expect(Preparation.mountYumCache(.tmpfs(bytes: 200 << 20), at: "/r/var/cache/yum").shellLine
                == "mount -t tmpfs -o size=209715200,mode=0755 centos6-ami-yum-cache /r/var/cache/yum")
        #expect(Preparation.mountYumCache(.directory("/srv/c"), at: "/m").arguments == ["--bind", "/srv/c", "/m"])
        #expect(Preparation.mknodPartition(path: "/dev/loop3p1", majorMinor: "259:0")?.arguments == ["-m", "0660", "/dev/loop3p1", "b", "259", "0"])
    }

    @Test(arguments: [("/dev/xvdb", "/dev/xvdb1"), ("/dev/sdf", "/dev/sdf1"), ("/dev/nvme1n1", "/dev/nvme1n1p1"),
                      ("/dev/loop3", "/dev/loop3p1"), ("/dev/loopN", "/dev/loopNp1")])
    func partitionNaming(_ disk: String, _ part: String) {
        #expect(BlockDevices.partitionPath(disk: disk, number: 1) == part)
    }

    @Test func sizes() throws {
        #expect(try parseSize("8G") == 8 << 30)
        #expect(try parseSize("512M") == 512 << 20)
        #expect(try parseSize("2GiB") == 2 << 30)
        #expect(try parseSize("4096") == 4096)
        for bad in ["", "G", "8X", "-1G", "1.5G", "99999999999999999999T"] {
            #expect(throws: DiskError.badSize(bad)) { try parseSize(bad) }
        }
        #expect(try YumCache.parse("tmpfs") == .tmpfs(bytes: YumCache.defaultTmpfsBytes))
        #expect(try YumCache.parse("tmpfs:200M") == .tmpfs(bytes: 200 << 20))
        #expect(throws: DiskError.self) { try YumCache.parse("/nonexistent/cache") }
    }
}

@Suite struct SignatureTests {
    func blank() -> [UInt8] { [UInt8](repeating: 0, count: Signatures.probeLength) }

    @Test func blankHasNone() { #expect(Signatures.detect(blank()).isEmpty) }

    @Test func findsTablesAndFilesystems() {
        var mbr = blank(); mbr[510] = 0x55; mbr[511] = 0xAA
        #expect(Signatures.detect(mbr) == ["an msdos partition table or boot sector"])
        var gpt = mbr; gpt.replaceSubrange(512..<520, with: Array("EFI PART".utf8))
        #expect(Signatures.detect(gpt) == ["a gpt partition table"])
        var ext = blank(); ext[1080] = 0x53; ext[1081] = 0xEF
        #expect(Signatures.detect(ext) == ["an ext2/3/4 filesystem"])
        var xfs = blank(); xfs.replaceSubrange(0..<4, with: Array("XFSB".utf8))
        #expect(Signatures.detect(xfs) == ["an xfs filesystem"])
        var swap = blank(); swap.replaceSubrange(4086..<4096, with: Array("SWAPSPACE2".utf8))
        #expect(Signatures.detect(swap) == ["a swap signature"])
        #expect(Signatures.detect([0x55]).isEmpty, "short input is not a crash")
    }
}

@Suite struct PreflightTests {
    let disk = BlockDeviceInfo(name: "xvdf", majorMinor: "202:80", isPartition: false, parentDisk: nil, partitions: ["xvdf1"],
                               sizeBytes: 8 << 30, holders: [])
    var device: TargetKind { .blockDevice(path: "/dev/xvdf", info: disk) }

    func first(_ facts: PreflightFacts) -> String { Preflight.errors(facts).first.map { "\($0)" } ?? "ok" }

    @Test func cleanTargetPasses() {
        #expect(first(PreflightFacts(isRoot: true, target: device, rootMajorMinor: "202:1")) == "ok")
        #expect(first(PreflightFacts(isRoot: true, target: .imageFile(path: "/srv/a.img", exists: false, sizeBytes: 0))) == "ok")
    }

    @Test func eachRefusalHasItsOwnMessage() {
        #expect(first(PreflightFacts(isRoot: false, target: device)).contains("must run as root"))
        #expect(first(PreflightFacts(isRoot: true, target: device, missingTools: [HostTool("sfdisk", "fdisk / util-linux")]))
                == "missing host tools: 'sfdisk' (package fdisk / util-linux); install them and run again")
        #expect(first(PreflightFacts(isRoot: true, target: device, rootMajorMinor: "202:81", partitionMajorMinors: ["xvdf1": "202:81"]))
                .contains("holds the running system's root"))
        let mount = MountEntry(majorMinor: "202:81", root: "/", mountPoint: "/mnt", fsType: "ext4", source: "/dev/xvdf1")
        #expect(first(PreflightFacts(isRoot: true, target: device, mounts: [mount], partitionMajorMinors: ["xvdf1": "202:81"]))
                == "target '/dev/xvdf' (or one of its partitions) is mounted on '/mnt'; unmount it first or pick another volume")
        #expect(first(PreflightFacts(isRoot: true, target: device, swapNames: ["xvdf1"])).contains("swap"))
        #expect(first(PreflightFacts(isRoot: true, target: device, exclusiveOpenFailure: "EBUSY")).contains("in use by something else"))
        #expect(first(PreflightFacts(isRoot: true, target: device, signatures: ["an msdos partition table or boot sector"]))
                == "target '/dev/xvdf' already has an msdos partition table or boot sector; refusing to overwrite it (wipe it first with 'wipefs -a /dev/xvdf' if you are sure, or pick another volume)")
        var small = disk; small.sizeBytes = 1 << 30
        #expect(first(PreflightFacts(isRoot: true, target: .blockDevice(path: "/dev/xvdf", info: small))).contains("at least"))
        #expect(first(PreflightFacts(isRoot: true, target: .imageFile(path: "/a.img", exists: true, sizeBytes: 1), loopAttachments: ["/dev/loop7"]))
                .contains("already attached to '/dev/loop7'"))
    }

    @Test func aBuilderWithoutVsyscallIsRefused() {
        var facts = PreflightFacts(isRoot: true, target: device)
        facts.kernelCommandLine = "BOOT_IMAGE=/vmlinuz root=/dev/vda ro vsyscall=none quiet\n"
        #expect(first(facts).contains("vsyscall=none"))
        #expect(!Preflight.vsyscallDisabled("root=/dev/vda vsyscall=emulate"))
        #expect(!Preflight.vsyscallDisabled("root=/dev/vda"))
    }

    @Test func lockPathsAreStablePerDevice() {
        #expect(Preflight.lockPath(for: device) == "/run/lock/centos6-ami/dev-202-80.lock")
        #expect(Preflight.lockPath(for: .imageFile(path: "/srv/a b.img", exists: false, sizeBytes: 0)) == "/run/lock/centos6-ami/file_srv_a_b.img.lock")
    }
}
