@testable import AMI
import Foundation
import Host
import TestSupport
import Testing

/// One case of AWS's SigV4 test suite (Tests/AMITests/SigV4Vectors/SOURCE.md names where they come from).
struct SigV4Vector {
    let name: String
    let method: String
    let path: String
    let headers: [(String, String)]
    let body: String
    let credentials: AWSCredentials
    let region: String
    let service: String
    let signBody: Bool
    let canonicalRequest: String
    let stringToSign: String
    let signature: String

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("SigV4Vectors")

    static func load(_ name: String) throws -> SigV4Vector {
        let dir = directory.appendingPathComponent(name)
        func text(_ file: String) throws -> String { try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8) }
        let context = try #require(try JSONSerialization.jsonObject(with: Data(text("context.json").utf8)) as? [String: Any])
        let keys = try #require(context["credentials"] as? [String: String])
        let request = try text("request.txt")
        let (head, body) = request.range(of: "\n\n").map { (String(request[..<$0.lowerBound]), String(request[$0.upperBound...])) } ?? (request, "")
        let lines = head.split(separator: "\n").map(String.init)
        let first = lines[0].split(separator: " ")
        let headers = lines.dropFirst().map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        return SigV4Vector(
            name: name, method: String(first[0]), path: String(first[1]), headers: headers, body: body,
            credentials: AWSCredentials(
                accessKeyID: keys["access_key_id"]!, secretAccessKey: keys["secret_access_key"]!,
                sessionToken: keys["token"], source: "test"),
            region: context["region"] as! String, service: context["service"] as! String,
            signBody: context["sign_body"] as? Bool ?? false,
            canonicalRequest: try text("header-canonical-request.txt"), stringToSign: try text("header-string-to-sign.txt"),
            signature: try text("header-signature.txt").trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

@Suite struct SigV4Tests {
    /// The time every vector of the suite is signed at (context.json: 2015-08-30T12:36:00Z).
    let date = Date(timeIntervalSince1970: 1_440_938_160)

    @Test(arguments: ["get-vanilla", "get-header-value-trim", "get-vanilla-with-session-token", "post-x-www-form-urlencoded"])
    func awsTestSuiteVector(_ name: String) throws {
        let v = try SigV4Vector.load(name)
        let payloadHash = FastSHA256.hex(Data(v.body.utf8))
        // sign_body: the suite's signer adds x-amz-content-sha256 and signs it (botocore does the same over http).
        let headers = v.headers + (v.signBody ? [("x-amz-content-sha256", payloadHash)] : [])
        let stamp = SigV4.timestamp(date)
        #expect(stamp == "20150830T123600Z")
        let all = headers + [("X-Amz-Date", stamp)] + (v.credentials.sessionToken.map { [("X-Amz-Security-Token", $0)] } ?? [])
        let canonical = SigV4.canonicalRequest(method: v.method, path: v.path, query: "", headers: all, payloadHash: payloadHash)
        #expect(canonical == v.canonicalRequest)
        let scope = SigV4.scope(timestamp: stamp, region: v.region, service: v.service)
        let sts = SigV4.stringToSign(timestamp: stamp, scope: scope, canonicalRequest: canonical)
        #expect(sts == v.stringToSign)
        let added = SigV4.sign(
            method: v.method, path: v.path, headers: headers, payloadHash: payloadHash, credentials: v.credentials,
            region: v.region, service: v.service, date: date)
        let authorization = try #require(added.first { $0.0 == "Authorization" }?.1)
        #expect(authorization.hasSuffix("Signature=\(v.signature)"), "\(authorization)")
        #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="))
    }

    @Test func sha256AndHMACAgreeWithTheirReferences() {
        // FIPS 180-4 "abc"; RFC 4231 test case 2.
        #expect(FastSHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            FastSHA256.hexString(FastSHA256.hmac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let block = Data(repeating: 1, count: 524_288)
        #expect(EBSChecksum.base64(FastSHA256.digest(block)) == "M6FQvOsTwamSIx5ltPrRaBUhL8Bs20CJltMu6yzvnrs=")
    }

    @Test func trimmingAndEncoding() {
        #expect(SigV4.trimmed("  a   b\tc ") == "a b c")
        #expect(SigV4.uriEncode("/snapshots/snap-1/blocks/7", keepSlash: true) == "/snapshots/snap-1/blocks/7")
        #expect(SigV4.uriEncode("a b/é", keepSlash: false) == "a%20b%2F%C3%A9")
        #expect(SigV4.canonicalQuery("b=2&a=1&a=0") == "a=0&a=1&b=2")
    }

    @Test func credentialsNeverShowTheirSecretWhenPrinted() {
        let c = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "SECRET-xyz", sessionToken: "TOKEN-xyz", source: "environment")
        #expect(!"\(c)".contains("SECRET") && !"\(c)".contains("TOKEN"))
        #expect(!String(reflecting: c).isEmpty)
    }

    /// The first python3 on PATH that imports botocore (the aws CLI's own library), if any.
    static let botocorePython: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
        for dir in dirs where FileManager.default.isExecutableFile(atPath: dir + "/python3") {
            if runTool(Command(dir + "/python3", ["-c", "import botocore.auth"])).status == 0 { return dir + "/python3" }
        }
        return nil
    }()

