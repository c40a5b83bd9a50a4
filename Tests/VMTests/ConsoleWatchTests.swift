import Foundation
import Testing
@testable import VM

/// Feeds text (a mutating call cannot sit inside #expect).
private func feed(_ m: inout ConsoleMatcher, _ text: String) -> Bool { m.feed(Array(text.utf8)) }

@Suite struct ConsoleMatcherTests {
    @Test func findsPatternInOneChunk() {
        var m = ConsoleMatcher(pattern: "login:")
        #expect(feed(&m, "CentOS release 6.9\nKernel 2.6.32 on an x86_64\n\nlocalhost login: "))
        #expect(m.matchOffset == 57) // 19 + 27 + 1 + "localhost ".count
    }

    @Test func findsPatternSplitAcrossChunks() {
        var m = ConsoleMatcher(pattern: "login:")
        #expect(!feed(&m, "booting...\nlocalhost lo"))
        #expect(!feed(&m, "g"))
        #expect(!feed(&m, "in"))
        #expect(feed(&m, ": "))
        #expect(m.matchOffset == 21)
        #expect(m.text == "booting...\nlocalhost login: ")
    }

    @Test func nearMissesDoNotMatch() {
        var m = ConsoleMatcher(pattern: "login:")
        #expect(!feed(&m, "Last login at\nlogi\nlogin\n"))
        #expect(!feed(&m, " :"))
        #expect(!m.matched)
    }

    @Test func keepsEverythingAfterTheMatch() {
        var m = ConsoleMatcher(pattern: "READY")
        m.feed(Array("a READY b".utf8))
        m.feed(Array(" c".utf8))
        #expect(m.matched)
        #expect(m.text == "a READY b c")
        #expect(m.matchOffset == 2)
    }

    @Test func byteAtATime() {
        var m = ConsoleMatcher(pattern: "login:")
        let text = Array("\u{1b}[2J\u{1b}[0mSeaBIOS\r\nhost login: ".utf8)
        var seenAt: Int?
        for (i, b) in text.enumerated() where m.feed([b]) && seenAt == nil { seenAt = i }
        #expect(seenAt == text.count - 2)
    }
}

@Suite struct WatchConsoleTests {
    func tempFile() -> String {
        NSTemporaryDirectory() + "vmtests-\(UUID().uuidString).log"
    }

    @Test func seesPatternWrittenLaterByAnotherWriter() throws {
        let path = tempFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let writer = Thread {
            let h = FileHandle(forWritingAtPath: path)!
            for part in ["SeaBIOS\r\n", "Booting from Hard Disk...\r\n", "Linux version 6.1\r\n", "localhost lo", "gin: "] {
                Thread.sleep(forTimeInterval: 0.15)
                h.seekToEndOfFile()
                h.write(Data(part.utf8))
            }
            try? h.close()
        }
        writer.start()
        var m = ConsoleMatcher(pattern: "login:")
        let outcome = watchConsole(file: GrowingFile(path: path), matcher: &m, timeout: 10, pollInterval: 0.02)
        guard case let .ready(seconds) = outcome else { Issue.record("outcome \(outcome)"); return }
        #expect(seconds >= 0.6 && seconds < 5)
        #expect(m.text.hasPrefix("SeaBIOS\r\nBooting from Hard Disk"))
    }

    @Test func timesOutWithoutPattern() {
        let path = tempFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try? Data("kernel panic - not syncing\n".utf8).write(to: URL(fileURLWithPath: path))
        var m = ConsoleMatcher(pattern: "login:")
        let start = Date()
        let outcome = watchConsole(file: GrowingFile(path: path), matcher: &m, timeout: 0.5, pollInterval: 0.05)
        #expect(outcome == .timedOut)
        #expect(Date().timeIntervalSince(start) >= 0.5)
        #expect(m.text == "kernel panic - not syncing\n")
    }

    @Test func missingFileReadsAsEmptyUntilTimeout() {
        var m = ConsoleMatcher(pattern: "login:")
        let outcome = watchConsole(file: GrowingFile(path: tempFile()), matcher: &m, timeout: 0.2, pollInterval: 0.05)
        #expect(outcome == .timedOut)
        #expect(m.text.isEmpty)
    }

    @Test func producerExitEndsTheWaitButItsLastWordsCount() throws {
        let path = tempFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("rebooting\n".utf8).write(to: URL(fileURLWithPath: path))
        var m = ConsoleMatcher(pattern: "login:")
        #expect(watchConsole(file: GrowingFile(path: path), matcher: &m, timeout: 10, stillRunning: { false }) == .producerExited)
        #expect(m.text == "rebooting\n")

        try Data("host login: ".utf8).write(to: URL(fileURLWithPath: path))
        var m2 = ConsoleMatcher(pattern: "login:")
        guard case .ready = watchConsole(file: GrowingFile(path: path), matcher: &m2, timeout: 10, stillRunning: { false }) else {
            Issue.record("a pattern written just before the producer exited must count"); return
        }
    }

    @Test func interruptionEndsTheWait() {
        var m = ConsoleMatcher(pattern: "login:")
        let start = Date()
        let outcome = watchConsole(
            file: GrowingFile(path: tempFile()), matcher: &m, timeout: 30, pollInterval: 0.02,
            interrupted: { Date().timeIntervalSince(start) > 0.2 })
        #expect(outcome == .interrupted)
        #expect(Date().timeIntervalSince(start) < 5)
    }

    @Test func growingFileReadsOnlyNewBytes() throws {
        let path = tempFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = GrowingFile(path: path)
        #expect(f.readNew().isEmpty)
        try Data("abc".utf8).write(to: URL(fileURLWithPath: path))
        #expect(f.readNew() == Data("abc".utf8))
        #expect(f.readNew().isEmpty)
        let h = FileHandle(forWritingAtPath: path)!
        h.seekToEndOfFile(); h.write(Data("def".utf8)); try h.close()
        #expect(f.readNew() == Data("def".utf8))
    }
}
