// The credentials PutSnapshotBlock is signed with (EBSBlockClient.swift), found
// where the aws CLI finds them, so both halves of a registration act as the
// same principal: the environment, then a profile of the shared files (static
// keys or credential_process), then the instance role through IMDSv2.
// Secrets stay in memory: never an argument of a process, never logged
// (`AWSCredentials.description` leaves them out); a credential_process's
// output is read without going through the logging runner.
import Foundation
import Host
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Why no credentials could be had, and what to do about it.
public struct CredentialError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "credentials for the block upload: \(reason)" }
}

/// Credentials that may expire: fetched again shortly before they do (or when the service says they did).
// Unchecked: `cached` is only touched under `lock`; `fetch` is called under it, so one refresh at a time.
public final class CredentialSource: @unchecked Sendable {
    private let lock = NSLock()
    private var cached: AWSCredentials?
    private let fetch: () throws -> AWSCredentials
    private let now: () -> Date
    /// Temporary credentials are renewed this long before their Expiration (botocore renews 10-15 minutes early).
    public let refreshMargin: TimeInterval

    public init(refreshMargin: TimeInterval = 600, now: @escaping () -> Date = Date.init, fetch: @escaping () throws -> AWSCredentials) {
        self.fetch = fetch
        self.now = now
        self.refreshMargin = refreshMargin
    }

    /// Fixed credentials (the environment, static keys in a profile).
    public convenience init(_ credentials: AWSCredentials) { self.init(fetch: { credentials }) }

    /// The credentials to sign with now.
    public func current(forceRefresh: Bool = false) throws -> AWSCredentials {
        try lock.withLock {
            if let cached, !forceRefresh, !CredentialSource.needsRefresh(cached, now: now(), margin: refreshMargin) { return cached }
            do {
                let fresh = try fetch()
                cached = fresh
                return fresh
            } catch {
                // A failed renewal of credentials that still work is not fatal yet.
                if let cached, let expiration = cached.expiration, now() < expiration, !forceRefresh { return cached }
                throw error
            }
        }
    }

    public static func needsRefresh(_ credentials: AWSCredentials, now: Date, margin: TimeInterval) -> Bool {
        guard let expiration = credentials.expiration else { return false }
        return now.addingTimeInterval(margin) >= expiration
    }
}

/// The chain, in the aws CLI's order. Pure parts (files, JSON, words) are static functions; `resolve()` reads and runs.
public struct CredentialChain: Sendable {
    public var environment: [String: String]
    /// `--profile`: as in the aws CLI, naming a profile on the command line skips the environment's keys.
    public var profile: String?
    public var home: String
    /// Runs credential_process. Its stdout holds secrets: it must not go through a logging runner.
    public var runProcess: @Sendable (Command) -> CommandResult
    /// Each IMDS request gives up after this (botocore's default is 1 s); off an instance nothing answers.
    public var imdsTimeout: TimeInterval = 1
    public var now: @Sendable () -> Date = { Date() }

    public init(environment: [String: String], profile: String? = nil, home: String? = nil,
                runProcess: @escaping @Sendable (Command) -> CommandResult = { ProcessRunner(log: nil).run($0) }) {
        self.environment = environment
        self.profile = profile
        self.home = home ?? environment["HOME"] ?? NSHomeDirectory()
        self.runProcess = runProcess
    }

    public static let imdsDefaultEndpoint = "http://169.254.169.254"

    // MARK: - The chain

