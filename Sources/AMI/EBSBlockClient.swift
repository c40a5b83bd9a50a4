// PutSnapshotBlock over HTTP(S) from this process: one URLSession whose
// connections stay open (keep-alive) for the whole upload, each request signed
// here (SigV4.swift) with credentials from the usual chain (Credentials.swift).
// Why not the aws CLI: a process per 512 KiB block costs ~0.6 s of CPU, which
// bounded the upload at ~3 blocks/s on 2 CPUs (Benchmarks/upload/RESULTS.md).
// The other EBS and EC2 calls (one each per registration) stay on the aws CLI.
import Foundation
import Host
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Sends one block of a pending snapshot. The uploader retries what `BlockPutFailure.retryable` says to.
public protocol SnapshotBlockSender: Sendable {
    /// `checksum`: Base64 SHA-256 of `block` (exactly `EBSBlocks.blockSize` bytes).
    func putBlock(snapshotID: String, index: Int, block: Data, checksum: String) throws
}

/// Why a PutSnapshotBlock was not accepted, and whether trying again may help.
public struct BlockPutFailure: ToolError, Equatable, Sendable {
    /// The HTTP status; nil when no answer came (a reset connection, a timeout).
    public var status: Int?
    /// The service's error code (`ThrottlingException`, `ValidationException`) or the transport's.
    public var code: String
    public var message: String
    /// 5xx, throttling, a lost connection, expired credentials: try again after the backoff.
    public var retryable: Bool
    /// The credentials expired on the way: fetch them again before the next try.
    public var refreshCredentials = false

    public init(status: Int?, code: String, message: String, retryable: Bool, refreshCredentials: Bool = false) {
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.refreshCredentials = refreshCredentials
    }

    public var failure: String {
        status.map { "PutSnapshotBlock answered HTTP \($0) \(code)" } ?? "PutSnapshotBlock got no answer (\(code))"
    }
    public var reason: String? { message.isEmpty ? nil : message }
    public var remedy: String? {
        guard status == 403 && !refreshCredentials else { return nil }
        return
            "check the credentials: centos6-ami signs this call itself, with the aws CLI's chain: AWS_ACCESS_KEY_ID, --profile/AWS_PROFILE, the instance role"
    }

    static let throttlingCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
        "RequestLimitExceeded", "RequestThrottled", "SlowDown", "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "EC2ThrottledException", "TransactionInProgressException",
    ]
    static let expiredCodes: Set<String> = ["ExpiredToken", "ExpiredTokenException", "RequestExpired"]

    /// The failure an HTTP answer means, or nil for a 2xx. The error code comes from the
    /// `x-amzn-ErrorType` header (rest-json services) or the body's `__type`/`code`.
    public static func classify(status: Int, headers: [String: String], body: Data) -> BlockPutFailure? {
        guard !(200..<300).contains(status) else { return nil }
        let lower = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        var code =
            lower["x-amzn-errortype"].map { String($0.split(separator: ":").first ?? "") }
            ?? (json?["__type"] as? String) ?? (json?["code"] as? String) ?? (json?["Code"] as? String) ?? ""
        if let hash = code.lastIndex(of: "#") { code = String(code[code.index(after: hash)...]) }
        if code.isEmpty { code = status >= 500 ? "InternalServerError" : "HTTP\(status)" }
        let message =
            (json?["message"] as? String) ?? (json?["Message"] as? String)
            ?? String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let expired = expiredCodes.contains(code)
        let retryable = status >= 500 || status == 429 || throttlingCodes.contains(code) || expired
        return BlockPutFailure(status: status, code: code, message: message, retryable: retryable, refreshCredentials: expired)
    }

    /// The failure a transport error means: everything but a bad URL or a cancel is worth another try
    /// (reset or lost connections, timeouts, a name that did not resolve this once).
    public static func classify(transport error: Error) -> BlockPutFailure {
        if let url = error as? URLError {
            let fatal: Set<URLError.Code> = [.badURL, .unsupportedURL, .cancelled, .userCancelledAuthentication]
            return BlockPutFailure(status: nil, code: "URLError \(url.code.rawValue)", message: url.localizedDescription, retryable: !fatal.contains(url.code))
        }
        return BlockPutFailure(status: nil, code: "\(type(of: error))", message: "\(error)", retryable: true)
    }
}

