import Foundation
import Host
import TestSupport
import Testing
@testable import VM
#if canImport(Glibc)
    import Glibc
#endif

private func put(ttl: String?) -> HTTPRequest {
    HTTPRequest(method: "PUT", path: "/latest/api/token", headers: ttl.map { ["x-aws-ec2-metadata-token-ttl-seconds": $0] } ?? [:])
}
private func get(_ path: String, token: String?) -> HTTPRequest {
    HTTPRequest(method: "GET", path: path, headers: token.map { ["x-aws-ec2-metadata-token": $0] } ?? [:])
}
private let keyPath = "/latest/meta-data/public-keys/0/openssh-key"
private let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBootTestKey boot-test\n"

@Suite struct IMDSServiceTests {
    @Test func tokenThenKey() {
        let s = IMDSService(settings: IMDSSettings(key: key))
        let t = s.respond(to: put(ttl: "21600"))
        #expect(t.status == 200)
        #expect(t.body.count >= 40)
        #expect(t.headers.first { $0.0 == IMDSService.ttlHeader }?.1 == "21600")
        #expect(s.respond(to: get(keyPath, token: t.body)) == HTTPResponse(status: 200, body: key))
        #expect(s.respond(to: get("/latest/meta-data/instance-id", token: t.body)).body == "i-0123456789abcdef0")
        #expect(s.requests.map(\.status) == [200, 200, 200])
        #expect(s.requests.filter { $0.method == "GET" }.allSatisfy { $0.tokenSent && $0.tokenValid })
    }

    @Test func ttlBounds() {
        let s = IMDSService(settings: IMDSSettings(key: key))
        for bad in [nil, "0", "21601", "-5", "abc", "", "1.5"] { #expect(s.respond(to: put(ttl: bad)).status == 400, "ttl \(bad ?? "missing")") }
        for good in ["1", "21600", "300"] { #expect(s.respond(to: put(ttl: good)).status == 200) }
    }

    @Test func methodsOnTheTokenPath() {
        let s = IMDSService(settings: IMDSSettings(key: key))
        #expect(s.respond(to: get("/latest/api/token", token: nil)).status == 405)
        var forwarded = put(ttl: "60")
        forwarded.headers["x-forwarded-for"] = "10.0.0.1"
        #expect(s.respond(to: forwarded).status == 403)
        let t = s.respond(to: put(ttl: "60")).body
        #expect(s.respond(to: HTTPRequest(method: "POST", path: keyPath, headers: ["x-aws-ec2-metadata-token": t])).status == 405)
    }

    @Test func missingUnknownOrExpiredTokenIs401() {
        var clock = Date(timeIntervalSince1970: 1_000_000)
        let s = IMDSService(settings: IMDSSettings(key: key), now: { clock })
        #expect(s.respond(to: get(keyPath, token: nil)).status == 401)
        #expect(s.respond(to: get(keyPath, token: "forged")).status == 401)
        let t = s.respond(to: put(ttl: "5")).body
        clock += 4.9
        #expect(s.respond(to: get(keyPath, token: t)).status == 200)
        clock += 0.2
        #expect(s.respond(to: get(keyPath, token: t)).status == 401)
        #expect(s.requests.map(\.tokenSent) == [false, true, false, true, true]) // the PUT carries none
        #expect(s.requests.map(\.tokenValid) == [false, false, false, true, false])
    }

    @Test func noKeyIs404() {
        let s = IMDSService(settings: IMDSSettings(key: nil))
        let t = s.respond(to: put(ttl: "60")).body
        #expect(s.respond(to: get(keyPath, token: t)).status == 404)
        #expect(!s.respond(to: get("/latest/meta-data/", token: t)).body.contains("public-keys"))
    }

    @Test func faultsFailFirstMaxTTLExpireTokens() {
        var clock = Date(timeIntervalSince1970: 0)
        var settings = IMDSSettings(key: key)
        settings.failFirst = 2
        settings.maxTTL = 1
        settings.expireTokens = 1
        let s = IMDSService(settings: settings, now: { clock })
        #expect(s.respond(to: put(ttl: "60")).status == 503)
        #expect(s.respond(to: put(ttl: "60")).status == 503)
        let expired = s.respond(to: put(ttl: "60")).body
        #expect(s.respond(to: get(keyPath, token: expired)).status == 401)
        let capped = s.respond(to: put(ttl: "60")).body
        #expect(s.respond(to: get(keyPath, token: capped)).status == 200)
        clock += 1.5
        #expect(s.respond(to: get(keyPath, token: capped)).status == 401)
        s.update { $0.maxTTL = nil }
        let fine = s.respond(to: put(ttl: "60")).body
        clock += 30
        #expect(s.respond(to: get(keyPath, token: fine)).status == 200)
    }

    @Test func parsesRequests() {
        let r = HTTPRequest.parse("PUT /latest/api/token?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds:  300 \r\n")
        #expect(
            r == HTTPRequest(method: "PUT", path: "/latest/api/token", headers: ["host": "169.254.169.254", "x-aws-ec2-metadata-token-ttl-seconds": "300"]))
        #expect(HTTPRequest.parse("garbage") == nil)
        let text = String(decoding: HTTPResponse(status: 401, body: "Unauthorized").serialized, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.0 401 Unauthorized\r\n"))
        #expect(text.contains("Content-Length: 12\r\n"))
        #expect(text.hasSuffix("\r\n\r\nUnauthorized"))
    }
}

/// Sends raw bytes to 127.0.0.1:port and reads until the server closes.
/// Returns nil when the connection was refused or reset before any answer.
private func exchange(port: Int, _ request: String) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr)
    let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard ok == 0 else { return nil }
    _ = Array(request.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var out = [UInt8]()
    while true {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += chunk[..<n]
    }
    return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
}

private func body(_ response: String?) -> String? {
    guard let response, let r = response.range(of: "\r\n\r\n") else { return nil }
    return String(response[r.upperBound...])
}

@Suite(.serialized) struct IMDSServerTests {
    @Test func servesOverTCPWithRefusalsAndStops() throws {
        var settings = IMDSSettings(key: key)
        settings.refuseFirst = 2
        let server = IMDSServer(settings: settings)
        let port = try server.start()
        #expect(port > 0)
        let tokenRequest = "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n"
        #expect(exchange(port: port, tokenRequest) == nil)
        #expect(exchange(port: port, tokenRequest) == nil)
        let answer = exchange(port: port, tokenRequest)
        #expect(answer?.hasPrefix("HTTP/1.0 200 OK\r\n") == true)
        let token = try #require(body(answer))
        let keyAnswer = exchange(port: port, "GET \(keyPath) HTTP/1.1\r\nX-aws-ec2-metadata-token: \(token)\r\n\r\n")
        #expect(body(keyAnswer) == key)
        #expect(exchange(port: port, "GET \(keyPath) HTTP/1.1\r\n\r\n")?.hasPrefix("HTTP/1.0 401") == true)
        #expect(server.service.requests.map(\.status) == [200, 200, 401])
        server.stop()
        #expect(exchange(port: port, tokenRequest) == nil)
        server.stop() // twice is harmless
    }