    /// The first link that has credentials; an error when none has, naming every place looked at.
    public func resolve() throws -> CredentialSource {
        if profile == nil, let keys = try fromEnvironment(environment) { return CredentialSource(keys) }
        let name = profile ?? nonEmpty(environment["AWS_PROFILE"]) ?? nonEmpty(environment["AWS_DEFAULT_PROFILE"]) ?? "default"
        let named = profile != nil || nonEmpty(environment["AWS_PROFILE"]) != nil || nonEmpty(environment["AWS_DEFAULT_PROFILE"]) != nil
        if let source = try fromProfile(name, required: named) { return source }
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() != "true" {
            let endpoint = nonEmpty(environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"]) ?? CredentialChain.imdsDefaultEndpoint
            let client = IMDSCredentials(endpoint: endpoint, timeout: imdsTimeout)
            if let first = try client.fetch() {
                let source = CredentialSource(now: now, fetch: { try client.fetch() ?? first })
                _ = try source.current()
                return source
            }
        }
        throw CredentialError("""
            none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give --profile (or AWS_PROFILE) naming a profile \
            of \(credentialsFile) or \(configFile) with keys or credential_process, or run on an EC2 instance with an IAM role
            """)
    }

    var credentialsFile: String { expand(nonEmpty(environment["AWS_SHARED_CREDENTIALS_FILE"]) ?? "~/.aws/credentials") }
    var configFile: String { expand(nonEmpty(environment["AWS_CONFIG_FILE"]) ?? "~/.aws/config") }

    func expand(_ path: String) -> String { path.hasPrefix("~/") ? home + path.dropFirst() : path }

    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (both or neither), AWS_SESSION_TOKEN if set.
    public func fromEnvironment(_ env: [String: String]) throws -> AWSCredentials? {
        let id = nonEmpty(env["AWS_ACCESS_KEY_ID"]), secret = nonEmpty(env["AWS_SECRET_ACCESS_KEY"])
        switch (id, secret) {
        case let (id?, secret?):
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: nonEmpty(env["AWS_SESSION_TOKEN"]) ?? nonEmpty(env["AWS_SECURITY_TOKEN"]),
                                  source: "the environment (AWS_ACCESS_KEY_ID)")
        case (nil, nil):
            return nil
        case (_?, nil):
            throw CredentialError("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or unset it to use a profile or the instance role")
        case (nil, _?):
            throw CredentialError("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or unset it to use a profile or the instance role")
        }
    }