/// A synchronous request on a URLSession (the uploader's workers are threads).
enum HTTPExchange {
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: Data
    }

    static func perform(_ session: URLSession, _ request: URLRequest, body: Data?) -> Result<Answer, Error> {
        let box = Locked<Result<Answer, Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let handler: @Sendable (Data?, URLResponse?, Error?) -> Void = { data, response, error in
            let result: Result<Answer, Error>
            if let error {
                result = .failure(error)
            } else if let http = response as? HTTPURLResponse {
                var headers: [String: String] = [:]
                for (k, v) in http.allHeaderFields { headers[String(describing: k)] = String(describing: v) }
                result = .success(Answer(status: http.statusCode, headers: headers, body: data ?? Data()))
            } else {
                result = .failure(URLError(.badServerResponse))
            }
            box.withLock { $0 = result }
            done.signal()
        }
        let task =
            body.map { session.uploadTask(with: request, from: $0, completionHandler: handler) }
            ?? session.dataTask(with: request, completionHandler: handler)
        task.resume()
        done.wait()
        return box.value ?? .failure(URLError(.unknown))
    }
}

/// PutSnapshotBlock by HTTP: `PUT {endpoint}/snapshots/{id}/blocks/{index}` with the block as the
/// body, its SHA-256 in `x-amz-Checksum`, signed with SigV4 for service `ebs`.
// Unchecked: `session` is thread-safe; the rest is immutable.
public final class EBSBlockClient: SnapshotBlockSender, @unchecked Sendable {
    public let endpoint: URL
    public let region: String
    public let credentials: CredentialSource
    let session: URLSession

    /// `connections`: at most this many open to the endpoint (one per upload worker), kept alive between blocks.
    public init(endpoint: URL, region: String, credentials: CredentialSource, connections: Int, timeout: TimeInterval = 120) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = max(1, connections)
        configuration.timeoutIntervalForRequest = timeout
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        session = URLSession(configuration: configuration)
    }

    deinit { session.invalidateAndCancel() }

    /// `https://ebs.REGION.amazonaws.com`, or the `--endpoint-url` every other call goes to (moto in tests).
    public static func endpoint(region: String, endpointURL: String?) throws -> URL {
        let text = endpointURL ?? "https://ebs.\(region).amazonaws.com"
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw AMIError.badEndpoint(text)
        }
        return url
    }

    /// The signed request for one block (pure but for nothing: commands as data, tested against botocore).
    /// The body is not signed (botocore's EBS model: PutSnapshotBlock is `v4-unsigned-body`): the payload hash
    /// is `UNSIGNED-PAYLOAD`, sent as `x-amz-content-sha256` and signed, so a verifier that re-computes the
    /// signature over http (where botocore would hash the body) takes the header's value, as AWS does.
    public static func request(
        endpoint: URL, snapshotID: String, index: Int, checksum: String, credentials: AWSCredentials,
        region: String, date: Date
    ) throws -> URLRequest {
        let base = endpoint.absoluteString.hasSuffix("/") ? String(endpoint.absoluteString.dropLast()) : endpoint.absoluteString
        let path = endpoint.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let resource = "/snapshots/\(SigV4.uriEncode(snapshotID, keepSlash: false))/blocks/\(index)"
        guard let url = URL(string: base + resource), let host = endpoint.host else {
            throw AMIError.noBlockURL(endpoint: "\(endpoint)", index: index)
        }
        let hostHeader = endpoint.port.map { "\(host):\($0)" } ?? host
        let headers = [
            ("host", hostHeader), ("x-amz-checksum", checksum), ("x-amz-checksum-algorithm", EBSChecksum.algorithm),
            ("x-amz-content-sha256", SigV4.unsignedPayload), ("x-amz-data-length", String(EBSBlocks.blockSize)),
        ]
        let signing = SigV4.sign(
            method: "PUT", path: (path.isEmpty ? "" : "/" + path) + resource, headers: headers,
            payloadHash: SigV4.unsignedPayload, credentials: credentials, region: region, service: "ebs", date: date)
        var request = URLRequest(url: url)
        request.httpMethod = "PUT"
        // The session sets Host itself (the same value, from the URL).
        for (name, value) in headers.dropFirst() + signing { request.setValue(value, forHTTPHeaderField: name) }
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        return request
    }

    public func putBlock(snapshotID: String, index: Int, block: Data, checksum: String) throws {
        var keys = try credentials.current()
        for attempt in 0..<2 {
            let request = try EBSBlockClient.request(
                endpoint: endpoint, snapshotID: snapshotID, index: index, checksum: checksum,
                credentials: keys, region: region, date: Date())
            switch HTTPExchange.perform(session, request, body: block) {
            case let .failure(error):
                throw BlockPutFailure.classify(transport: error)
            case let .success(answer):
                guard let failure = BlockPutFailure.classify(status: answer.status, headers: answer.headers, body: answer.body) else { return }
                // Expired keys: fetched again at once and the block sent again (not counted as a try).
                if failure.refreshCredentials && attempt == 0 {
                    keys = try credentials.current(forceRefresh: true)
                    continue
                }
                throw failure
            }
        }
    }
}
