import AMI
import Foundation
import Host
import TestSupport
import Testing
import VM
#if canImport(Glibc)
    import Glibc
#endif

/// scripts/sigv4-proxy.py in front of a MotoServer: every request's signature recomputed by
/// botocore (403 on mismatch), every PutSnapshotBlock logged, faults injected on request.
/// Started on a free port, stopped by its PID. The secret reaches it through its environment.
final class SigV4Proxy: Sendable {
    let server: TestServer
    var port: Int { server.port }
    let logPath: String
    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// One logged request (the script's --log lines).
    struct Entry {
        var method: String
        var signature: String
        var status: String
        var block: Int?
        var checksum: String?
        var algorithm: String?
        var dataLength: String?
        var bodyLength: Int?
        var checksumOK: Bool?
    }

    init(upstream: MotoServer, directory: String, secret: String = "testing", faults: [String] = []) throws {
        let python = try #require(MotoServer.which("python3"))
        logPath = directory + "/proxy-requests.jsonl"
        do {
            server = try TestServer.sigV4Proxy(python: python, upstream: upstream.endpoint, directory: directory, secret: secret, log: logPath, faults: faults)
        } catch {
            Issue.record("sigv4-proxy did not start (see \(directory)/proxy.err): \(error)")
            throw CancellationError()
        }
    }

    func stop() { server.stop() }

    var entries: [Entry] {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            let status = (o["status"] as? NSNumber).map { "\($0.intValue)" } ?? (o["status"] as? String ?? "?")
            return Entry(
                method: o["method"] as? String ?? "", signature: o["signature"] as? String ?? "", status: status,
                block: (o["block"] as? NSNumber)?.intValue, checksum: o["checksum"] as? String, algorithm: o["algorithm"] as? String,
                dataLength: o["data_length"] as? String, bodyLength: (o["body_length"] as? NSNumber)?.intValue,
                checksumOK: o["checksum_ok"] as? Bool)
        }
    }

    /// PutSnapshotBlock requests, in the order they came.
    var puts: [Entry] { entries.filter { $0.block != nil } }
}

