@testable import Fetch
import Foundation
import Host
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// scripts/testvault/vault-server.py on 127.0.0.1 with a random port, for the
/// downloader tests. Stopped by PID in `stop()` (and in deinit, so a failing
/// test never leaves it running).
final class FetchTestServer {
    let root: String
    let port: Int
    private let server: TestServer
    private let dir: String

    let scheme: String

    /// `tls`: PEM certificate and key files; the server then speaks https.
    init(root: String, delayMs: Int = 0, tls: (cert: String, key: String)? = nil) throws {
        self.root = root
        scheme = tls == nil ? "http" : "https"
        dir = try TemporaryDirectory.make("vault-server")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        do {
            server = try TestServer.vault(root: root, directory: dir, delayMs: delayMs, tls: tls)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw FetchError.tool(name: "vault-server.py", reason: "did not start (no port file)")
        }
        port = server.port
    }

    deinit { stop() }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    var base: URL { URL(string: "\(scheme)://127.0.0.1:\(port)")! }
    func url(_ path: String) -> URL { URL(string: "\(scheme)://127.0.0.1:\(port)\(path)")! }

    /// POSTs a control command (see scripts/testvault/README.md).
    @discardableResult
    func control(_ json: String) throws -> [String: Any] {
        try request("/__control__", body: json)
    }

    func stats() throws -> [String: Any] { try request("/__stats__", body: nil) }

    func pathStats(_ path: String) throws -> (requests: Int, bytes: Int64, statuses: [String: Int]) {
        let paths = try stats()["paths"] as? [String: Any] ?? [:]
        guard let entry = paths[path] as? [String: Any] else { return (0, 0, [:]) }
        return (entry["requests"] as? Int ?? 0, Int64(entry["bytes"] as? Int ?? 0), entry["statuses"] as? [String: Int] ?? [:])
    }

    private func request(_ path: String, body: String?) throws -> [String: Any] {
        let curl = runTool(
            Command("curl", ["-sS", "--max-time", "10", "--insecure"] + (body.map { ["-X", "POST", "--data-binary", $0] } ?? []) + [url(path).absoluteString]))
        guard curl.status == 0, let object = try JSONSerialization.jsonObject(with: curl.standardOutput) as? [String: Any] else {
            throw FetchError.protocolError(url: url(path).absoluteString, reason: "control request failed")
        }
        if let error = object["error"] as? String { throw FetchError.protocolError(url: url(path).absoluteString, reason: error) }
        return object
    }
}

/// Makes a throw-away self-signed certificate for 127.0.0.1 in `dir` (openssl).
func makeLoopbackCertificate(in dir: String) throws -> (cert: String, key: String) {
    let cert = dir + "/cert.pem", key = dir + "/key.pem"
    let openssl = runTool(
        Command(
            "openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ]))
    guard openssl.status == 0 else { throw FetchError.tool(name: "openssl", reason: "req failed") }
    return (cert, key)
}

/// A scratch directory with random files, served by a `FetchTestServer`.
final class FetchFixture {
    let dir: String
    let cacheRoot: URL
    private(set) var files: [String: Data] = [:]

    init() throws {
        dir = try TemporaryDirectory.make("fetch")
        try FileManager.default.createDirectory(atPath: dir + "/mirror/Packages", withIntermediateDirectories: true)
        cacheRoot = URL(fileURLWithPath: dir + "/cache")
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    var mirror: String { dir + "/mirror" }

    /// Writes `size` pseudo-random bytes as /Packages/NAME; returns its URL path.
    @discardableResult
    func add(_ name: String, size: Int, seed: UInt64 = 1) throws -> String {
        var generator = SplitMix64(seed: seed &+ UInt64(size) &+ name.utf8.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) })
        var words = [UInt64](repeating: 0, count: (size + 7) / 8)
        for i in words.indices { words[i] = generator.next() }
        let data = words.withUnsafeBytes { Data($0.prefix(size)) }
        try data.write(to: URL(fileURLWithPath: mirror + "/Packages/" + name))
        files[name] = data
        return "/Packages/" + name
    }

    /// The setup of a one-fault test: a fixture with one file `name` of `size` bytes, served
    /// with `fault` (the fields of one vault-server.py `add_faults` entry besides its path, e.g.
    /// `"status": 500, "times": 2`) and `settings` (other control fields, e.g. `"range": false`).
    /// Returns the file's URL path too; the caller stops the server.
    static func serving(_ name: String, size: Int, fault: String, settings: String = "") throws -> (FetchFixture, FetchTestServer, String) {
        let fixture = try FetchFixture()
        let path = try fixture.add(name, size: size)
        let server = try FetchTestServer(root: fixture.mirror)
        do {
            try server.control(#"{"# + (settings.isEmpty ? "" : settings + ", ") + #""add_faults": [{"path": "\#(path)", \#(fault)}]}"#)
        } catch {
            server.stop()
            throw error
        }
        return (fixture, server, path)
    }

    func remote(_ name: String, server: FetchTestServer, kind: Checksum.Kind = .sha256) -> RemoteFile {
        let data = files[name]!
        return RemoteFile(url: server.url("/Packages/" + name), size: Int64(data.count), checksum: Checksum.of(data, kind: kind))
    }

    func cache() throws -> DownloadCache { try DownloadCache(root: cacheRoot) }

    /// Every file under the cache's blobs directory (including hidden partials).
    func cacheEntries() -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: cacheRoot.path + "/blobs")
        var out: [String] = []
        while let next = enumerator?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: cacheRoot.path + "/blobs/" + next, isDirectory: &isDir), !isDir.boolValue { out.append(next) }
        }
        return out.sorted()
    }
}

/// Test options: short backoff and timeouts so failure paths stay fast.
func quickOptions(idle: TimeInterval = 5) -> FetchOptions {
    var options = FetchOptions()
    options.backoff = 0.02
    options.maxBackoff = 0.1
    options.connectTimeout = 3
    options.idleTimeout = idle
    return options
}
