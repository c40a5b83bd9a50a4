@testable import AMI
import Foundation
import Host
import Testing
import VM

/// The block upload's credential chain: the environment, a profile of the shared files
/// (static keys, credential_process), the instance role through IMDSv2 (the tool's own IMDS, VM/IMDS.swift).
@Suite(.serialized) struct CredentialsTests {
    /// A temporary HOME with ~/.aws/credentials and ~/.aws/config.
    func home(credentials: String = "", config: String = "") throws -> String {
        let dir = NSTemporaryDirectory() + "creds-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/.aws", withIntermediateDirectories: true)
        try credentials.write(toFile: dir + "/.aws/credentials", atomically: true, encoding: .utf8)
        try config.write(toFile: dir + "/.aws/config", atomically: true, encoding: .utf8)
        return dir
    }

    /// No IMDS: these tests never reach 169.254.169.254.
    let offInstance = ["AWS_EC2_METADATA_DISABLED": "true"]

    @Test func theEnvironmentComesFirst() throws {
        let dir = try home(credentials: "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let env = offInstance.merging(["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token"]) { $1 }
        let keys = try CredentialChain(environment: env, home: dir).resolve().current()
        #expect(keys.accessKeyID == "AKIDENV" && keys.secretAccessKey == "env-secret" && keys.sessionToken == "env-token")
        #expect(keys.source.contains("environment"))
        // Half a key pair is an error that says which half is missing.
        #expect(throws: CredentialError.self) { try CredentialChain(environment: ["AWS_ACCESS_KEY_ID": "A"], home: dir).resolve() }
    }

    @Test func aProfileOfTheSharedFilesStaticKeys() throws {
        let dir = try home(
            credentials: """
                [default]
                aws_access_key_id = AKIDDEFAULT
                aws_secret_access_key = default-secret

                # a comment
                [build]
                aws_access_key_id=AKIDBUILD
                aws_secret_access_key=build-secret
                aws_session_token = build-token
                """,
            config: """
                [profile other]
                region = eu-west-1
                aws_access_key_id = AKIDCONFIG
                aws_secret_access_key = config-secret
                s3 =
                  max_concurrent_requests = 20
                """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CredentialChain(environment: offInstance, home: dir).resolve().current().accessKeyID == "AKIDDEFAULT")
        let build = try CredentialChain(environment: offInstance, profile: "build", home: dir).resolve().current()
        #expect(build.accessKeyID == "AKIDBUILD" && build.secretAccessKey == "build-secret" && build.sessionToken == "build-token")
        #expect(
            try CredentialChain(environment: offInstance.merging(["AWS_PROFILE": "other"]) { $1 }, home: dir).resolve().current().accessKeyID == "AKIDCONFIG")
        // --profile skips the environment's keys, as the aws CLI does.
        let env = offInstance.merging(["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"]) { $1 }
        #expect(try CredentialChain(environment: env, profile: "build", home: dir).resolve().current().accessKeyID == "AKIDBUILD")
        // AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files.
        let moved = offInstance.merging(["AWS_SHARED_CREDENTIALS_FILE": dir + "/.aws/config", "AWS_CONFIG_FILE": "/dev/null"]) { $1 }
        #expect(throws: CredentialError.self) { try CredentialChain(environment: moved, profile: "build", home: dir).resolve() }
        // A profile that is not there is named, with the files looked in.
        do {
            _ = try CredentialChain(environment: offInstance, profile: "missing", home: dir).resolve()
            Issue.record("resolved a missing profile")
        } catch let error as CredentialError {
            #expect(error.description.contains("profile 'missing' is in neither \(dir)/.aws/credentials nor \(dir)/.aws/config"), "\(error)")
        }
    }

    @Test func credentialProcessIsRunAsACommandAndItsJSONRead() throws {
        let script = NSTemporaryDirectory() + "cred-process-\(UUID().uuidString.prefix(8)).sh"
        try """
        #!/bin/sh
        # $1 is the profile word, passed as one argument (quotes in the config line)
        [ "$1" = "my build" ] || { echo "bad argument: $1" >&2; exit 3; }
        echo '{"Version": 1, "AccessKeyId": "AKIDPROCESS", "SecretAccessKey": "process-secret", "SessionToken": "process-token", "Expiration": "2099-01-01T00:00:00Z"}'
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        defer { unlink(script) }
        let dir = try home(config: "[profile proc]\ncredential_process = \(script) \"my build\"\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ran = Locked<[Command]>([])
        var chain = CredentialChain(environment: offInstance, profile: "proc", home: dir)
        chain.runProcess = { command in
            ran.withLock { $0.append(command) }
            return ProcessRunner(log: nil, environment: ["PATH": "/usr/bin:/bin"]).run(command)
        }
        let keys = try chain.resolve().current()
        #expect(keys.accessKeyID == "AKIDPROCESS" && keys.secretAccessKey == "process-secret" && keys.sessionToken == "process-token")
        #expect(keys.expiration == CredentialChain.iso8601("2099-01-01T00:00:00Z"))
        #expect(ran.value == [Command(script, ["my build"])], "executable and arguments, no shell")

        // A failing process: its exit status and stderr, never its stdout.
        let bad = try home(config: "[profile proc]\ncredential_process = \(script) other\n")
        defer { try? FileManager.default.removeItem(atPath: bad) }
        #expect(throws: CredentialError.self) { try CredentialChain(environment: offInstance, profile: "proc", home: bad).resolve() }
    }

    @Test func credentialProcessLinesSplitAsBotocoreSplitsThem() throws {
        #expect(
            try CredentialChain.words(#"/opt/bin/get-creds --profile 'a b' "c \" d" e\ f"#) == ["/opt/bin/get-creds", "--profile", "a b", #"c " d"#, "e f"])
        #expect(try CredentialChain.words("  x  ") == ["x"])
        #expect(throws: CredentialError.self) { try CredentialChain.words("x 'open") }
        #expect(throws: CredentialError.self) {
            try CredentialChain.processOutput(Data(#"{"Version": 2, "AccessKeyId": "a", "SecretAccessKey": "b"}"#.utf8), source: "t")
        }
        #expect(CredentialChain.ini("[a]\nk = v = w\n[b]\n")["a"]?["k"] == "v = w")
    }

    @Test func theInstanceRoleThroughIMDSv2AndItsRefreshBeforeExpiration() throws {
        // Expires in 5 minutes: inside the 10-minute refresh margin, so every use fetches again.
        let role = IMDSRole(
            name: "builder-role", accessKeyID: "ASIAROLE", secretAccessKey: "role-secret", token: "role-token",
            expiration: Date().addingTimeInterval(300))
        var settings = IMDSSettings()
        settings.role = role
        let server = IMDSServer(settings: settings)
        let port = try server.start()
        defer { server.stop() }
        let dir = try home()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let env = ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(port)"]
        let source = try CredentialChain(environment: env, home: dir).resolve()
        let keys = try source.current()
        #expect(keys.accessKeyID == "ASIAROLE" && keys.secretAccessKey == "role-secret" && keys.sessionToken == "role-token")
        #expect(keys.source == "the instance role 'builder-role' (IMDSv2)")
        let requests = server.service.requests
        #expect(requests.first?.method == "PUT" && requests.first?.path == IMDSService.tokenPath && requests.first?.ttl == "21600")
        #expect(requests.filter { $0.method == "GET" }.allSatisfy { $0.tokenValid }, "every GET with a valid token")
        #expect(requests.map(\.path).contains("/latest/meta-data/iam/security-credentials/builder-role"))
        let fetches = { server.service.requests.filter { $0.path.hasSuffix("/builder-role") }.count }
        let before = fetches()
        _ = try source.current()
        #expect(fetches() == before + 1, "fetched again: they expire within the margin")
        // Credentials far from expiry are reused.
        server.service.update { $0.role?.expiration = Date().addingTimeInterval(6 * 3600) }
        _ = try source.current()
        let settled = fetches()
        _ = try source.current()
        #expect(fetches() == settled)

        // An instance without a role: the error says so and what to do.
        server.service.update { $0.role = nil }
        #expect(throws: CredentialError.self) { try CredentialChain(environment: env, home: dir).resolve() }
        // Nothing listening (not an instance): the chain's own error, naming every place.
        do {
            _ = try CredentialChain(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1"], home: dir).resolve()
            Issue.record("resolved without any credentials")
        } catch let error as CredentialError {
            #expect(error.description.contains("none found: set AWS_ACCESS_KEY_ID"), "\(error)")
        }
    }
}
