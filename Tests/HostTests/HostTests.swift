import Foundation
import Testing
@testable import Host
import TestSupport

@Suite struct CommandTests {
    @Test func quotesOnlyWhatNeedsIt() {
        #expect(shellQuote("/dev/xvdb") == "/dev/xvdb")
        #expect(shellQuote("") == "''")
        #expect(shellQuote("a b") == "'a b'")
        #expect(shellQuote("it's") == "'it'\\''s'")
        #expect(shellQuote("$HOME") == "'$HOME'")
    }

    @Test func shellLineShowsEnvironmentAndInput() {
        let cmd = Command("sfdisk", ["/dev/xvdb"], environment: ["LANG": "C"], standardInput: Data("label: dos\nstart=2048\n".utf8))
        #expect(cmd.shellLine == "printf 'label: dos\\nstart=2048\\n' | LANG=C sfdisk /dev/xvdb")
        #expect(Command("x", [], standardInput: Data([0, 1, 2])).shellLine == "x < (3 bytes of input)")
    }

    @Test func chrootIsAWrapperOnTheArgumentList() {
        let cmd = Command("rpm", ["--initdb"]).inChroot("/run/c6/root")
        #expect(cmd.executable == "chroot")
        #expect(cmd.arguments == ["/run/c6/root", "rpm", "--initdb"])
    }

    @Test func checkedThrowsWithCommandStatusAndStderrTail() {
        let runner = RecordingRunner { _ in CommandResult(status: 3, standardError: Data("one\ntwo\nthree\n".utf8)) }
        do {
            try runner.checked("mkfs.ext4", ["/dev/loop0p1"])
            Issue.record("no error")
        } catch let error as CommandFailed {
            #expect(error.description == "command 'mkfs.ext4 /dev/loop0p1' exited with status 3:\n    one\n    two\n    three")
        } catch {
            Issue.record("wrong error \(error)")
        }
        #expect(runner.lines == ["mkfs.ext4 /dev/loop0p1"])
    }

    @Test func dryRunPrinterRecordsInOrder() {
        var printed: [String] = []
        let printer = DryRunPrinter { printed.append($0) }
        _ = printer.run(Command("a", ["1"]))
        printer.note("later")
        _ = printer.run(Command("b", ["x y"]))
        #expect(printed == ["a 1", "# later", "b 'x y'"])
        #expect(printer.isDryRun)
    }
}

@Suite struct ProcessRunnerTests {
    @Test func runsAndCapturesBothStreams() throws {
        let runner = ProcessRunner(log: nil)
        let result = runner.run(Command("sh", ["-c", "echo out; echo err >&2; exit 4"]))
        #expect(result.status == 4)
        #expect(result.stdoutText == "out\n")
        #expect(result.stderrText == "err\n")
        #expect(runner.run(Command("cat", [], standardInput: Data("fed".utf8))).stdoutText == "fed")
    }

    @Test func missingExecutableIs127() {
        let result = ProcessRunner(log: nil).run(Command("centos6-ami-no-such-tool"))
        #expect(result.status == 127)
        #expect(CommandFailed(command: Command("centos6-ami-no-such-tool"), result: result).description.contains("could not be started"))
    }

    @Test func logRecordsCommandStatusAndOutput() throws {
        let path = NSTemporaryDirectory() + "c6-log-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try Log(path: path, progress: { _ in })
        _ = ProcessRunner(log: log).run(Command("sh", ["-c", "echo hello; exit 2"]))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("$ sh -c 'echo hello; exit 2'"))
        #expect(text.contains("exit 2"))
        #expect(text.contains("hello"))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}

@Suite struct CleanupStackTests {
    @Test func unwindsInReverseAndKeepsGoingAfterAFailure() {
        var order: [String] = []
        let stack = CleanupStack(log: nil)
        stack.push("a") { order.append("a") }
        stack.push("b") { throw HostError.cannotWrite(path: "x", reason: "y") }
        stack.push("c") { order.append("c") }
        let failures = stack.unwind()
        #expect(order == ["c", "a"])
        #expect(failures.count == 1)
        #expect(stack.unwind().isEmpty, "unwinding twice is harmless")
    }

