import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The instance metadata service (IMDSv2) as far as a first boot uses it,
/// served by `boot-test` to the guest (through the relay in `QEMU`), and by
/// the `imds-serve` test program (Sources/imds-serve/main.swift) to rc.local
/// run under sh in a network namespace (Tests/IntegrationTests/RcLocalTests.swift):
/// - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`
///   1...21600 answers a token; a missing or bad TTL is 400; other methods 405.
/// - a GET without a valid, unexpired `X-aws-ec2-metadata-token` is 401.
/// - `/latest/meta-data/public-keys/0/openssh-key` is the key, or 404 when none.
/// - `/latest/meta-data/iam/security-credentials/` names the instance role and
///   `…/ROLE` is its credentials document, or 404 when the instance has no role
///   (the register block upload's credential chain, Sources/AMI/Credentials.swift).
public struct IMDSSettings: Sendable, Equatable {
    /// The public key served as public-keys/0/openssh-key (nil: 404, as an instance launched without a key).
    public var key: String?
    public var instanceID: String = "i-0123456789abcdef0"
    /// Close the first N connections without reading them.
    public var refuseFirst: Int = 0
    /// Answer 503 to the first N requests.
    public var failFirst: Int = 0
    /// Wait this long before every answer.
    public var delay: TimeInterval = 0
    /// Cap every token's lifetime.
    public var maxTTL: Int?
    /// The first N tokens are already expired when used.
    public var expireTokens: Int = 0
    /// The instance role served under iam/security-credentials/ (nil: 404, an instance without a role).
    public var role: IMDSRole?

    public init(key: String? = nil) { self.key = key }
}

/// An instance role and the temporary credentials IMDS hands out for it.
public struct IMDSRole: Sendable, Equatable {
    public var name: String
    public var accessKeyID: String
    public var secretAccessKey: String
    public var token: String
    /// Their Expiration (ISO 8601 in the document).
    public var expiration: Date

    public init(name: String, accessKeyID: String, secretAccessKey: String, token: String, expiration: Date) {
        self.name = name
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.token = token
        self.expiration = expiration
    }

