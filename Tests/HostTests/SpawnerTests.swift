import Foundation
import Testing
@testable import Host
#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct SpawnerTests {
    let env = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"]

    @Test func resolvesOnlyToAbsolutePathsOnPath() throws {
        #expect(Spawner.resolve("sh", path: "/nonexistent:/bin") == "/bin/sh")
        #expect(Spawner.resolve("/bin/sh", path: "") == "/bin/sh")
        #expect(Spawner.resolve("no-such-tool-centos6", path: "/usr/bin:/bin") == nil)
        // A tool in the current directory is never picked, not through an empty or relative PATH entry nor a relative name.
        let dir = try TemporaryDirectory.make("spawner-cwd")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fake = dir + "/fake-tool-centos6"
        try "#!/bin/sh\necho ran\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let saved = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(dir)
        defer { FileManager.default.changeCurrentDirectoryPath(saved) }
        #expect(Spawner.resolve("fake-tool-centos6", path: ":.:bin:/usr/bin") == nil)
        #expect(Spawner.resolve("./fake-tool-centos6", path: "/usr/bin") == nil)
        #expect(Spawner.resolve("fake-tool-centos6", path: dir) == fake)
    }

    /// One environment policy for every child: LC_ALL=C and the standard directories after the caller's PATH.
    @Test func everyChildGetsTheToolEnvironment() {
        let environment = Spawner.toolEnvironment(["PATH": "/opt/tools/bin:/usr/bin", "LANG": "de_DE.UTF-8", "LC_ALL": "de_DE.UTF-8"])
        #expect(environment["PATH"] == "/opt/tools/bin:/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin")
        #expect(environment["LC_ALL"] == "C")
        #expect(environment["LANG"] == "de_DE.UTF-8")
        let seen = ProcessRunner(log: nil, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "fr_FR.UTF-8"]).run(Command("env"))
        #expect(seen.stdoutText.split(separator: "\n").contains("LC_ALL=C"))
        #expect(seen.stdoutText.contains("PATH=/usr/bin:/bin:/usr/local/sbin:"))
    }

    @Test func aMissingToolIsNamed() {
        let result = ProcessRunner(log: nil, environment: env).run(Command("no-such-tool-centos6"))
        #expect(result.status == 127)
        #expect(result.stderrText.contains("cannot start 'no-such-tool-centos6': not found in PATH's absolute directories"))
    }

    @Test func statusesAndSignals() throws {
        #expect(ProcessRunner(log: nil, environment: env).run(Command("sh", ["-c", "exit 3"])).status == 3)
        #expect(ProcessRunner(log: nil, environment: env).run(Command("sh", ["-c", "kill -TERM $$"])).status == 128 + SIGTERM)
        let sleeper = try ProcessRunner(log: nil, environment: env).start(Command("sleep", ["30"]))
        #expect(sleeper.wait(timeout: 0.05) == nil)
        #expect(sleeper.isRunning)
        sleeper.signal(SIGTERM)
        #expect(sleeper.wait(timeout: 5) == 128 + SIGTERM)
    }

    @Test func inputAndBothOutputsAreStreamedWithoutDeadlock() {
        // 3 MB in and out of cat and 1 MB on stderr: larger than any pipe buffer.
        let input = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let result = ProcessRunner(log: nil, environment: env).run(Command("sh", ["-c", "head -c 1048576 /dev/zero >&2; cat"], standardInput: input))
        #expect(result.status == 0)
        #expect(result.standardOutput == input)
        #expect(result.standardError.count == 1 << 20)
        // A child that reads nothing must not make us hang on its stdin.
        let early = ProcessRunner(log: nil, environment: env).run(Command("true", standardInput: input))
        #expect(early.status == 0)
    }

    @Test func childHasItsOwnGroupNoBlockedSignalsAndOnlyStandardDescriptors() throws {
        // Block TERM on this thread as Dispatch worker threads do: the child must not inherit it.
        var term = sigset_t(), saved = sigset_t()
        sigemptyset(&term); sigaddset(&term, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &term, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        let leaked = open("/dev/null", O_RDONLY) // no O_CLOEXEC: must still stay out of the child
        defer { close(leaked) }
        // Each tool reads its own /proc entry (a shell would show its own masks while it forks).
        let stat = ProcessRunner(log: nil, environment: env).run(Command("cat", ["/proc/self/stat"])).stdoutText
        let fields = stat.split(separator: ")").last!.split(separator: " ")
        #expect(stat.split(separator: " ")[0] == fields[2], "the child leads its own process group: \(stat)")
        let status = ProcessRunner(log: nil, environment: env).run(Command("grep", ["-E", "^Sig(Blk|Ign)", "/proc/self/status"]))
        let lines = status.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.contains("SigBlk:\t0000000000000000"), "\(lines)")
        let ignored = UInt64(lines.first { $0.hasPrefix("SigIgn:") }!.split(separator: "\t")[1], radix: 16)!
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { #expect(ignored & (1 << UInt64(sig - 1)) == 0) }
        let fds = ProcessRunner(log: nil, environment: env).run(Command("ls", ["/proc/self/fd"])).stdoutText
            .split(separator: "\n").compactMap { Int($0) }
        // ls's own directory descriptor is 3; none of ours (\(leaked) at least) may follow.
        #expect(fds.filter { $0 > 3 }.isEmpty && fds.count <= 4, "descriptors leaked into the child: \(fds)")
    }

    @Test func aPidIsRegisteredWhileItRunsAndGoneOnceReaped() throws {
        let runner = ProcessRunner(log: nil, environment: env)
        let sleeper = try runner.start(Command("sleep", ["30"]))
        #expect(Interruption.shared.registeredChildren.contains(sleeper.pid))
        sleeper.signal(SIGKILL)
        #expect(sleeper.wait() == 128 + SIGKILL)
        #expect(!Interruption.shared.registeredChildren.contains(sleeper.pid))
        let unregistered = try runner.start(Command("true"), registration: .callerHandles)
        #expect(!Interruption.shared.registeredChildren.contains(unregistered.pid))
        #expect(unregistered.wait() == 0)
    }

    @Test func waitReturnsWhenTheChildExitsNotOnATick() {
        // Foundation's waitUntilExit() cost ~50 ms per command here; the floor must be a few ms.
        let start = Date()
        for _ in 0..<50 { _ = ProcessRunner(log: nil, environment: env).run(Command("true")) }
        let perCommand = Date().timeIntervalSince(start) / 50
        #expect(perCommand < 0.015, "per command: \(perCommand * 1000) ms")
    }

    @Test func aStartedCommandIsFedAndReadByTheRunnerAndLogged() throws {
        let logPath = NSTemporaryDirectory() + "start-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let log = try Log(path: logPath)
        let runner = ProcessRunner(log: log, environment: env)
        // 3 MB through cat while its stderr is split into lines (CR ends one too).
        let input = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let lines = Locked<[String]>([])
        let cat = try runner.start(
            Command("sh", ["-c", "printf 'one\\rtwo\\n\\nthree' >&2; cat"], standardInput: input),
            output: .collect, error: .lines { line in lines.withLock { $0.append(line) } })
        let result = cat.finish()
        #expect(result.status == 0)
        #expect(result.standardOutput == input)
        #expect(lines.value == ["one", "two", "three"])
        #expect(cat.finish().status == 0, "finish twice is harmless")
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        #expect(text.contains("$ printf") == false && text.contains("< (3145728 bytes of input)") && text.contains("exit 0"), "\(text)")
    }

    @Test func aStreamedOutputIsReadByTheCallerAndAFailedConsumerStopsTheChild() throws {
        let runner = ProcessRunner(log: nil, environment: env)
        var head = Data()
        let outcome = try runner.stream(Command("sh", ["-c", "echo oops >&2; head -c 1000000 /dev/zero"])) { fd in
            var buffer = [UInt8](repeating: 0, count: 10)
            head.append(contentsOf: buffer[0..<read(fd, &buffer, 10)])
        }
        #expect(outcome.status == 0 && head.count == 10 && outcome.stderrText == "oops\n")
        struct Enough: Error {}
        #expect(throws: Enough.self) { try runner.stream(Command("sh", ["-c", "yes"])) { _ in throw Enough() } }
        let sleeper = try runner.start(Command("sh", ["-c", "trap '' TERM; sleep 30"]))
        usleep(300_000) // the trap in place
        #expect(sleeper.terminate(grace: 0.2) == 128 + SIGKILL, "TERM ignored: KILL after the grace period")
    }
}
