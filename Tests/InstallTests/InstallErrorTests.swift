import Foundation
import Host
@testable import Install
import Testing

/// The install's errors read as they always did, now made of `ToolError`'s parts.
@Suite struct InstallErrorTests {
    struct Bad: Error, CustomStringConvertible { var description: String { "bad signature" } }

    @Test func eachCaseReadsAsItsMessage() {
        let cases: [(InstallError, String)] = [
            (
                .noSpace(filesystem: "/srv", detail: "d"),
                "no space left on '/srv'; free some space there (or put the image, the cache or the yum cache elsewhere) and run again (d)"
            ),
            (
                .noSpace(filesystem: nil, detail: "d"),
                "no space left on a filesystem the install writes to; free some space there (or put the image, the cache or the yum cache elsewhere) and run again (d)"
            ),
            (
                .cacheNotWritable(path: "/c", reason: "on a read-only filesystem (EROFS)"),
                "the download cache --cache '/c' cannot be written: on a read-only filesystem (EROFS); name a writable directory with --cache"
            ),
            (.gpgKeyNotArmored(path: "/k"), "--gpg-key '/k' must be an armored public key (gpg --armor --export)"),
            (.notALoopDevice(printed: "x"), "losetup printed 'x' instead of a loop device"),
            (.undoFailed("unmount /r: busy"), "unmount /r: busy"),
            (.noCompsGroupFile(repository: "http://m/"), "repository 'http://m/' has no comps group file (yum groupinstall Core needs it)"),
            (.kernelMissing(package: "kernel-1", updates: true, release: "6.9"), "the repository has no 'kernel-1' (the updates kernel for 6.9)"),
            (.kernelMissing(package: "kernel-1", updates: false, release: "6.9"), "the repository has no 'kernel-1' (the GA kernel for 6.9)"),
            (.packageRejected(file: "a.rpm", mirror: "http://m", cause: Bad()), "package 'a.rpm' from http://m: bad signature"),
            (.kernelNotInstalled(kernel: "1", rpmOutput: ""), "kernel-1 is not installed: "),
            (.postfixInstalled, "postfix was installed despite --exclude=postfix"),
            (.imageFileMissing(path: "/etc/x"), "'/etc/x' is missing from the image (its package should have installed it)"),
            (.noGrubStageFiles, "no grub stage files under /usr/share/grub in the image (is the grub package installed?)"),
            (.grubSetupFailed(output: "Error 22"), "grub setup (hd0) did not succeed:\nError 22"),
            (.enaBuildRootPackageMissing("(seed) gcc"), "the repository lacks what the ENA build root needs: (seed) gcc"),
            (.kernelDevelMissing(package: "kernel-devel-1"), "the repository has no 'kernel-devel-1' (the headers of the pinned kernel)"),
            (.buildRootNotRemoved(path: "/b"), "the build root '/b' could not be removed; see the log"),
            (.enaModuleNotPicked(modulesDep: ["ena.ko:"]), "depmod in the target did not pick extra/ena/ena.ko for 'ena' (modules.dep: [\"ena.ko:\"])"),
            (.stillMounted(path: "/t", mounts: ["/t/a", "/t/b"]), "'/t' still has mounts (/t/a, /t/b); not removing it"),
        ]
        for (error, text) in cases { #expect("\(error)" == text) }
    }

    @Test func theOtherInstallErrorsToo() {
        #expect(
            "\(RecoveryError.deadRun(target: "/x.img", pid: 7, journal: "/j"))"
                == "'/x.img' has leftovers of a centos6-ami run (pid 7) that died without cleaning up (journal '/j'); run 'centos6-ami cleanup --local' first")
        #expect("\(RPMRuntimeError.noRPMBinary)" == "no bootstrap package holds /bin/rpm or /usr/bin/rpm")
        #expect(
            "\(RPMRuntimeError.libraryNotInBootstrapSet(library: "l", neededBy: "/f"))"
                == "'/f' needs 'l', which no candidate package holds (rpm could not run)")
    }
}
