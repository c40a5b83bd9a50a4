import Foundation
import Testing
@testable import Disk
import Host

@Suite struct PreparationTests {
    @Test func mkfsArgumentListIsExactlyCentOS6Compatible() {
        let cmd = Preparation.mkfs(partition: "/dev/loop3p1", uuid: "0b7e0f2a-1111-4222-8333-444455556666")
        #expect(cmd.executable == "mkfs.ext4")
        #expect(
            cmd.arguments == [
                "-q", "-F", "-O",
                "none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,flex_bg,sparse_super,large_file,huge_file,uninit_bg,dir_nlink,extra_isize",
                "-I", "256", "-L", "/", "-U", "0b7e0f2a-1111-4222-8333-444455556666",
                "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", "/dev/loop3p1",
            ])
        // Nothing e2fsprogs 1.41.12 would refuse at boot.
        for banned in ["metadata_csum", "64bit", "orphan_file", "metadata_csum_seed"] {
            #expect(!Preparation.ext4Features.contains(banned))
        }
    }

    @Test func partitionScriptAndMounts() {
        let cmd = Preparation.partition(device: "/dev/xvdf")
        #expect(cmd.arguments.last == "/dev/xvdf")
        #expect(String(decoding: cmd.standardInput!, as: UTF8.self) == "label: dos\nstart=2048, type=83, bootable\n")
        #expect(
            Preparation.mountRoot(partition: "/dev/xvdf1", at: "/r").arguments == ["-t", "ext4", "-o", "noatime,noinit_itable,barrier=0", "/dev/xvdf1", "/r"])
        #expect(Preparation.flush(device: "/dev/xvdf").arguments == ["/dev/xvdf"])
        #expect(
            Preparation.mountYumCache(.tmpfs(bytes: 200 << 20), at: "/r/var/cache/yum").shellLine
                == "mount -t tmpfs -o size=209715200,mode=0755 centos6-ami-yum-cache /r/var/cache/yum")
        #expect(Preparation.mountYumCache(.directory("/srv/c"), at: "/m").arguments == ["--bind", "/srv/c", "/m"])
        #expect(Preparation.mknodPartition(path: "/dev/loop3p1", majorMinor: "259:0")?.arguments == ["-m", "0660", "/dev/loop3p1", "b", "259", "0"])
    }

    /// Every mount of the install's trees and the one unmount, as the plans print them.
    @Test func chrootAndScratchMountsAndTheOneUnmount() {
        let lines = [
            Preparation.proc(at: "/r/proc"), Preparation.sysfs(at: "/r/sys"), Preparation.minimalDev(at: "/r/dev"), Preparation.devpts(at: "/r/dev/pts"),
            Preparation.tmpfs("centos6-ami-rpm-tools", bytes: 268_435_456, at: "/t"), Preparation.bind("/r/dev", at: "/t/dev"),
            Preparation.bind("/m", at: "/r/mirror", readOnly: true), Preparation.recursiveBind("/r", at: "/t/target"),
            Preparation.makeRecursiveSlave("/t/target"), Preparation.mountForReading(partition: "/dev/loop3p1", at: "/w/root"),
            Preparation.unmount("/r"), Preparation.unmount("/t/target", .recursive), Preparation.unmount("/r", .lazy),
        ].map(\.shellLine)
        #expect(
            lines == [
                "mount -t proc proc /r/proc", "mount -t sysfs sysfs /r/sys", "mount -t tmpfs -o mode=0755,size=1m,nosuid centos6-ami-dev /r/dev",
                "mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /r/dev/pts",
                "mount -t tmpfs -o size=268435456,mode=0755 centos6-ami-rpm-tools /t", "mount --bind /r/dev /t/dev",
                "mount --bind -o ro /m /r/mirror", "mount --rbind /r /t/target", "mount --make-rslave /t/target", "mount -o ro,noload /dev/loop3p1 /w/root",
                "umount /r", "umount -R /t/target", "umount -l /r",
            ])
    }

    @Test(arguments: [
        ("/dev/xvdb", "/dev/xvdb1"), ("/dev/sdf", "/dev/sdf1"), ("/dev/nvme1n1", "/dev/nvme1n1p1"),
        ("/dev/loop3", "/dev/loop3p1"), ("/dev/loopN", "/dev/loopNp1"),
    ])
    func partitionNaming(_ disk: String, _ part: String) {
        #expect(BlockDevices.partitionPath(disk: disk, number: 1) == part)
    }

    @Test func sizes() throws {
        #expect(try parseSize("8G") == 8 << 30)
        #expect(try parseSize("512M") == 512 << 20)
        #expect(try parseSize("2GiB") == 2 << 30)
        #expect(try parseSize("4096") == 4096)
        for bad in ["", "G", "8X", "-1G", "1.5G", "0"] {
            #expect(throws: DiskError.badSize(bad)) { try parseSize(bad) }
        }
        // Too big is not "not a size": the message says what the limit is.
        for huge in ["99999999999999999999T", "99999999T", "17T"] {
            #expect(throws: DiskError.sizeTooLarge(huge, maximum: maximumTargetBytes)) { try parseSize(huge) }
        }
        #expect(DiskError.sizeTooLarge("99999999T", maximum: maximumTargetBytes).description.contains("'99999999T' is too big"))
        #expect(try parseSize("16T") == maximumTargetBytes)
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
    let disk = BlockDeviceInfo(
        name: "xvdf", majorMinor: "202:80", isPartition: false, parentDisk: nil, partitions: ["xvdf1"],
        sizeBytes: 8 << 30, holders: [])
    var device: TargetKind { .blockDevice(path: "/dev/xvdf", info: disk) }

    func first(_ facts: PreflightFacts) -> String { Preflight.errors(facts).first.map { "\($0)" } ?? "ok" }

    @Test func cleanTargetPasses() {
        #expect(first(PreflightFacts(isRoot: true, target: device, rootMajorMinor: "202:1")) == "ok")
        #expect(first(PreflightFacts(isRoot: true, target: .imageFile(path: "/srv/a.img", exists: false, sizeBytes: 0))) == "ok")
    }

    @Test func eachRefusalHasItsOwnMessage() {
        #expect(first(PreflightFacts(isRoot: false, target: device)).contains("must run as root"))
        #expect(
            first(PreflightFacts(isRoot: true, target: device, missingTools: [HostTool("sfdisk", "fdisk / util-linux")]))
                == "missing host tools: 'sfdisk' (package fdisk / util-linux); install them and run again")
        #expect(
            first(PreflightFacts(isRoot: true, target: device, rootMajorMinor: "202:81", partitionMajorMinors: ["xvdf1": "202:81"]))
                .contains("holds the running system's root"))
        let mount = MountEntry(majorMinor: "202:81", root: "/", mountPoint: "/mnt", fsType: "ext4", source: "/dev/xvdf1")
        #expect(
            first(PreflightFacts(isRoot: true, target: device, mounts: [mount], partitionMajorMinors: ["xvdf1": "202:81"]))
                == "target '/dev/xvdf' (or one of its partitions) is mounted on '/mnt'; unmount it first or pick another volume")
        #expect(first(PreflightFacts(isRoot: true, target: device, swapNames: ["xvdf1"])).contains("swap"))
        #expect(first(PreflightFacts(isRoot: true, target: device, exclusiveOpenFailure: "EBUSY")).contains("in use by something else"))
        #expect(
            first(PreflightFacts(isRoot: true, target: device, signatures: ["an msdos partition table or boot sector"]))
                == "target '/dev/xvdf' already has an msdos partition table or boot sector; refusing to overwrite it (wipe it first with 'wipefs -a /dev/xvdf' if you are sure, or pick another volume)"
        )
        var small = disk; small.sizeBytes = 1 << 30
        #expect(first(PreflightFacts(isRoot: true, target: .blockDevice(path: "/dev/xvdf", info: small))).contains("at least"))
        #expect(
            first(PreflightFacts(isRoot: true, target: .imageFile(path: "/a.img", exists: true, sizeBytes: 1), loopAttachments: ["/dev/loop7"]))
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
        #expect(TargetIdentity.lockPaths(device, directory: "/run/lock/centos6-ami") == ["/run/lock/centos6-ami/dev-202-80.lock"])
    }

    @Test func targetIdentityIsWhatTheFileIsNotItsName() throws {
        let dir = try TemporaryDirectory.make("ident")
        try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/c.img", contents: Data(count: 4096))
        try FileManager.default.createSymbolicLink(atPath: dir + "/clink.img", withDestinationPath: "c.img")
        try FileManager.default.linkItem(atPath: dir + "/c.img", toPath: dir + "/chard.img")
        let keys = { (name: String) in TargetIdentity.keys(try inspectTarget(dir + "/" + name)) }
        let c = try keys("c.img"), link = try keys("clink.img"), hard = try keys("chard.img")
        #expect(c.count == 2 && c == link, "a symlink is the same file: \(c) \(link)")
        #expect(c[0] == hard[0] && c[0].hasPrefix("inode-"), "a hard link shares the inode key")
        // Names that the old path-text lock confused (a_b.img and a/b.img) are two targets.
        let flat = try keys("a_b.img"), nested = try keys("a/b.img")
        #expect(Set(flat).isDisjoint(with: nested))
        // A dangling symlink leads where truncate would create the file.
        try FileManager.default.createSymbolicLink(atPath: dir + "/new-link.img", withDestinationPath: "a/b.img")
        #expect(try keys("new-link.img") == nested)
        // Lock names are the hex of the name, never shortened; long keys nest.
        #expect(TargetIdentity.nameKey(parentDevice: 1, parentInode: 2, name: "a_b.img") == "name-1-2-615f622e696d67")
        let long = TargetIdentity.lockPath(key: String(repeating: "f", count: 450), directory: "/l")
        #expect(
            long == "/l/" + String(repeating: "f", count: 200) + ".d/" + String(repeating: "f", count: 200) + ".d/" + String(repeating: "f", count: 50)
                + ".lock")
    }

    @Test func imageFilesAreSizeCheckedLikeDevices() {
        for size: UInt64 in [0, 6, minimumTargetBytes - 1] {
            let facts = PreflightFacts(isRoot: true, target: .imageFile(path: "/srv/x.img", exists: true, sizeBytes: size))
            #expect(Preflight.errors(facts).first == .tooSmall(path: "/srv/x.img", bytes: size, minimum: minimumTargetBytes))
        }
        #expect(Preflight.errors(PreflightFacts(isRoot: true, target: .imageFile(path: "/srv/x.img", exists: false, sizeBytes: 0))).isEmpty)
        // --size with an existing file: only its own size.
        let existing = TargetKind.imageFile(path: "/srv/x.img", exists: true, sizeBytes: 8 << 30)
        #expect(Preflight.sizeOptionError(target: existing, requested: 8 << 30, given: true) == nil)
        #expect(Preflight.sizeOptionError(target: existing, requested: 4 << 30, given: false) == nil)
        let refused = Preflight.sizeOptionError(target: existing, requested: 4 << 30, given: true)
        #expect(refused?.description.contains("exists with 8589934592 bytes but --size asks for 4294967296") == true)
        #expect(Preflight.sizeOptionError(target: .imageFile(path: "/n.img", exists: false, sizeBytes: 0), requested: 4 << 30, given: true) == nil)
    }

    @Test func freeSpaceIsCheckedAgainstWhatTheInstallWrites() {
        let needed = Preflight.bytesWritten(installedBytes: 400_000_000)
        #expect(needed == 500_000_000 + (128 << 20))
        let refused = Preflight.spaceError(imagePath: "/small/t.img", filesystem: "/small", freeBytes: 64 << 20, needed: needed, alreadyAllocated: 0)
        #expect(refused?.description.hasPrefix("no space left on '/small' for image file '/small/t.img'") == true)
        #expect(Preflight.spaceError(imagePath: "/big/t.img", filesystem: "/big", freeBytes: 8 << 30, needed: needed, alreadyAllocated: 0) == nil)
        // What an existing (fully allocated) file holds already counts.
        #expect(Preflight.spaceError(imagePath: "/s/t.img", filesystem: "/s", freeBytes: 0, needed: needed, alreadyAllocated: needed) == nil)
    }
}