    @Test func markAndFailureOnlyEntries() {
        var order: [String] = []
        let stack = CleanupStack(log: nil)
        stack.push("remove image", onlyOnFailure: true) { order.append("rm") }
        stack.push("detach") { order.append("detach") }
        let mark = stack.count
        stack.push("umount") { order.append("umount") }
        stack.unwind(downTo: mark)
        #expect(order == ["umount"])
        stack.unwind(failed: false)
        #expect(order == ["umount", "detach"], "the image stays after a success")
    }

    @Test func abandonReturnsManualCommandsInUnwindOrder() {
        let stack = CleanupStack(log: nil)
        stack.push("detach", manual: ["losetup -d /dev/loop3"]) {}
        stack.push("umount", manual: ["umount /run/x/root"]) {}
        #expect(stack.abandon() == ["umount /run/x/root", "losetup -d /dev/loop3"])
        #expect(stack.isEmpty)
    }
}

@Suite struct MountsTests {
    @Test func parsesMountinfoWithEscapes() {
        let text = """
            22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
            80 22 7:0 / /run/centos6-ami/6.9-ab/root rw,noatime - ext4 /dev/loop0p1 rw
            81 80 0:50 / /run/with\\040space rw - tmpfs centos6-ami-yum-cache rw,size=1024k
            """
        let mounts = Mounts.parse(text)
        #expect(mounts.count == 3)
        #expect(mounts[1] == MountEntry(majorMinor: "7:0", root: "/", mountPoint: "/run/centos6-ami/6.9-ab/root", fsType: "ext4", source: "/dev/loop0p1"))
        #expect(mounts[2].mountPoint == "/run/with space")
        #expect(mounts[2].fsType == "tmpfs")
    }
}

@Suite struct FileLockTests {
    @Test func secondHolderFailsFastNamingTheLock() throws {
        let path = try TemporaryDirectory.make("lock") + "/t.lock"
        let first = try FileLock.acquire(path, holderDescription: "first")
        do {
            _ = try FileLock.acquire(path, holderDescription: "second")
            Issue.record("second lock taken")
        } catch let error as HostError {
            #expect("\(error)".contains(path))
            #expect("\(error)".contains("first"))
        }
        first.release()
        let again = try FileLock.acquire(path, holderDescription: "third")
        again.release()
    }
}

/// Careless and hostile input: executables, locks and secrets.
@Suite struct HostileInputHostTests {
    @Test func executablesResolveOnlyToAbsolutePathDirectories() throws {
        let dir = try TemporaryDirectory.make("path")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tool = dir + "/c6-fake-tool"
        try "#!/bin/sh\ntouch \(dir)/ran\n".write(toFile: tool, atomically: true, encoding: .utf8)
        chmod(tool, 0o755)
        // Relative, empty and `.` entries are the current directory: never searched.
        #expect(ProcessRunner.locate("c6-fake-tool", path: ".::relative/dir") == nil)
        #expect(ProcessRunner.locate("c6-fake-tool", path: "/nonexistent:\(dir)") == tool)
        #expect(ProcessRunner.locate("sh", path: "/usr/bin:/bin") != nil)
        // Not found: refused with 127, not handed to Foundation as a relative path.
        let result = ProcessRunner(log: nil, environment: ["PATH": "."]).run(Command("c6-fake-tool"))
        #expect(result.status == 127)
        #expect(result.stderrText.contains("cannot start 'c6-fake-tool': not found"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"))
        // A stripped PATH still finds the standard tools (the ones the preflight checked).
        #expect(ProcessRunner(log: nil, environment: ["PATH": ""]).run(Command("sha256sum", ["--version"])).status == 0)
    }

