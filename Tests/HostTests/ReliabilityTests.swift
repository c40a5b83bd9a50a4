import Foundation
import Testing
@testable import Host
#if canImport(Glibc)
    import Glibc
#endif

@Suite struct OutputAndLogFailureTests {
    /// A log on a device that refuses every write (/dev/full says ENOSPC): no trap,
    /// one warning through the progress channel, and the run's lines still reach it.
    @Test func aFullLogWarnsOnceAndCarriesOn() throws {
        let progress = RegisterBox<[String]>([])
        let log = try Log(path: "/dev/full", progress: { line in progress.withLock { $0.append(line) } })
        log.write("first")
        log.say("step one")
        log.step("step two")
        let lines = progress.withLock { $0 }
        let warnings = lines.filter { $0.contains("cannot write the log '/dev/full'") }
        #expect(warnings.count == 1, "\(lines)")
        #expect(warnings.first?.contains("No space left on device") == true)
        #expect(lines.contains("step one") && lines.contains { $0.hasSuffix("step two") })
    }

    @Test func writingToAFullDeviceReturnsTheErrnoInsteadOfTrapping() throws {
        let fd = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(Output.write(fd, Data("x".utf8)) == ENOSPC)
        let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(null) }
        #expect(Output.write(null, Data(repeating: 65, count: 1 << 20)) == 0)
    }
}

@Suite struct RunJournalTests {
    func scratch() throws -> String {
        let dir = try TemporaryDirectory.make("journal-test")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func entriesRoundTripWithAbsolutePathsAndTheRunsIdentity() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try RunJournal(directory: dir + "/journal", command: "centos6-ami install 6.9 x.img")
        let entries: [RunJournal.Entry] = [
            .lock("/run/lock/centos6-ami/x.lock"), .image("rel/x.img"), .loopOf("/a/x.img"), .loop(device: "/dev/loop7", image: "/a/x.img"),
            .node("/dev/loop7p1"), .workDir("/run/c/6.9-abc"), .root("/run/c/6.9-abc/root"), .mount("/run/c/6.9-abc/root"),
            .child(pid: 42, start: 4242), .target("/dev/xvdf"), .finished("/a/x.img"),
        ]
        for e in entries { journal.record(e) }
        let records = RunJournal.all(in: dir + "/journal")
        try #require(records.count == 1)
        let r = records[0]
        #expect(r.pid == getpid())
        #expect(r.start == RunJournal.startTime(getpid()))
        #expect(r.command == "centos6-ami install 6.9 x.img")
        let cwd = FileManager.default.currentDirectoryPath
        #expect(r.entries[1] == .image((cwd as NSString).appendingPathComponent("rel/x.img")), "relative paths are made absolute")
        #expect(Array(r.entries.dropFirst(2)) == Array(entries.dropFirst(2)))
        #expect(!r.isDead(), "this process is alive")
        #expect(RunJournal.dead(in: dir + "/journal").isEmpty)
        #expect(r.isDead(startTime: { _ in 1 }), "same pid, other start time: another process, so the run is gone")
        #expect(r.targets.contains("/dev/loop7") && r.targets.contains("/dev/xvdf"))
        journal.remove()
        #expect(RunJournal.all(in: dir + "/journal").isEmpty)
    }

    @Test func aDeadRunIsFoundAndDamagedJournalsAreIgnored() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // pid 2^22+1 is above pid_max's ceiling: never a live process.
        try "run\t4194305\t123\tcentos6-ami install 6.9 /dev/xvdf\ntarget\t/dev/xvdf\nbogus line\nchild\tnope\t1\n".write(
            toFile: dir + "/4194305.journal", atomically: true, encoding: .utf8)
        try "garbage".write(toFile: dir + "/1.journal", atomically: true, encoding: .utf8)
        let dead = RunJournal.dead(in: dir)
        try #require(dead.count == 1)
        #expect(dead[0].entries == [.target("/dev/xvdf")], "unknown or damaged lines are skipped")
        #expect(RunJournal.startTime(4194305) == nil)
    }

    @Test func childrenAreReportedToTheObserver() {
        let seen = RegisterBox<[pid_t]>([])
        Interruption.shared.childObserver = { pid in seen.withLock { $0.append(pid) } }
        defer { Interruption.shared.childObserver = nil }
        Interruption.shared.register(child: 999_999)
        Interruption.shared.unregister(child: 999_999)
        #expect(seen.withLock { $0 } == [999_999])
    }
}

// Unchecked: `value` is only touched under `lock`.
final class RegisterBox<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}