    /// Profile `name` of the shared credentials file (`[name]`) and the config file (`[profile name]`, `[default]`):
    /// static keys first, then credential_process. Nil when the profile is absent and was not asked for.
    public func fromProfile(_ name: String, required: Bool) throws -> CredentialSource? {
        let credentialsText = (try? String(contentsOfFile: credentialsFile, encoding: .utf8)) ?? ""
        let configText = (try? String(contentsOfFile: configFile, encoding: .utf8)) ?? ""
        let fromCredentials = CredentialChain.ini(credentialsText)[name]
        let config = CredentialChain.ini(configText)
        let fromConfig = config[name == "default" ? "default" : "profile \(name)"] ?? (name == "default" ? config["profile default"] : nil)
        for (section, file) in [(fromCredentials, credentialsFile), (fromConfig, configFile)] {
            guard let section, let id = nonEmpty(section["aws_access_key_id"]), let secret = nonEmpty(section["aws_secret_access_key"]) else { continue }
            return CredentialSource(AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: nonEmpty(section["aws_session_token"]),
                                                   source: "profile '\(name)' (\(file))"))
        }
        for (section, file) in [(fromCredentials, credentialsFile), (fromConfig, configFile)] {
            guard let line = nonEmpty(section?["credential_process"]) else { continue }
            let words = try CredentialChain.words(line)
            guard let executable = words.first else { throw CredentialError("credential_process of profile '\(name)' in \(file) is empty") }
            let command = Command(executable, Array(words.dropFirst()))
            let run = runProcess
            let source = CredentialSource(now: now) { try CredentialChain.runCredentialProcess(command, profile: name, file: file, run: run) }
            _ = try source.current()
            return source
        }
        let other = [fromCredentials, fromConfig].compactMap { $0 }.flatMap(\.keys).filter { ["role_arn", "sso_session", "sso_start_url", "web_identity_token_file"].contains($0) }
        if let kind = other.first {
            throw CredentialError("""
                profile '\(name)' uses \(kind), which centos6-ami does not resolve itself: give that profile a credential_process, \
                or export its keys (eval "$(aws configure export-credentials --profile \(name) --format env)")
                """)
        }
        if required && fromCredentials == nil && fromConfig == nil {
            throw CredentialError("profile '\(name)' is in neither \(credentialsFile) nor \(configFile); check --profile / AWS_PROFILE")
        }
        if required {
            throw CredentialError("profile '\(name)' has no aws_access_key_id/aws_secret_access_key and no credential_process")
        }
        return nil
    }

    /// Runs a credential_process (as a command: executable and arguments, no shell) and reads its JSON.
    static func runCredentialProcess(_ command: Command, profile: String, file: String, run: (Command) -> CommandResult) throws -> AWSCredentials {
        let result = run(command)
        guard result.status == 0 else {
            let tail = result.stderrText.split(separator: "\n").suffix(3).joined(separator: " / ")
            throw CredentialError("credential_process of profile '\(profile)' (\(command.shellLine)) exited \(result.status)\(tail.isEmpty ? "" : ": \(tail)"); run it by hand to see why")
        }
        do {
            return try processOutput(result.standardOutput, source: "credential_process of profile '\(profile)'")
        } catch let error as CredentialError {
            throw CredentialError("credential_process of profile '\(profile)' (\(command.shellLine)) in \(file): \(error.reason)")
        }
    }

    // MARK: - Pure parts

    /// `[section]` → key → value; `#`/`;` comments, `key = value`, indented sub-keys ignored.
    public static func ini(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            // A nested value (`s3 =` then indented lines) belongs to the key above it: not ours.
            if raw.first == " " || raw.first == "\t" { continue }
            guard let current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            sections[current]?[key] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        return sections
    }

    /// A credential_process line split into words as botocore does (Python's shlex.split, POSIX rules):
    /// blanks separate, '…' is literal, "…" keeps \\ \" \$ \` escapes, a backslash outside quotes escapes the next character.
    public static func words(_ line: String) throws -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var chars = Array(line)[...]
        while let c = chars.popFirst() {
            switch c {
            case " ", "\t", "\n":
                if inWord { words.append(word); word = ""; inWord = false }
            case "'":
                inWord = true
                guard let end = chars.firstIndex(of: "'") else { throw CredentialError("credential_process '\(line)' has an unterminated '") }
                word += String(chars[..<end])
                chars = chars[(end + 1)...]
            case "\"":
                inWord = true
                var closed = false
                while let d = chars.popFirst() {
                    if d == "\"" { closed = true; break }
                    if d == "\\", let next = chars.first, "\\\"$`\n".contains(next) { word.append(next); chars = chars.dropFirst(); continue }
                    word.append(d)
                }
                guard closed else { throw CredentialError("credential_process '\(line)' has an unterminated \"") }
            case "\\":
                inWord = true
                if let next = chars.popFirst() { if next != "\n" { word.append(next) } }
            default:
                inWord = true
                word.append(c)
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// credential_process's answer: JSON Version 1 with AccessKeyId, SecretAccessKey, optional SessionToken and Expiration.
    public static func processOutput(_ data: Data, source: String) throws -> AWSCredentials {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CredentialError("its output is not a JSON object (it must print {\"Version\": 1, \"AccessKeyId\": ..., \"SecretAccessKey\": ...})")
        }
        guard (json["Version"] as? NSNumber)?.intValue == 1 else { throw CredentialError("its JSON has no \"Version\": 1 (the only version there is)") }
        guard let id = json["AccessKeyId"] as? String, !id.isEmpty, let secret = json["SecretAccessKey"] as? String, !secret.isEmpty else {
            throw CredentialError("its JSON lacks AccessKeyId or SecretAccessKey")
        }
        var expiration: Date?
        if let text = json["Expiration"] as? String {
            guard let date = iso8601(text) else { throw CredentialError("its Expiration '\(text)' is not an ISO 8601 time") }
            expiration = date
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: json["SessionToken"] as? String, expiration: expiration, source: source)
    }

    /// `2026-12-07T18:00:00Z`, with or without fractional seconds.
    public static func iso8601(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

func nonEmpty(_ value: String?) -> String? {
    guard let value, !value.isEmpty else { return nil }
    return value
}

/// The instance role's credentials through IMDSv2: a token (PUT /latest/api/token with a TTL), the
/// role's name (GET …/iam/security-credentials/), then its keys (GET …/iam/security-credentials/ROLE).
public struct IMDSCredentials: Sendable {
    public var endpoint: String
    public var timeout: TimeInterval
    public static let tokenTTL = 21600
    public static let rolesPath = "/latest/meta-data/iam/security-credentials/"

    public init(endpoint: String, timeout: TimeInterval) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.timeout = timeout
    }

    /// The role's credentials; nil when no metadata service answers (not an EC2 instance).
    public func fetch() throws -> AWSCredentials? {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.urlCache = nil
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        guard let tokenURL = URL(string: endpoint + "/latest/api/token") else {
            throw CredentialError("AWS_EC2_METADATA_SERVICE_ENDPOINT '\(endpoint)' is not a URL")
        }
        var put = URLRequest(url: tokenURL)
        put.httpMethod = "PUT"
        put.setValue(String(IMDSCredentials.tokenTTL), forHTTPHeaderField: "X-aws-ec2-metadata-token-ttl-seconds")
        guard case let .success(tokenAnswer) = HTTPExchange.perform(session, put, body: nil) else { return nil }
        guard tokenAnswer.status == 200 else {
            throw CredentialError("the instance metadata service at \(endpoint) answered HTTP \(tokenAnswer.status) to the IMDSv2 token request; check the instance's metadata options (http-tokens, hop limit)")
        }
        let token = String(decoding: tokenAnswer.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let roles = try get(IMDSCredentials.rolesPath, token: token, session: session, missing: "this instance has no IAM role (attach an instance profile with ebs:PutSnapshotBlock, or set AWS_ACCESS_KEY_ID / --profile)")
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw CredentialError("this instance has no IAM role (attach an instance profile, or set AWS_ACCESS_KEY_ID / --profile)")
        }
        let body = try get(IMDSCredentials.rolesPath + role, token: token, session: session, missing: "the role '\(role)' has no credentials at \(endpoint)")
        return try IMDSCredentials.parse(Data(body.utf8), role: role)
    }

    func get(_ path: String, token: String, session: URLSession, missing: String) throws -> String {
        guard let url = URL(string: endpoint + path) else { throw CredentialError("'\(endpoint + path)' is not a URL") }
        var request = URLRequest(url: url)
        request.setValue(token, forHTTPHeaderField: "X-aws-ec2-metadata-token")
        switch HTTPExchange.perform(session, request, body: nil) {
        case let .failure(error):
            throw CredentialError("the instance metadata service at \(endpoint) did not answer GET \(path): \(error.localizedDescription)")
        case let .success(answer):
            if answer.status == 404 { throw CredentialError(missing) }
            guard answer.status == 200 else { throw CredentialError("the instance metadata service at \(endpoint) answered HTTP \(answer.status) to GET \(path)") }
            return String(decoding: answer.body, as: UTF8.self)
        }
    }

    /// The role document: Code "Success", AccessKeyId, SecretAccessKey, Token, Expiration.
    public static func parse(_ data: Data, role: String) throws -> AWSCredentials {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CredentialError("the instance role '\(role)''s credentials are not JSON")
        }
        guard json["Code"] as? String == "Success" else {
            throw CredentialError("the instance role '\(role)''s credentials are not usable (Code \(json["Code"] as? String ?? "missing"))")
        }
        guard let id = json["AccessKeyId"] as? String, let secret = json["SecretAccessKey"] as? String else {
            throw CredentialError("the instance role '\(role)''s credentials lack AccessKeyId or SecretAccessKey")
        }
        let expiration = (json["Expiration"] as? String).flatMap(CredentialChain.iso8601)
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: json["Token"] as? String, expiration: expiration,
                              source: "the instance role '\(role)' (IMDSv2)")
    }
}
