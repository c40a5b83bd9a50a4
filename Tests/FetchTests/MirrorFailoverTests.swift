@testable import Fetch
import Foundation
import Host
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// A file one mirror cannot serve comes from the next (RemoteFile.alternatives),
/// and the note names the mirror that served it and why the first did not.
@Suite(.serialized) struct MirrorFailoverTests {
    /// Two servers over one tree, the first 404ing one file: that file comes
    /// from the second, the others from the first; one note per failover.
    @Test func aFileTheFirstMirrorLacksComesFromTheNext() throws {
        let fixture = try FetchFixture()
        for name in ["a.rpm", "b.rpm", "c.rpm"] { try fixture.add(name, size: 20_000) }
        let primary = try FetchTestServer(root: fixture.mirror)
        defer { primary.stop() }
        let alternative = try FetchTestServer(root: fixture.mirror)
        defer { alternative.stop() }
        try primary.control(#"{"add_faults": [{"path": "/Packages/b*.rpm", "status": 404}]}"#)
        let notes = Locked([String]())
        var options = quickOptions()
        options.note = { text in notes.withLock { $0.append(text) } }
        let fetcher = Fetcher(cache: try fixture.cache(), options: options)
        let files = ["a.rpm", "b.rpm", "c.rpm"].map { name in
            var file = fixture.remote(name, server: primary)
            file.alternatives = [alternative.url("/Packages/" + name)]
            return file
        }
        let out = try fetcher.fetch(files)
        for (name, path) in zip(["a.rpm", "b.rpm", "c.rpm"], out) { #expect(try Data(contentsOf: path) == fixture.files[name]!) }
        #expect(try alternative.pathStats("/Packages/b.rpm").requests == 1)
        #expect(try alternative.pathStats("/Packages/a.rpm").requests == 0)
        #expect(fetcher.stats.failovers == 1)
        let said = notes.withLock { $0 }
        #expect(said.count == 1)
        #expect(
            said.first?.hasPrefix(
                "mirror failover: 'b.rpm' from the alternative \(alternative.url("/Packages/b.rpm").absoluteString) (\(primary.url("/Packages/b.rpm").absoluteString) failed: "
            ) == true, "\(said)")
        #expect(said.first?.contains("404") == true)
    }

    /// A closed port as the first mirror: after its retries it goes last, so
    /// the other files go straight to the alternative (one note each, saying so).
    @Test func aDeadMirrorIsTriedOnceThenLast() throws {
        let fixture = try FetchFixture()
        let names = (0..<6).map { "p\($0).rpm" }
        for name in names { try fixture.add(name, size: 10_000) }
        let alternative = try FetchTestServer(root: fixture.mirror)
        defer { alternative.stop() }
        let dead = try freePort()
        let notes = Locked([String]())
        var options = quickOptions()
        options.note = { text in notes.withLock { $0.append(text) } }
        let fetcher = Fetcher(cache: try fixture.cache(), maxConnections: 1, retries: 2, options: options)
        let files = names.map { name in
            var file = fixture.remote(name, server: alternative)
            file.url = URL(string: "http://127.0.0.1:\(dead)/Packages/\(name)")!
            file.alternatives = [alternative.url("/Packages/" + name)]
            return file
        }
        let start = Date()
        let out = try fetcher.fetch(files)
        #expect(Date().timeIntervalSince(start) < 5)
        for (name, path) in zip(names, out) { #expect(try Data(contentsOf: path) == fixture.files[name]!) }
        #expect(fetcher.stats.failovers == names.count)
        #expect(fetcher.stats.retries == 2, "only the first file pays the dead mirror's retries")
        let said = notes.withLock { $0 }
        #expect(said.count == names.count)
        #expect(said.filter { $0.contains("failed: cannot download") }.count == 1, "\(said)")
        #expect(said.filter { $0.contains("skipped: its mirror failed earlier") }.count == names.count - 1, "\(said)")
    }

    /// Every mirror failing: one error naming each mirror's failure.
    @Test func everyMirrorFailingNamesEach() throws {
        let fixture = try FetchFixture()
        try fixture.add("x.rpm", size: 1_000)
        let server = try FetchTestServer(root: fixture.mirror)
        defer { server.stop() }
        var file = fixture.remote("x.rpm", server: server)
        file.url = server.url("/missing/x.rpm")
        file.alternatives = [server.url("/gone/x.rpm")]
        do {
            _ = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([file])
            Issue.record("no mirror has it")
        } catch let FetchError.noMirror(name, failures) {
            #expect(name == "x.rpm")
            #expect(failures.count == 2)
            #expect(
                failures[0].hasPrefix(server.url("/missing/x.rpm").absoluteString) && failures[1].hasPrefix(server.url("/gone/x.rpm").absoluteString),
                "\(failures)")
        }
        // Without alternatives the error is the mirror's own, as before.
        file.alternatives = []
        #expect(throws: FetchError.notFound(url: file.url.absoluteString)) {
            _ = try Fetcher(cache: try fixture.cache(), options: quickOptions()).fetch([file])
        }
    }

    @Test func whatCountsAsAMirrorFailure() {
        #expect(Fetcher.isMirrorFailure(.notFound(url: "u")))
        #expect(Fetcher.isMirrorFailure(.httpStatus(url: "u", status: 503, attempts: 5)))
        #expect(Fetcher.isMirrorFailure(.connection(url: "u", reason: "refused", attempts: 5)))
        #expect(Fetcher.isMirrorFailure(.checksumMismatch(url: "u", file: "f", expected: "a", actual: "b")))
        #expect(!Fetcher.isMirrorFailure(.io(path: "/cache", reason: "full")))
        #expect(Fetcher.isMirrorDown(.connection(url: "u", reason: "refused", attempts: 5)))
        #expect(!Fetcher.isMirrorDown(.notFound(url: "u")))
        #expect(Fetcher.origin(of: URL(string: "http://h:81/a/b")!) == "http://h:81")
    }
}