    @Test func passwordsInURLsAreRedacted() {
        #expect(
            redactCredentials("mirror http://user:s3cret@127.0.0.1:8080/x and https://a:b@h/") == "mirror http://user:***@127.0.0.1:8080/x and https://a:***@h/"
        )
        #expect(redactCredentials("cannot download 'http://u:p%40ss@host/repomd.xml'") == "cannot download 'http://u:***@host/repomd.xml'")
        #expect(redactCredentials("no credentials: http://host/a@b and me@example.com") == "no credentials: http://host/a@b and me@example.com")
    }

    @Test func targetLocksAreRemovedOnReleaseAndRetakenSafely() throws {
        let base = try TemporaryDirectory.make("locks")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let path = base + "/a.d/b.lock"
        let first = try FileLock.acquire(path, holderDescription: "centos6-ami install 6.9 /x/c.img", removeOnRelease: true, base: base)
        #expect(throws: HostError.self) { _ = try FileLock.acquire(path, holderDescription: "second", removeOnRelease: true, base: base) }
        first.release()
        #expect(!FileManager.default.fileExists(atPath: path), "the lock file is removed")
        #expect(!FileManager.default.fileExists(atPath: base + "/a.d"), "and the directory made for it")
        #expect(FileManager.default.fileExists(atPath: base))
        let again = try FileLock.acquire(path, holderDescription: "third", removeOnRelease: true, base: base)
        again.release()
        #expect(try FileManager.default.contentsOfDirectory(atPath: base).isEmpty)
    }
}

@Suite struct LockWaitTests {
    @Test func procLocksHoldersForOneFile() {
        let text = """
            1: FLOCK  ADVISORY  WRITE 4242 fd:01:1315 0 EOF
            1: -> FLOCK  ADVISORY  WRITE 4343 fd:01:1315 0 EOF
            2: POSIX  ADVISORY  WRITE 77 08:11:1315 0 EOF
            3: FLOCK  ADVISORY  WRITE 88 fd:01:99 0 EOF
            4: OFDLCK ADVISORY  READ  4242 fd:01:1315 0 EOF
            """
        #expect(FileLock.lockHolders(procLocks: text, major: 0xfd, minor: 1, inode: 1315) == [4242])
        #expect(FileLock.lockHolders(procLocks: text, major: 8, minor: 0x11, inode: 1315) == [77])
        #expect(FileLock.lockHolders(procLocks: text, major: 8, minor: 1, inode: 5).isEmpty)
    }

    @Test func waitLimitFromTheEnvironment() throws {
        #expect(try FileLock.waitLimit(environment: [:]).get() == FileLock.defaultWait)
        #expect(try FileLock.waitLimit(environment: ["CENTOS6_AMI_LOCK_WAIT": "90"]).get() == 90)
        #expect(try FileLock.waitLimit(environment: ["CENTOS6_AMI_LOCK_WAIT": "0.5"]).get() == 0.5)
        for bad in ["-1", "soon", "inf"] {
            guard case let .failure(error) = FileLock.waitLimit(environment: ["CENTOS6_AMI_LOCK_WAIT": bad]) else { Issue.record("\(bad) accepted"); continue }
            #expect(error.description.contains("CENTOS6_AMI_LOCK_WAIT='\(bad)'"))
        }
    }

    /// Our own lock, held in this process through another descriptor: the
    /// bounded wait gives up in time and names this process.
    @Test func boundedWaitNamesTheHolder() throws {
        let path = NSTemporaryDirectory() + "lockwait-\(UUID().uuidString.prefix(8))"
        defer { unlink(path) }
        let held = try FileLock.acquire(path, holderDescription: "test")
        defer { held.release() }
        var said: [String] = []
        let start = Date()
        #expect(throws: HostError.self) { _ = try FileLock.wait(path, timeout: 0.3, notice: { said.append($0) }) }
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(said.count == 1 && said[0].contains("held by pid \(getpid())"), "\(said)")
    }
}
