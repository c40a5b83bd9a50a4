import Foundation
import Templates
import Testing

/// The rendered rc.local, executed under `sh` (and bash, busybox sh) as at a
/// first boot: in a network namespace of its own where 169.254.169.254 is a
/// local address served by the tool's own IMDSv2 service run as a process
/// (imds-serve, Sources/imds-serve/main.swift), and in a private
/// mount namespace (scripts/testvault/netns-sandbox.sh) where /etc, /home,
/// /var/lock, /var/log and /var/mail are copies, so its real `useradd` never
/// touches the host's accounts. The address stays fixed in the script.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct RcLocalTests {
    static let keyLine = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2yXc0vY3Yk7d8m0tq9bCzl5Gf0mJ8m4R6w1aQe4s0T launch@test"
    static let otherKeyLine = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7otherkeyotherkeyotherkey== other@test"
    /// The time bound of one boot (the script gives up after about 55 s of requests).
    static let bound: TimeInterval = 70

    struct Boot {
        var status: Int32
        var elapsed: TimeInterval
        var stderr: String
        /// The service's JSON log: one object per connection refused or request answered.
        var events: [[String: Any]]
        var requests: [[String: Any]] { events.filter { $0["event"] as? String == "request" } }
        var summary: [String] { requests.map { "\($0["method"] ?? "") \($0["path"] ?? "") \($0["status"] ?? "")" } }
    }

    /// One simulated instance: a network namespace with the metadata address,
    /// and a state directory that survives between its boots.
    final class Instance {
        let ns = "c6t-\(UUID().uuidString.prefix(8).lowercased())"
        let dir: String
        var root: String { dir + "/root" }
        var home: String { root + "/home/ec2-user" }
        var keys: String { home + "/.ssh/authorized_keys" }
        private var nsCreated = false

        init() throws {
            dir = try Integration.scratchDirectory("rclocal")
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try RcLocal.script.write(toFile: dir + "/rc.local", atomically: true, encoding: .utf8)
            try Self.ip(["netns", "add", ns])
            nsCreated = true
            try Self.ip(["-n", ns, "link", "set", "lo", "up"])
            try Self.ip(["-n", ns, "addr", "add", "169.254.169.254/32", "dev", "lo"])
        }

        /// Deletes the namespace and the state directory (it holds a copy of /etc).
        func destroy() {
            if nsCreated { _ = try? Integration.run("/usr/sbin/ip", ["netns", "delete", ns]) }
            try? FileManager.default.removeItem(atPath: dir)
        }

        static func ip(_ args: [String]) throws {
            let r = try Integration.run("/usr/sbin/ip", args)
            guard r.status == 0 else { throw Failure("ip \(args.joined(separator: " ")): \(r.stderr)") }
        }

        /// Starts imds-serve in the namespace (serving `key`, with these fault flags), boots once, stops it.
        func boot(key: String?, imds flags: [String] = [], shell: [String] = ["sh"]) throws -> Boot {
            let n = UUID().uuidString.prefix(6)
            let log = dir + "/imds-\(n).json", portFile = dir + "/imds-\(n).port"
            var args =
                [
                    "netns", "exec", ns, Integration.imdsServe,
                    "--bind", "169.254.169.254", "--port", "80", "--log", log, "--port-file", portFile,
                ] + flags
            if let key {
                let keyFile = dir + "/key-\(n).pub"
                try key.write(toFile: keyFile, atomically: true, encoding: .utf8)
                args += ["--key", keyFile]
            }
            // `ip netns exec` execs the program itself: the PID is the service's.
            let imds = try BackgroundProcess("/usr/sbin/ip", args)
            defer {
                // SIGKILL by PID: nothing is lost, the service rewrites its log
                // atomically after each event, and it holds nothing outside the
                // namespace, which is deleted next.
                imds.signal(SIGKILL)
                _ = imds.wait(timeout: 10)
            }
            let deadline = Date().addingTimeInterval(15)
            while !FileManager.default.fileExists(atPath: portFile) {
                guard imds.process.isRunning, Date() < deadline else { throw Failure("imds-serve did not start: \(imds.stderr)") }
                usleep(50_000)
            }
            let start = Date()
            let r = try Integration.run(
                "/usr/sbin/ip",
                [
                    "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
                    "sh", Integration.repoRoot.path + "/scripts/testvault/netns-sandbox.sh", root,
                ]
                    + shell + [dir + "/rc.local"])
            let elapsed = Date().timeIntervalSince(start)
            let data = try Data(contentsOf: URL(fileURLWithPath: log))
            let events = (try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
            print("rc.local \(shell.joined(separator: " ")) \(flags.joined(separator: " ")): exit \(r.status) in \(String(format: "%.2f", elapsed)) s")
            return Boot(status: r.status, elapsed: elapsed, stderr: r.stderr, events: events)
        }

        /// uid and gid of ec2-user in the instance's own /etc/passwd.
        func ec2User() throws -> (uid: UInt32, gid: UInt32)? {
            let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
            for line in passwd.split(separator: "\n") {
                let f = line.split(separator: ":", omittingEmptySubsequences: false)
                if f.count >= 4, f[0] == "ec2-user", let uid = UInt32(f[2]), let gid = UInt32(f[3]) { return (uid, gid) }
            }
            return nil
        }

        func attributes(_ path: String) throws -> (mode: Int, uid: UInt32, gid: UInt32, inode: UInt64) {
            let a = try FileManager.default.attributesOfItem(atPath: path)
            return (
                (a[.posixPermissions] as? Int) ?? -1, UInt32((a[.ownerAccountID] as? NSNumber)?.uint32Value ?? .max),
                UInt32((a[.groupOwnerAccountID] as? NSNumber)?.uint32Value ?? .max), (a[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            )
        }
    }

    struct Failure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    /// Runs `body` on a fresh instance; always deletes it, and checks the host was not touched.
    func withInstance(_ body: (Instance) throws -> Void) throws {
        let passwdBefore = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
        let instance = try Instance()
        defer {
            instance.destroy()
            #expect(Integration.mounts(under: instance.dir).isEmpty, "the sandbox's mounts stayed in its namespace")
            #expect((try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) == passwdBefore, "the host's /etc/passwd is untouched")
            #expect((try? Integration.run("/usr/sbin/ip", ["netns", "list"]).stdout.contains(instance.ns)) == false, "namespace deleted")
        }
        try body(instance)
    }

    /// The checks every boot shares: within the bound, no tokenless GET, every GET with a token.
    func expectSound(_ boot: Boot, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(boot.elapsed < Self.bound, "took \(boot.elapsed) s", sourceLocation: sourceLocation)
        let tokenless = boot.requests.filter { $0["method"] as? String != "PUT" && $0["token"] as? Bool != true }
        #expect(tokenless.isEmpty, "requests without a token: \(tokenless)", sourceLocation: sourceLocation)
        let puts = boot.requests.filter { $0["method"] as? String == "PUT" }
        #expect(puts.allSatisfy { $0["ttl"] as? String == "21600" }, "\(puts)", sourceLocation: sourceLocation)
    }

    /// authorized_keys holds exactly `key` (one line), 0600, ec2-user's; ~/.ssh 0700, ec2-user's.
    func expectInstalled(_ instance: Instance, _ key: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect((try? String(contentsOfFile: instance.keys, encoding: .utf8)) == key + "\n", sourceLocation: sourceLocation)
        let user = try #require(try instance.ec2User(), "rc.local created ec2-user in the instance's /etc/passwd", sourceLocation: sourceLocation)
        let file = try instance.attributes(instance.keys), ssh = try instance.attributes(instance.home + "/.ssh")
        #expect(file.mode == 0o600 && file.uid == user.uid && file.gid == user.gid, "\(file)", sourceLocation: sourceLocation)
        #expect(ssh.mode == 0o700 && ssh.uid == user.uid && ssh.gid == user.gid, "\(ssh)", sourceLocation: sourceLocation)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: instance.home + "/.ssh").filter { $0 != "authorized_keys" }
        #expect(leftovers.isEmpty, "no temporary file left: \(leftovers)", sourceLocation: sourceLocation)
    }

    /// One boot serving the key (under these faults) that must exit 0, pass
    /// `expectSound`, make exactly `requests` and install the key.
    @discardableResult
    func bootInstallingTheKey(
        _ instance: Instance, key: String = RcLocalTests.keyLine + "\n", imds flags: [String] = [],
        shell: [String] = ["sh"], requests: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Boot {
        let boot = try instance.boot(key: key, imds: flags, shell: shell)
        #expect(boot.status == 0, "\(boot.stderr)", sourceLocation: sourceLocation)
        expectSound(boot, sourceLocation: sourceLocation)
        #expect(boot.summary == requests, sourceLocation: sourceLocation)
        try expectInstalled(instance, Self.keyLine, sourceLocation: sourceLocation)
        return boot
    }

    @Test func scriptParsesUnderEveryShell() throws {
        let file = try Integration.scratchDirectory("rclocal-syntax") + "/rc.local"
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) }
        try RcLocal.script.write(toFile: file, atomically: true, encoding: .utf8)
        for shell in [["/bin/sh", "-n"], ["/bin/bash", "-n"], ["/bin/bash", "--posix", "-n"], ["/bin/busybox", "sh", "-n"]] {
            let r = try Integration.run(shell[0], Array(shell.dropFirst()) + [file])
            #expect(r.status == 0, "\(shell): \(r.stderr)")
        }
    }

    @Test(arguments: [["sh"], ["bash"], ["busybox", "sh"]])
    func keyPresent(shell: [String]) throws {
        try withInstance { instance in
            try bootInstallingTheKey(
                instance, shell: shell,
                requests: ["PUT /latest/api/token 200", "GET /latest/meta-data/public-keys/0/openssh-key 200"])
        }
    }

    @Test func noKeyAtLaunchEndsQuietly() throws {
        try withInstance { instance in
            let boot = try instance.boot(key: nil)
            #expect(boot.status == 0, "\(boot.stderr)")
            expectSound(boot)
            #expect(boot.summary == ["PUT /latest/api/token 200", "GET /latest/meta-data/public-keys/0/openssh-key 404"], "no retry of a 404")
            #expect(!FileManager.default.fileExists(atPath: instance.keys), "nothing written")
            #expect(try instance.attributes(instance.home + "/.ssh").mode == 0o700, "~/.ssh is made anyway")
        }
    }

    @Test func refusedFirstThreeConnections() throws {
        try withInstance { instance in
            let boot = try bootInstallingTheKey(
                instance, key: Self.keyLine, imds: ["--refuse-first", "3"],
                requests: ["PUT /latest/api/token 200", "GET /latest/meta-data/public-keys/0/openssh-key 200"])
            #expect(boot.events.filter { $0["event"] as? String == "refused" }.count == 3)
        }
    }

    @Test func one503() throws {
        try withInstance { instance in
            try bootInstallingTheKey(
                instance, imds: ["--fail-first", "1"],
                requests: [
                    "PUT /latest/api/token 503", "PUT /latest/api/token 200", "GET /latest/meta-data/public-keys/0/openssh-key 200",
                ])
        }
    }

    @Test func tokenExpiresBetweenPutAndGet() throws {
        try withInstance { instance in
            try bootInstallingTheKey(
                instance, imds: ["--expire-tokens", "1"],
                requests: [
                    "PUT /latest/api/token 200", "GET /latest/meta-data/public-keys/0/openssh-key 401",
                    "PUT /latest/api/token 200", "GET /latest/meta-data/public-keys/0/openssh-key 200",
                ])
        }
    }

    @Test func secondBootWritesNothing() throws {
        try withInstance { instance in
            let first = try instance.boot(key: Self.keyLine + "\n")
            #expect(first.status == 0, "\(first.stderr)")
            try expectInstalled(instance, Self.keyLine)
            let before = try instance.attributes(instance.keys)
            let modified = try FileManager.default.attributesOfItem(atPath: instance.keys)[.modificationDate] as? Date
            // Same instance, a metadata service now offering another key.
            let second = try instance.boot(key: Self.otherKeyLine + "\n")
            #expect(second.status == 0, "\(second.stderr)")
            expectSound(second)
            #expect(second.requests.isEmpty, "no request at all once the key is installed: \(second.summary)")
            try expectInstalled(instance, Self.keyLine)
            #expect(try instance.attributes(instance.keys).inode == before.inode, "the file was not rewritten")
            #expect(try FileManager.default.attributesOfItem(atPath: instance.keys)[.modificationDate] as? Date == modified)
        }
    }

    @Test(arguments: ["not a key\n", "ssh-rsa AAAA first\nssh-rsa BBBB second\n", "ssh-rsa AAAA;rm -rf /\n", "\n"])
    func malformedKeyIsNotInstalled(body: String) throws {
        try withInstance { instance in
            let boot = try instance.boot(key: body)
            #expect(boot.status == 1, "\(boot.stderr)")
            expectSound(boot)
            #expect(boot.stderr.contains("not installed"), "\(boot.stderr)")
            #expect(!FileManager.default.fileExists(atPath: instance.keys))
            #expect(try FileManager.default.contentsOfDirectory(atPath: instance.home + "/.ssh").isEmpty, "no temporary file left")
        }
    }

    /// A metadata service that accepts connections and never answers in time:
    /// every call times out at 5 s; the script gives up within the bound.
    @Test func neverAnsweringServiceIsGivenUpWithinTheBound() throws {
        try withInstance { instance in
            let boot = try instance.boot(key: Self.keyLine, imds: ["--delay", "8"])
            #expect(boot.status == 1, "\(boot.stderr)")
            expectSound(boot)
            #expect(boot.elapsed > 45, "it kept trying for most of a minute (\(boot.elapsed) s)")
            #expect(boot.stderr.contains("gave up"), "\(boot.stderr)")
            #expect(!FileManager.default.fileExists(atPath: instance.keys))
        }
    }
}