/// The register upload through the checking proxy: signatures, retries, and secrets kept off
/// command lines and out of everything the tool writes.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct SigV4ProxyTests {
    func listed(_ moto: MotoServer, snapshot: String) throws -> [Int] {
        let blocks = try #require(try moto.ebs(["list-snapshot-blocks", "--snapshot-id", snapshot])["Blocks"] as? [[String: Any]])
        return blocks.compactMap { ($0["BlockIndex"] as? NSNumber)?.intValue }.sorted()
    }

    /// Throttling (400 ThrottlingException), 503s and reset connections are retried with backoff; every
    /// request's signature (ours and the aws CLI's) is what botocore computes; a wrong secret is refused.
    @Test func throttlingFailuresAndResetsAreRetriedAndEverySignatureIsBotocores() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let dir = try Integration.scratchDirectory("register-proxy")
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let proxy = try SigV4Proxy(upstream: moto, directory: dir, faults: ["--throttle-first", "3", "--fail-first", "2", "--reset-first", "2"])
        defer { proxy.stop() }
        let out = try Integration.tool([
            "register", "6.9", built.image, "--build-id", "it-proxy", "--endpoint-url", proxy.endpoint,
            "--results", dir + "/results.json", "--poll", "1", "--log", dir + "/register.log",
        ])
        #expect(out.status == 0, "\(out.stderr)")
        let record = try #require(try ResultsFile.load(path: dir + "/results.json").amis.first)
        let entries = proxy.entries
        #expect(
            !entries.isEmpty && entries.allSatisfy { $0.signature == "ok" },
            "every request signed as botocore signs it: \(entries.filter { $0.signature != "ok" }.prefix(3))")
        let puts = proxy.puts
        #expect(
            puts.filter { $0.status == "400" }.count == 3 && puts.filter { $0.status == "503" }.count == 2 && puts.filter { $0.status == "reset" }.count == 2)
        let accepted = puts.filter { $0.status == "201" }.compactMap(\.block)
        let listedBlocks = try listed(moto, snapshot: record.snapshotId)
        #expect(accepted.sorted() == listedBlocks, "each block accepted once, the failed ones on a later try")
        #expect(puts.count == listedBlocks.count + 7)
        #expect(puts.allSatisfy { $0.algorithm == "SHA256" && $0.dataLength == "524288" && $0.bodyLength == 524_288 && $0.checksumOK == true })

        // A client signing with another secret is refused (403) by the proxy before anything is created.
        let wrong = try Integration.tool(
            [
                "register", "6.9", built.image, "--build-id", "it-proxy-wrong", "--endpoint-url", proxy.endpoint,
                "--results", dir + "/wrong.json", "--poll", "1", "--log", dir + "/wrong.log",
            ],
            environment: ["AWS_SECRET_ACCESS_KEY": "not-the-secret"])
        #expect(wrong.status == 1)
        #expect(proxy.entries.contains { $0.signature == "mismatch" && $0.status == "403" }, "refused by the proxy")
        #expect(wrong.stderr.contains("403") || wrong.stderr.contains("SignatureDoesNotMatch"), "\(wrong.stderr)")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// `--profile` naming a credential_process profile: the aws CLI calls and the tool's own
    /// PutSnapshotBlock are signed with the keys it prints (the proxy knows only that secret).
    @Test func aCredentialProcessProfileSignsTheAWSCallsAndTheBlocksAlike() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let dir = try Integration.scratchDirectory("register-profile")
        let secret = "Zq9PROFILEc6ami" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        try """
        #!/bin/sh
        printf '{"Version": 1, "AccessKeyId": "AKIDPROFILE", "SecretAccessKey": "%s", "SessionToken": "profile-token"}\\n' "$(cat "$1")"
        """.write(toFile: dir + "/creds.sh", atomically: true, encoding: .utf8)
        try secret.write(toFile: dir + "/secret", atomically: true, encoding: .utf8)
        try "[profile builder]\ncredential_process = /bin/sh \(dir)/creds.sh \(dir)/secret\n".write(toFile: dir + "/config", atomically: true, encoding: .utf8)
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let proxy = try SigV4Proxy(upstream: moto, directory: dir, secret: secret)
        defer { proxy.stop() }
        let out = try Integration.tool(
            [
                "register", "6.9", built.image, "--profile", "builder", "--build-id", "it-profile", "--endpoint-url", proxy.endpoint,
                "--results", dir + "/results.json", "--poll", "1", "--log", dir + "/register.log",
            ],
            environment: [
                "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                "AWS_CONFIG_FILE": dir + "/config", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            ])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("with credentials from credential_process of profile 'builder'"), "\(out.stderr)")
        #expect(proxy.puts.count > 100)
        #expect(proxy.entries.allSatisfy { $0.signature == "ok" }, "the aws CLI and the tool signed with the profile's keys")
        let log = (try? String(contentsOfFile: dir + "/register.log", encoding: .utf8)) ?? ""
        #expect(log.contains("--profile builder") && !log.contains(secret))
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// On a builder instance without keys: the instance role through IMDSv2 (the tool's own IMDS,
    /// VM/IMDS.swift, on 127.0.0.1 through AWS_EC2_METADATA_SERVICE_ENDPOINT) signs the blocks.
    @Test func theInstanceRoleThroughIMDSv2SignsTheBlocks() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let dir = try Integration.scratchDirectory("register-role")
        let secret = "Zq9ROLEc6ami" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        var settings = IMDSSettings()
        settings.role = IMDSRole(
            name: "centos6-ami-builder", accessKeyID: "ASIAROLEBUILDER", secretAccessKey: secret,
            token: "role-session-token", expiration: Date().addingTimeInterval(6 * 3600))
        let imds = IMDSServer(settings: settings)
        let port = try imds.start()
        defer { imds.stop() }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let proxy = try SigV4Proxy(upstream: moto, directory: dir, secret: secret)
        defer { proxy.stop() }
        let out = try Integration.tool(
            [
                "register", "6.9", built.image, "--build-id", "it-role", "--endpoint-url", proxy.endpoint,
                "--results", dir + "/results.json", "--poll", "1", "--log", dir + "/register.log",
            ],
            environment: [
                "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                "AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(port)",
            ])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stderr.contains("with credentials from the instance role 'centos6-ami-builder' (IMDSv2)"), "\(out.stderr)")
        #expect(proxy.puts.count > 100 && proxy.entries.allSatisfy { $0.signature == "ok" }, "signed with the role's keys")
        let requests = imds.service.requests
        #expect(requests.contains { $0.method == "PUT" && $0.ttl != nil }, "an IMDSv2 token first")
        #expect(requests.filter { $0.method == "GET" }.allSatisfy { $0.tokenValid }, "no GET without a valid token")
        let log = (try? String(contentsOfFile: dir + "/register.log", encoding: .utf8)) ?? ""
        #expect(!log.contains(secret) && !log.contains("role-session-token"))
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A distinctive secret key and session token: never in any process's /proc/PID/cmdline while the
    /// upload runs (sampled every 50 ms), never in the tool's output, log, results or the manifest.
    @Test func theSecretKeyIsNeverOnACommandLineNorInTheLogOrResults() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0, "the 6.9 install failed: \(built.result.stderr)")
        let dir = try Integration.scratchDirectory("register-secret")
        let secret = "Zq9SECRETc6amiKey" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let token = "Zq9TOKENc6ami" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let proxy = try SigV4Proxy(upstream: moto, directory: dir, secret: secret)
        defer { proxy.stop() }

        let seen = Locked<[String]>([]), samples = Locked(0), stop = Locked(false)
        let sampler = Thread {
            while !stop.value {
                for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where pid.allSatisfy(\.isNumber) {
                    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
                    let line = String(decoding: data, as: UTF8.self)
                    if line.contains(secret) || line.contains(token) { seen.withLock { $0.append(line.replacingOccurrences(of: "\0", with: " ")) } }
                }
                samples.withLock { $0 += 1 }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        sampler.start()
        let out = try Integration.tool(
            [
                "register", "6.9", built.image, "--build-id", "it-secret", "--endpoint-url", proxy.endpoint,
                "--results", dir + "/results.json", "--poll", "1", "--log", dir + "/register.log",
            ],
            environment: ["AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token])
        stop.withLock { $0 = true }
        while !sampler.isFinished { Thread.sleep(forTimeInterval: 0.02) }
        #expect(out.status == 0, "\(out.stderr)")
        #expect(samples.value > 20, "sampled all along the run")
        #expect(seen.value.isEmpty, "the secret on a command line: \(seen.value)")
        #expect(proxy.puts.count > 100 && proxy.entries.allSatisfy { $0.signature == "ok" }, "signed with that secret")
        for file in [dir + "/register.log", dir + "/results.json", built.dir + "/c69.manifest.json"] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            #expect(!text.isEmpty, "\(file) was written")
            #expect(!text.contains(secret) && !text.contains(token), "the secret in \(file)")
        }
        #expect(!out.stdout.contains(secret) && !out.stderr.contains(secret) && !out.stderr.contains(token))
        try? FileManager.default.removeItem(atPath: dir)
    }
}