    /// The relay QEMU runs per guest connection, run here with bash and pipes:
    /// a request on its stdin reaches the server; the answer comes out on its
    /// stdout; it exits once the server closed, though its stdin stays open.
    @Test func relayCarriesOneConnectionAndExits() throws {
        let server = IMDSServer(settings: IMDSSettings(key: key))
        let port = try server.start()
        defer { server.stop() }
        let command = QEMU.relay(shell: "/bin/bash", host: "127.0.0.1", port: port)
        let prefix = "/bin/bash -c '"
        #expect(command.hasPrefix(prefix) && command.hasSuffix("'"))
        let script = String(command.dropFirst(prefix.count).dropLast())
        // stdin stays open while the answer comes, as QEMU's guestfwd keeps it.
        let process = try startTool(Command("/bin/bash", ["-c", script]), input: .pipe, output: .collect)
        let request = Data("PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 30\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(process.standardInput, $0.baseAddress, $0.count) }
        let start = Date()
        let answer = process.finish().stdoutText
        close(process.standardInput)
        #expect(answer.hasPrefix("HTTP/1.0 200 OK"))
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(server.service.requests.count == 1)
    }

    @Test func relayToAClosedPortEndsAtOnce() throws {
        let server = IMDSServer(settings: IMDSSettings(key: nil))
        let port = try server.start()
        server.stop()
        let command = QEMU.relay(shell: "/bin/bash", host: "127.0.0.1", port: port)
        let script = String(command.dropFirst("/bin/bash -c '".count).dropLast())
        let process = try startTool(Command("/bin/bash", ["-c", script]), input: .pipe, output: .collect, error: .collect)
        let result = process.finish()
        close(process.standardInput)
        #expect(result.standardOutput.isEmpty)
        #expect(result.standardError.isEmpty) // slirp would hand stderr to the guest
        #expect(result.status == 1)
    }
}