    /// The PutSnapshotBlock our signer signs is signed the same by botocore's SigV4Auth (the aws CLI's
    /// signer), computed from the request's own X-Amz-Date and SignedHeaders.
    @Test(.enabled(if: botocorePython != nil, "needs python3 with botocore (scripts/setup-host.sh installs the aws CLI)"))
    func botocoreComputesTheSameSignatureForAPutSnapshotBlock() throws {
        let python = try #require(SigV4Tests.botocorePython)
        let credentials = AWSCredentials(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            sessionToken: "session-token-123", source: "test")
        for endpoint in ["https://ebs.eu-west-1.amazonaws.com", "http://127.0.0.1:4566"] {
            let request = try EBSBlockClient.request(
                endpoint: URL(string: endpoint)!, snapshotID: "snap-0123456789abcdef0", index: 42,
                checksum: "M6FQvOsTwamSIx5ltPrRaBUhL8Bs20CJltMu6yzvnrs=", credentials: credentials,
                region: "eu-west-1", date: date)
            let headers = request.allHTTPHeaderFields ?? [:]
            let script = """
                import json, sys
                from botocore.auth import SigV4Auth
                from botocore.awsrequest import AWSRequest
                from botocore.credentials import Credentials
                r = json.load(sys.stdin)
                auth = r["headers"]["Authorization"]
                signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
                headers = {k: v for k, v in r["headers"].items() if k.lower() in signed}
                req = AWSRequest(method=r["method"], url=r["url"], headers=headers)
                req.context["timestamp"] = r["headers"]["X-Amz-Date"]
                s = SigV4Auth(Credentials(r["ak"], r["sk"], r["token"]), "ebs", "eu-west-1")
                cr = s.canonical_request(req)
                print(s.signature(s.string_to_sign(req, cr), req))
                """
            let input: [String: Any] = [
                "method": request.httpMethod ?? "", "url": request.url!.absoluteString, "headers": headers,
                "ak": credentials.accessKeyID, "sk": credentials.secretAccessKey, "token": credentials.sessionToken!,
            ]
            let result = runTool(Command(python, ["-c", script], standardInput: try JSONSerialization.data(withJSONObject: input)))
            let out = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            let err = result.stderrText
            try #require(result.status == 0, "\(err)")
            let ours = try #require(headers["Authorization"]?.components(separatedBy: "Signature=").last)
            #expect(out == ours, "botocore's signature of \(endpoint)")
            #expect(request.value(forHTTPHeaderField: "x-amz-content-sha256") == "UNSIGNED-PAYLOAD")
            #expect(
                headers["Authorization"]?.contains(
                    "SignedHeaders=host;x-amz-checksum;x-amz-checksum-algorithm;x-amz-content-sha256;x-amz-data-length;x-amz-date;x-amz-security-token,")
                    == true)
        }
    }
}

@Suite struct BlockPutFailureTests {
    let json = Data(#"{"message": "Rate exceeded"}"#.utf8)

    @Test func whatIsRetriedAndWhatIsNot() {
        #expect(BlockPutFailure.classify(status: 201, headers: [:], body: Data()) == nil)
        let throttled = BlockPutFailure.classify(status: 400, headers: ["x-amzn-ErrorType": "ThrottlingException:http://internal"], body: json)
        #expect(throttled?.retryable == true && throttled?.code == "ThrottlingException" && throttled?.message == "Rate exceeded")
        #expect(BlockPutFailure.classify(status: 429, headers: [:], body: Data())?.retryable == true)
        #expect(BlockPutFailure.classify(status: 503, headers: [:], body: Data())?.retryable == true)
        #expect(
            BlockPutFailure.classify(status: 400, headers: [:], body: Data(#"{"__type": "com.amazon#RequestThrottledException"}"#.utf8))?.code
                == "RequestThrottledException")
        let invalid = BlockPutFailure.classify(status: 400, headers: ["x-amzn-ErrorType": "ValidationException"], body: json)
        #expect(invalid?.retryable == false, "a bad request fails at once")
        let denied = BlockPutFailure.classify(status: 403, headers: ["x-amzn-ErrorType": "SignatureDoesNotMatch"], body: json)
        #expect(denied?.retryable == false && denied?.description.contains("check the credentials") == true)
        let expired = BlockPutFailure.classify(status: 403, headers: ["x-amzn-ErrorType": "ExpiredTokenException"], body: json)
        #expect(expired?.retryable == true && expired?.refreshCredentials == true)
        #expect(BlockPutFailure.classify(transport: URLError(.networkConnectionLost)).retryable)
        #expect(BlockPutFailure.classify(transport: URLError(.timedOut)).retryable)
        #expect(!BlockPutFailure.classify(transport: URLError(.badURL)).retryable)
    }

    @Test func theEndpointIsTheRegionsOrTheGivenOne() throws {
        #expect(try EBSBlockClient.endpoint(region: "eu-west-1", endpointURL: nil).absoluteString == "https://ebs.eu-west-1.amazonaws.com")
        #expect(try EBSBlockClient.endpoint(region: "eu-west-1", endpointURL: "http://127.0.0.1:5000").absoluteString == "http://127.0.0.1:5000")
        #expect(throws: AMIError.self) { try EBSBlockClient.endpoint(region: "r", endpointURL: "ftp://x") }
    }
}
