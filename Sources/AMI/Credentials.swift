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
public indirect enum CredentialError: ToolError, Equatable, Sendable {
    /// Nothing in the chain: no environment keys, no profile, no instance role.
    case noneFound(credentialsFile: String, configFile: String)
    /// One of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY without the other.
    case environmentHalfSet(set: String, missing: String)
    case emptyCredentialProcess(profile: String, file: String)
    /// A profile kind (role_arn, SSO, web identity) the aws CLI resolves and we do not.
    case unresolvedProfileKind(profile: String, kind: String)
    case profileMissing(profile: String, credentialsFile: String, configFile: String)
    case profileWithoutKeys(profile: String)
    case credentialProcessFailed(profile: String, command: String, status: Int32, stderrTail: String)
    /// A credential_process's output is not credentials (`problem`: one of the output cases).
    case credentialProcessOutput(profile: String, command: String, file: String, problem: CredentialError)
    case unterminatedQuote(line: String, quote: Character)
    case outputNotJSONObject
    case outputVersionMissing
    case outputLacksKeys
    case outputBadExpiration(String)
    case badMetadataEndpoint(String)
    case tokenRefused(endpoint: String, status: Int)
    /// The metadata service has no role for this instance (404).
    case noRole
    /// The metadata service lists no role.
    case roleListEmpty
    case badMetadataURL(String)
    case metadataUnreachable(endpoint: String, path: String, reason: String)
    case roleWithoutCredentials(role: String, endpoint: String)
    case metadataStatus(endpoint: String, status: Int, path: String)
    case roleCredentialsNotJSON(role: String)
    case roleCredentialsUnusable(role: String, code: String)
    case roleCredentialsLackKeys(role: String)

    public var failure: String { "credentials for the block upload" }
    public var reason: String? { detail.reason }
    public var remedy: String? { detail.remedy }

    private var detail: (reason: String, remedy: String?) {
        switch self {
        case let .noneFound(credentialsFile, configFile):
            return (
                "none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give --profile (or AWS_PROFILE) naming a profile "
                    + "of \(credentialsFile) or \(configFile) with keys or credential_process, or run on an EC2 instance with an IAM role", nil
            )
        case let .environmentHalfSet(set, missing):
            return ("\(set) is set but \(missing) is not: set both, or unset it to use a profile or the instance role", nil)
        case let .emptyCredentialProcess(profile, file):
            return ("credential_process of profile '\(profile)' in \(file) is empty", nil)
        case let .unresolvedProfileKind(profile, kind):
            return (
                "profile '\(profile)' uses \(kind), which centos6-ami does not resolve itself: give that profile a credential_process, "
                    + "or export its keys (eval \"$(aws configure export-credentials --profile \(profile) --format env)\")", nil
            )
        case let .profileMissing(profile, credentialsFile, configFile):
            return ("profile '\(profile)' is in neither \(credentialsFile) nor \(configFile)", "check --profile / AWS_PROFILE")
        case let .profileWithoutKeys(profile):
            return ("profile '\(profile)' has no aws_access_key_id/aws_secret_access_key and no credential_process", nil)
        case let .credentialProcessFailed(profile, command, status, tail):
            return ("credential_process of profile '\(profile)' (\(command)) exited \(status)\(tail.isEmpty ? "" : ": \(tail)")", "run it by hand to see why")
        case let .credentialProcessOutput(profile, command, file, problem):
            return ("credential_process of profile '\(profile)' (\(command)) in \(file): " + (problem.reason ?? ""), problem.remedy)
        case let .unterminatedQuote(line, quote):
            return ("credential_process '\(line)' has an unterminated \(quote)", nil)
        case .outputNotJSONObject:
            return ("its output is not a JSON object (it must print {\"Version\": 1, \"AccessKeyId\": ..., \"SecretAccessKey\": ...})", nil)
        case .outputVersionMissing:
            return ("its JSON has no \"Version\": 1 (the only version there is)", nil)
        case .outputLacksKeys:
            return ("its JSON lacks AccessKeyId or SecretAccessKey", nil)
        case let .outputBadExpiration(text):
            return ("its Expiration '\(text)' is not an ISO 8601 time", nil)
        case let .badMetadataEndpoint(endpoint):
            return ("AWS_EC2_METADATA_SERVICE_ENDPOINT '\(endpoint)' is not a URL", nil)
        case let .tokenRefused(endpoint, status):
            return (
                "the instance metadata service at \(endpoint) answered HTTP \(status) to the IMDSv2 token request",
                "check the instance's metadata options (http-tokens, hop limit)"
            )
        case .noRole:
            return ("this instance has no IAM role (attach an instance profile with ebs:PutSnapshotBlock, or set AWS_ACCESS_KEY_ID / --profile)", nil)
        case .roleListEmpty:
            return ("this instance has no IAM role (attach an instance profile, or set AWS_ACCESS_KEY_ID / --profile)", nil)
        case let .badMetadataURL(url):
            return ("'\(url)' is not a URL", nil)
        case let .metadataUnreachable(endpoint, path, reason):
            return ("the instance metadata service at \(endpoint) did not answer GET \(path): \(reason)", nil)
        case let .roleWithoutCredentials(role, endpoint):
            return ("the role '\(role)' has no credentials at \(endpoint)", nil)
        case let .metadataStatus(endpoint, status, path):
            return ("the instance metadata service at \(endpoint) answered HTTP \(status) to GET \(path)", nil)
        case let .roleCredentialsNotJSON(role):
            return ("the instance role '\(role)''s credentials are not JSON", nil)
        case let .roleCredentialsUnusable(role, code):
            return ("the instance role '\(role)''s credentials are not usable (Code \(code))", nil)
        case let .roleCredentialsLackKeys(role):
            return ("the instance role '\(role)''s credentials lack AccessKeyId or SecretAccessKey", nil)
        }
    }
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

    public init(
        environment: [String: String], profile: String? = nil, home: String? = nil,
        runProcess: @escaping @Sendable (Command) -> CommandResult = { ProcessRunner(log: nil).run($0) }
    ) {
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
        throw CredentialError.noneFound(credentialsFile: credentialsFile, configFile: configFile)
    }

    var credentialsFile: String { expand(nonEmpty(environment["AWS_SHARED_CREDENTIALS_FILE"]) ?? "~/.aws/credentials") }
    var configFile: String { expand(nonEmpty(environment["AWS_CONFIG_FILE"]) ?? "~/.aws/config") }

    func expand(_ path: String) -> String { path.hasPrefix("~/") ? home + path.dropFirst() : path }

    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (both or neither), AWS_SESSION_TOKEN if set.
    public func fromEnvironment(_ env: [String: String]) throws -> AWSCredentials? {
        let id = nonEmpty(env["AWS_ACCESS_KEY_ID"]), secret = nonEmpty(env["AWS_SECRET_ACCESS_KEY"])
        switch (id, secret) {
        case let (id?, secret?):
            return AWSCredentials(
                accessKeyID: id, secretAccessKey: secret, sessionToken: nonEmpty(env["AWS_SESSION_TOKEN"]) ?? nonEmpty(env["AWS_SECURITY_TOKEN"]),
                source: "the environment (AWS_ACCESS_KEY_ID)")
        case (nil, nil):
            return nil
        case (_?, nil):
            throw CredentialError.environmentHalfSet(set: "AWS_ACCESS_KEY_ID", missing: "AWS_SECRET_ACCESS_KEY")
        case (nil, _?):
            throw CredentialError.environmentHalfSet(set: "AWS_SECRET_ACCESS_KEY", missing: "AWS_ACCESS_KEY_ID")
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
            return CredentialSource(
                AWSCredentials(
                    accessKeyID: id, secretAccessKey: secret, sessionToken: nonEmpty(section["aws_session_token"]),
                    source: "profile '\(name)' (\(file))"))
        }
        for (section, file) in [(fromCredentials, credentialsFile), (fromConfig, configFile)] {
            guard let line = nonEmpty(section?["credential_process"]) else { continue }
            let words = try CredentialChain.words(line)
            guard let executable = words.first else { throw CredentialError.emptyCredentialProcess(profile: name, file: file) }
            let command = Command(executable, Array(words.dropFirst()))
            let run = runProcess
            let source = CredentialSource(now: now) { try CredentialChain.runCredentialProcess(command, profile: name, file: file, run: run) }
            _ = try source.current()
            return source
        }
        let other = [fromCredentials, fromConfig].compactMap { $0 }.flatMap(\.keys).filter {
            ["role_arn", "sso_session", "sso_start_url", "web_identity_token_file"].contains($0)
        }
        if let kind = other.first {
            throw CredentialError.unresolvedProfileKind(profile: name, kind: kind)
        }
        if required && fromCredentials == nil && fromConfig == nil {
            throw CredentialError.profileMissing(profile: name, credentialsFile: credentialsFile, configFile: configFile)
        }
        if required {
            throw CredentialError.profileWithoutKeys(profile: name)
        }
        return nil
    }

    /// Runs a credential_process (as a command: executable and arguments, no shell) and reads its JSON.
    static func runCredentialProcess(_ command: Command, profile: String, file: String, run: (Command) -> CommandResult) throws -> AWSCredentials {
        let result = run(command)
        guard result.status == 0 else {
            let tail = result.stderrText.split(separator: "\n").suffix(3).joined(separator: " / ")
            throw CredentialError.credentialProcessFailed(profile: profile, command: command.shellLine, status: result.status, stderrTail: tail)
        }
        do {
            return try processOutput(result.standardOutput, source: "credential_process of profile '\(profile)'")
        } catch let error as CredentialError {
            throw CredentialError.credentialProcessOutput(profile: profile, command: command.shellLine, file: file, problem: error)
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
                guard let end = chars.firstIndex(of: "'") else { throw CredentialError.unterminatedQuote(line: line, quote: "'") }
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
                guard closed else { throw CredentialError.unterminatedQuote(line: line, quote: "\"") }
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
            throw CredentialError.outputNotJSONObject
        }
        guard (json["Version"] as? NSNumber)?.intValue == 1 else { throw CredentialError.outputVersionMissing }
        guard let id = json["AccessKeyId"] as? String, !id.isEmpty, let secret = json["SecretAccessKey"] as? String, !secret.isEmpty else {
            throw CredentialError.outputLacksKeys
        }
        var expiration: Date?
        if let text = json["Expiration"] as? String {
            guard let date = iso8601(text) else { throw CredentialError.outputBadExpiration(text) }
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
            throw CredentialError.badMetadataEndpoint(endpoint)
        }
        var put = URLRequest(url: tokenURL)
        put.httpMethod = "PUT"
        put.setValue(String(IMDSCredentials.tokenTTL), forHTTPHeaderField: "X-aws-ec2-metadata-token-ttl-seconds")
        guard case let .success(tokenAnswer) = HTTPExchange.perform(session, put, body: nil) else { return nil }
        guard tokenAnswer.status == 200 else {
            throw CredentialError.tokenRefused(endpoint: endpoint, status: tokenAnswer.status)
        }
        let token = String(decoding: tokenAnswer.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let roles = try get(IMDSCredentials.rolesPath, token: token, session: session, missing: .noRole)
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw CredentialError.roleListEmpty
        }
        let body = try get(IMDSCredentials.rolesPath + role, token: token, session: session, missing: .roleWithoutCredentials(role: role, endpoint: endpoint))
        return try IMDSCredentials.parse(Data(body.utf8), role: role)
    }

    func get(_ path: String, token: String, session: URLSession, missing: CredentialError) throws -> String {
        guard let url = URL(string: endpoint + path) else { throw CredentialError.badMetadataURL(endpoint + path) }
        var request = URLRequest(url: url)
        request.setValue(token, forHTTPHeaderField: "X-aws-ec2-metadata-token")
        switch HTTPExchange.perform(session, request, body: nil) {
        case let .failure(error):
            throw CredentialError.metadataUnreachable(endpoint: endpoint, path: path, reason: error.localizedDescription)
        case let .success(answer):
            if answer.status == 404 { throw missing }
            guard answer.status == 200 else { throw CredentialError.metadataStatus(endpoint: endpoint, status: answer.status, path: path) }
            return String(decoding: answer.body, as: UTF8.self)
        }
    }

    /// The role document: Code "Success", AccessKeyId, SecretAccessKey, Token, Expiration.
    public static func parse(_ data: Data, role: String) throws -> AWSCredentials {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CredentialError.roleCredentialsNotJSON(role: role)
        }
        guard json["Code"] as? String == "Success" else {
            throw CredentialError.roleCredentialsUnusable(role: role, code: json["Code"] as? String ?? "missing")
        }
        guard let id = json["AccessKeyId"] as? String, let secret = json["SecretAccessKey"] as? String else {
            throw CredentialError.roleCredentialsLackKeys(role: role)
        }
        let expiration = (json["Expiration"] as? String).flatMap(CredentialChain.iso8601)
        return AWSCredentials(
            accessKeyID: id, secretAccessKey: secret, sessionToken: json["Token"] as? String, expiration: expiration,
            source: "the instance role '\(role)' (IMDSv2)")
    }
}