    /// The document as EC2 serves it (Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token, Expiration).
    public var document: String {
        let formatter = ISO8601DateFormatter()
        let object: [String: String] = [
            "Code": "Success", "LastUpdated": formatter.string(from: expiration.addingTimeInterval(-21600)),
            "Type": "AWS-HMAC", "AccessKeyId": accessKeyID, "SecretAccessKey": secretAccessKey,
            "Token": token, "Expiration": formatter.string(from: expiration),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// One request as the service saw it (tests assert, e.g., that no GET came without a token).
public struct IMDSRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    public var tokenSent: Bool
    public var tokenValid: Bool
    public var status: Int
    /// The `X-aws-ec2-metadata-token-ttl-seconds` header as sent, if any.
    public var ttl: String? = nil
}

/// What the service saw, in order: a connection it refused (`refuseFirst`) or a request it answered.
public enum IMDSEvent: Sendable, Equatable {
    case refused
    case request(IMDSRequest)

    /// One JSON object, as `imds-serve --log` writes it.
    public var json: [String: Any] {
        switch self {
        case .refused:
            return ["event": "refused"]
        case let .request(r):
            return [
                "event": "request", "method": r.method, "path": r.path, "token": r.tokenSent,
                "token_valid": r.tokenValid, "ttl": r.ttl as Any? ?? NSNull(), "status": r.status,
            ]
        }
    }
}

/// A parsed HTTP request (only what the service needs).
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var path: String
    /// Header names lower-cased.
    public var headers: [String: String]

    /// Parses the request line and headers (up to the blank line); nil when malformed.
    public static func parse(_ head: String) -> HTTPRequest? {
        let lines = head.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        guard let first = lines.first else { return nil }
        let parts = first.split(separator: " ")
        guard parts.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let path = String(parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        return HTTPRequest(method: String(parts[0]), path: path, headers: headers)
    }
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var body: String
    public var headers: [(String, String)] = []

    public static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
        a.status == b.status && a.body == b.body && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    static let reasons = [
        200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 503: "Service Unavailable",
    ]

    /// HTTP/1.0 bytes, `Connection: close`.
    public var serialized: Data {
        var text = "HTTP/1.0 \(status) \(HTTPResponse.reasons[status] ?? "Status")\r\n"
        text += "Server: EC2ws\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        return Data((text + "\r\n" + body).utf8)
    }
}

/// The service's state and answers, without sockets (unit-tested directly).
// Unchecked: settings, tokens and the log are only touched under `lock`.
public final class IMDSService: @unchecked Sendable {
    public static let tokenPath = "/latest/api/token"
    public static let ttlHeader = "X-aws-ec2-metadata-token-ttl-seconds"
    public static let tokenHeader = "X-aws-ec2-metadata-token"

    private let lock = NSLock()
    private var settings: IMDSSettings
    private var tokens: [String: Date] = [:]
    private var log: [IMDSEvent] = []
    private let now: () -> Date
    private let journal: (@Sendable ([IMDSEvent]) -> Void)?

    /// `journal` hears the whole event list after each event, under the lock (so in order).
    public init(settings: IMDSSettings, now: @escaping () -> Date = Date.init, journal: (@Sendable ([IMDSEvent]) -> Void)? = nil) {
        self.settings = settings
        self.now = now
        self.journal = journal
    }

    public var requests: [IMDSRequest] {
        lock.withLock { log.compactMap { if case let .request(r) = $0 { return r } else { return nil } } }
    }
    public var events: [IMDSEvent] { lock.withLock { log } }
    public var currentSettings: IMDSSettings { lock.withLock { settings } }
    /// Replaces the settings (faults, key) while serving.
    public func update(_ change: (inout IMDSSettings) -> Void) { lock.withLock { change(&settings) } }

    /// True (and counts it) when this connection must be refused.
    func takeRefusal() -> Bool {
        lock.withLock {
            guard settings.refuseFirst > 0 else { return false }
            settings.refuseFirst -= 1
            record(.refused)
            return true
        }
    }

    var delay: TimeInterval { lock.withLock { settings.delay } }

    /// The answer to one request, recorded in `requests`.
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        lock.withLock {
            let token = request.headers[IMDSService.tokenHeader.lowercased()]
            let valid = token.map { t in tokens[t].map { now() < $0 } ?? false } ?? false
            let response = route(request, tokenValid: valid)
            record(
                .request(
                    IMDSRequest(
                        method: request.method, path: request.path, tokenSent: token != nil, tokenValid: valid,
                        status: response.status, ttl: request.headers[IMDSService.ttlHeader.lowercased()])))
            return response
        }
    }

    /// Under `lock`.
    private func record(_ event: IMDSEvent) {
        log.append(event)
        journal?(log)
    }

    private func route(_ request: HTTPRequest, tokenValid: Bool) -> HTTPResponse {
        if settings.failFirst > 0 {
            settings.failFirst -= 1
            return HTTPResponse(status: 503, body: "Service Unavailable")
        }
        if request.path == IMDSService.tokenPath {
            guard request.method == "PUT" else { return HTTPResponse(status: 405, body: "Method Not Allowed", headers: [("Allow", "PUT")]) }
            if request.headers["x-forwarded-for"] != nil { return HTTPResponse(status: 403, body: "Forbidden") }
            guard let text = request.headers[IMDSService.ttlHeader.lowercased()],
                text.allSatisfy(\.isASCII), let ttl = Int(text), (1...21600).contains(ttl)
            else {
                return HTTPResponse(status: 400, body: "Bad Request")
            }
            var life = TimeInterval(min(ttl, settings.maxTTL ?? ttl))
            if settings.expireTokens > 0 { settings.expireTokens -= 1; life = -1 }
            let token = IMDSService.newToken()
            tokens[token] = now().addingTimeInterval(life)
            return HTTPResponse(status: 200, body: token, headers: [(IMDSService.ttlHeader, String(ttl))])
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse(status: 405, body: "Method Not Allowed", headers: [("Allow", "GET, HEAD")])
        }
        guard tokenValid else { return HTTPResponse(status: 401, body: "Unauthorized") }
        guard let body = metadata[request.path] else { return HTTPResponse(status: 404, body: "Not Found") }
        return HTTPResponse(status: 200, body: body)
    }

    private var metadata: [String: String] {
        var m = [
            "/latest/meta-data/instance-id": settings.instanceID,
            "/latest/meta-data/ami-id": "ami-0123456789abcdef0",
            "/latest/meta-data/instance-type": "t3.micro",
            "/latest/meta-data/hostname": "ip-10-0-0-10.ec2.internal",
            "/latest/meta-data/local-hostname": "ip-10-0-0-10.ec2.internal",
            "/latest/meta-data/local-ipv4": "10.0.0.10",
            "/latest/meta-data/placement/availability-zone": "us-east-1a",
            "/latest/meta-data/placement/region": "us-east-1",
            "/latest/meta-data/placement/": "availability-zone\nregion",
            "/latest/": "api/\nmeta-data/\ndynamic/",
        ]
        var listing = ["ami-id", "hostname", "instance-id", "instance-type", "local-hostname", "local-ipv4", "placement/"]
        if let key = settings.key {
            m["/latest/meta-data/public-keys/"] = "0=boot-test"
            m["/latest/meta-data/public-keys/0/"] = "openssh-key"
            m["/latest/meta-data/public-keys/0/openssh-key"] = key
            listing.append("public-keys/")
        }
        if let role = settings.role {
            m["/latest/meta-data/iam/"] = "security-credentials/"
            m["/latest/meta-data/iam/security-credentials/"] = role.name
            m["/latest/meta-data/iam/security-credentials/\(role.name)"] = role.document
            listing.append("iam/")
        }
        m["/latest/meta-data/"] = listing.joined(separator: "\n")
        m["/latest/meta-data"] = m["/latest/meta-data/"]
        return m
    }

    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
        return String((0..<56).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }
}

/// The service on a TCP socket: HTTP/1.0, one short-lived thread per
/// connection. Listens on 127.0.0.1 by default (the guest reaches it through
/// QEMU's relay, never directly). `stop()` closes the listener and waits for
/// the accept loop to end; nothing keeps running after it.
// Unchecked: `listener` is swapped under `lock`; `port` and `acceptThread` are set by start() before the accept thread runs.
public final class IMDSServer: @unchecked Sendable {
    public let service: IMDSService
    private var listener: Int32 = -1
    private var acceptThread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    public private(set) var port: Int = 0

