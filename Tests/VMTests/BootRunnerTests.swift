import Foundation
import Testing
import Host
import TestSupport
@testable import VM
#if canImport(Glibc)
    import Glibc
#endif

/// The runner driven by a fake `qemu` (a shell script that writes to the
/// `-serial file:` path it is given): start, watch, stop, reap, no QEMU needed.
@Suite(.serialized) struct BootRunnerTests {
    let dir: String

    init() throws {
        dir = NSTemporaryDirectory() + "vmrunner-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/disk.img", contents: Data(count: 512))
    }

    /// A fake qemu: finds its serial log in its arguments, writes `console`, records its pid, then `behaviour`.
    func fakeQEMU(console: String, behaviour: String) throws -> String {
        let path = dir + "/fake-qemu"
        let script = """
            #!/bin/sh
            echo $$ > \(dir)/pid
            log=
            while [ $# -gt 0 ]; do
              case "$1" in -serial) log="${2#file:}"; shift;; esac
              shift
            done
            printf '%b' '\(console)' >> "$log"
            \(behaviour)
            """
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func config(_ qemu: String) -> BootConfig {
        var c = BootConfig(image: dir + "/disk.img", serialLog: dir + "/serial.log", qmpSocket: dir + "/qmp.sock", imdsPort: 1)
        c.qemu = qemu
        c.timeout = 3
        c.powerOffGrace = 0.5
        c.killGrace = 0.5
        return c
    }

    func pidGone() throws -> Bool {
        let pid = pid_t(try String(contentsOfFile: dir + "/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        return kill(pid, 0) == -1 && errno == ESRCH
    }

    @Test func readyThenTerminated() throws {
        let qemu = try fakeQEMU(
            console: "SeaBIOS\\nlocalhost login: ", behaviour: "trap 'echo terminating on signal 15 >&2; exit 0' TERM\nwhile :; do sleep 0.05; done")
        let result = try BootRunner(log: nil).boot(config(qemu))
        #expect(result.passed)
        #expect(result.secondsToReady! < 3)
        #expect(result.console == "SeaBIOS\nlocalhost login: ")
        #expect(result.shutdown == .terminated)
        #expect(result.qemuStderr.contains("terminating on signal 15"))
        #expect(try pidGone())
        #expect(!FileManager.default.fileExists(atPath: dir + "/qmp.sock"))
    }

    @Test func qemuIgnoringTermIsKilled() throws {
        let qemu = try fakeQEMU(console: "login: ", behaviour: "trap '' TERM\nexec sleep 30")
        let start = Date()
        let result = try BootRunner(log: nil).boot(config(qemu))
        #expect(result.passed)
        #expect(result.shutdown == .killed)
        #expect(result.qemuStatus == 128 + SIGKILL)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(try pidGone())
    }

    @Test func noPatternTimesOut() throws {
        let qemu = try fakeQEMU(console: "SeaBIOS\\nBooting from Hard Disk...\\n", behaviour: "trap 'exit 0' TERM\nwhile :; do sleep 0.05; done")
        let start = Date()
        let result = try BootRunner(log: nil).boot(config(qemu))
        #expect(!result.passed)
        #expect(result.outcome == .timedOut)
        #expect(Date().timeIntervalSince(start) >= 3)
        #expect(result.console.contains("Booting from Hard Disk"))
        #expect(result.summary.hasPrefix("failed: no ready pattern"))
        #expect(try pidGone())
    }

    /// dracut giving up on the root device (or a panic) ends the run at once, without the power button.
    @Test func aFailurePatternEndsTheRunAtOnce() throws {
        for text in ["dracut Warning: No root device \"LABEL=/\" found\\n", "Kernel panic - not syncing: VFS: Unable to mount root fs\\n"] {
            let qemu = try fakeQEMU(console: text, behaviour: "trap 'exit 0' TERM\nwhile :; do sleep 0.05; done")
            var c = config(qemu)
            c.timeout = 30
            let start = Date()
            let result = try BootRunner(log: nil).boot(c)
            #expect(!result.passed)
            guard case let .failed(pattern, _) = result.outcome else { Issue.record("\(result.outcome)"); continue }
            #expect(pattern == (text.hasPrefix("dracut") ? "No root device" : "Kernel panic"))
            #expect(Date().timeIntervalSince(start) < 10, "not the 30 s timeout")
            #expect(result.shutdown == .terminated)
            #expect(result.summary.hasPrefix("failed: the guest printed '\(pattern)'"))
            #expect(try pidGone())
        }
    }

    @Test func qemuExitingEarlyIsAFailedRun() throws {
        let qemu = try fakeQEMU(console: "qemu: could not load PC BIOS\\n", behaviour: "echo 'qemu-system-x86_64: failed' >&2\nexit 3")
        let result = try BootRunner(log: nil).boot(config(qemu))
        #expect(!result.passed)
        #expect(result.outcome == .producerExited)
        #expect(result.shutdown == .exitedByItself)
        #expect(result.qemuStatus == 3)
        #expect(result.qemuStderr.contains("failed"))
    }

    /// An old console log that already says login: never makes a boot pass: the run
    /// starts from its own empty file, and a QEMU that exits or writes elsewhere fails.
    @Test func anOldConsoleLogCannotMakeABootPass() throws {
        let c = config(try fakeQEMU(console: "", behaviour: "exit 0"))
        try "SeaBIOS\nlocalhost login: \n".write(toFile: c.serialLog, atomically: true, encoding: .utf8)
        let exited = try BootRunner(log: nil).boot(c)
        #expect(!exited.passed && exited.outcome == .producerExited, "\(exited.outcome)")
        #expect(!exited.console.contains("login:"))
        // A symlink at the console path is replaced, not followed.
        let elsewhere = dir + "/elsewhere.log"
        try "localhost login: \n".write(toFile: elsewhere, atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: c.serialLog)
        try FileManager.default.createSymbolicLink(atPath: c.serialLog, withDestinationPath: elsewhere)
        var quiet = c
        quiet.timeout = 1
        quiet.qemu = try fakeQEMU(console: "", behaviour: "trap 'exit 0' TERM\nwhile :; do sleep 0.05; done")
        let timedOut = try BootRunner(log: nil).boot(quiet)
        #expect(!timedOut.passed && timedOut.outcome == .timedOut, "\(timedOut.outcome)")
        #expect(try String(contentsOfFile: elsewhere, encoding: .utf8) == "localhost login: \n", "the link's target is untouched")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: c.serialLog)) == nil, "the console is a file of the run's own")
        // QEMU writing to another file than the one this run made: a failure, not a pass.
        let swapping = config(
            try fakeQEMU(console: "", behaviour: "rm -f \"$log\"; printf 'login: ' > \"$log\"\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done"))
        let swapped = try BootRunner(log: nil).boot(swapping)
        #expect(!swapped.passed, "\(swapped.outcome)")
    }

    @Test func anImmutableOldConsoleLogIsRefusedNotRead() throws {
        let c = config(try fakeQEMU(console: "", behaviour: "exit 0"))
        try "localhost login: \n".write(toFile: c.serialLog, atomically: true, encoding: .utf8)
        let chattr = { (flag: String) -> Int32 in
            runTool(Command("/usr/bin/chattr", [flag, c.serialLog])).status
        }
        try #require(chattr("+i") == 0, "chattr +i (root on ext4) must work here")
        defer { _ = chattr("-i") }
        do {
            _ = try BootRunner(log: nil).boot(c)
            Issue.record("an immutable console log was not refused")
        } catch let error as VMError {
            #expect("\(error)".contains("an old console log is there and cannot be replaced"), "\(error)")
        }
    }

    @Test func aConsoleLogThatCannotBeReplacedIsRefused() throws {
        let c = config(try fakeQEMU(console: "login: ", behaviour: "exit 0"))
        try FileManager.default.createDirectory(atPath: c.serialLog, withIntermediateDirectories: true)
        #expect(throws: VMError.console(path: c.serialLog, reason: "it is a directory; name a file with --console")) { try BootRunner(log: nil).boot(c) }
    }

    @Test func customReadyPattern() throws {
        let qemu = try fakeQEMU(console: "login: \\nIMDS-KEY: ssh-ed25519 AAAA\\n", behaviour: "trap 'exit 0' TERM\nwhile :; do sleep 0.05; done")
        var c = config(qemu)
        c.readyPattern = "IMDS-KEY:"
        let result = try BootRunner(log: nil).boot(c)
        #expect(result.passed)
        #expect(result.console.contains("IMDS-KEY: ssh-ed25519 AAAA"))
    }

    @Test func preflightNamesWhatIsMissing() throws {
        var c = config("/bin/true")
        c.image = dir + "/nope.img"
        #expect(throws: VMError.imageMissing(path: dir + "/nope.img")) { try BootRunner(log: nil).boot(c) }
        c = config("no-such-qemu-binary")
        #expect(throws: VMError.qemuMissing(executable: "no-such-qemu-binary")) { try BootRunner(log: nil).boot(c) }
        #expect(VMError.qemuMissing(executable: "qemu-system-x86_64").description.contains("apt-get install qemu-system-x86"))
    }
}

/// boot-test's look at its input before QEMU starts.
@Suite struct ImageCheckTests {
    @Test func anMBRWithALinuxPartitionIsABootDisk() {
        var sector = [UInt8](repeating: 0, count: 512)
        #expect(ImageCheck.problem(firstSector: sector)?.contains("no MBR partition table") == true)
        sector[510] = 0x55; sector[511] = 0xAA
        #expect(ImageCheck.problem(firstSector: sector)?.contains("no Linux partition") == true)
        sector[446 + 4] = 0x07
        #expect(ImageCheck.problem(firstSector: sector)?.contains("types found: 0x07") == true)
        sector[446 + 16 + 4] = 0x83
        #expect(ImageCheck.problem(firstSector: sector) == nil)
        #expect(ImageCheck.problem(firstSector: [1, 2, 3])?.contains("shorter than one 512-byte sector") == true)
    }
}