    public init(settings: IMDSSettings, journal: (@Sendable ([IMDSEvent]) -> Void)? = nil) {
        service = IMDSService(settings: settings, journal: journal)
    }

    /// Binds and starts serving; returns the port (`port: 0` picks a free one).
    @discardableResult
    public func start(host: String = "127.0.0.1", port wanted: Int = 0) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw VMError.imds(reason: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(wanted).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw VMError.imds(reason: "'\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw VMError.imds(reason: "cannot listen on \(host):\(wanted): \(reason)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        let thread = Thread { [self] in
            // Block every signal in this thread and (inherited) its handler threads:
            // a SIGCHLD delivered here would be discarded, and Foundation's Process,
            // which learns of child exits from SIGCHLD, would then wait forever for
            // QEMU (seen: waitUntilExit hanging on a zombie while this thread sat in accept).
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, nil)
            acceptLoop(fd)
        }
        thread.name = "imds-accept"
        acceptThread = thread
        thread.start()
        return port
    }

    /// Stops accepting and waits for the accept loop to end.
    public func stop() {
        let fd: Int32 = lock.withLock {
            let f = listener; listener = -1; return f
        }
        guard fd >= 0 else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        done.wait()
    }

    deinit { stop() }

    private func acceptLoop(_ fd: Int32) {
        defer { done.signal() }
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return // listener closed by stop()
            }
            if service.takeRefusal() {
                // RST, not FIN: what a client of a refused port sees, as near as a listening socket gets.
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                close(client)
                continue
            }
            let service = self.service
            Thread.detachNewThread { IMDSServer.handle(client, service: service) }
        }
    }

    private static func handle(_ fd: Int32, service: IMDSService) {
        defer { close(fd) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8]()
        let end: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil && buffer.count < 65536 {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            buffer.append(contentsOf: chunk[..<n])
            if buffer.count >= 4 {
                for i in 0...(buffer.count - 4) where Array(buffer[i..<(i + 4)]) == end { headEnd = i; break }
            }
        }
        guard let headEnd, let request = HTTPRequest.parse(String(decoding: buffer[..<headEnd], as: UTF8.self)) else {
            _ = HTTPResponse(status: 400, body: "Bad Request").serialized.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            return
        }
        // Drain a body so the client is not reset while still sending it.
        var remaining = (Int(request.headers["content-length"] ?? "0") ?? 0) - (buffer.count - headEnd - 4)
        while remaining > 0 {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, remaining)) }
            if n <= 0 { break }
            remaining -= n
        }
        let delay = service.delay
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        var data = service.respond(to: request).serialized
        if request.method == "HEAD", let split = data.range(of: Data("\r\n\r\n".utf8)) { data = data[..<split.upperBound] }
        var offset = 0
        while offset < data.count {
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { break }
            offset += n
        }
        shutdown(fd, Int32(SHUT_WR))
    }
}
