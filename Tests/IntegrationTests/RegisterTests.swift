import AMI
import Foundation
import Host
import TestSupport
import Testing
#if canImport(Glibc)
    import Glibc
#endif

/// `moto_server` on 127.0.0.1 standing in for EC2, with its request recorder on.
/// Started on a free port, stopped by its PID.
final class MotoServer: Sendable {
    let server: TestServer
    var port: Int { server.port }
    let recording: String
    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Fake credentials and the test region; no user config is read.
    static let awsEnvironment = [
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "",
    ]

    init(directory: String) throws {
        let server = try #require(
            MotoServer.which("moto_server"),
            "moto_server is not installed (scripts/setup-host.sh installs moto[server]); PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? "")")
        recording = directory + "/moto-recording.jsonl"
        do {
            self.server = try TestServer.moto(executable: server, directory: directory, recording: recording)
        } catch {
            Issue.record("\(error)")
            throw CancellationError()
        }
    }

    func stop() { server.stop() }

    @discardableResult
    func http(_ method: String, _ path: String) throws -> Integration.Output {
        try Integration.run("/usr/bin/curl", ["-sSf", "--max-time", "5", "-X", method, endpoint + path])
    }

    /// `aws ec2 ...` against the server, JSON decoded.
    func ec2(_ arguments: [String], region: String = "ap-northeast-1") throws -> [String: Any] {
        let aws = try #require(MotoServer.which("aws"), "the aws CLI is not installed")
        let out = try Integration.run(
            aws, ["ec2"] + arguments + ["--output", "json", "--endpoint-url", endpoint, "--region", region], environment: MotoServer.awsEnvironment)
        guard out.status == 0 else {
            Issue.record("aws ec2 \(arguments.joined(separator: " ")) failed: \(out.stderr)")
            throw CancellationError()
        }
        if out.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [:] }
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    }

    func createVolume() throws -> String {
        try #require(try ec2(["create-volume", "--size", "8", "--availability-zone", "ap-northeast-1a", "--volume-type", "gp3"])["VolumeId"] as? String)
    }

    /// The EC2 query requests moto received since recording started, as form fields.
    func recordedRequests() throws -> [[String: String]] {
        let text = try String(contentsOfFile: recording, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let entry = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            var body = entry["body"] as? String ?? ""
            if entry["body_encoded"] as? Bool == true, let data = Data(base64Encoded: body) { body = String(decoding: data, as: UTF8.self) }
            return MotoServer.formFields(body)
        }
    }

    /// `a=1&b=x%2Fy` → ["a": "1", "b": "x/y"] (application/x-www-form-urlencoded, `+` is a space).
    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            fields[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return fields
    }

    /// `aws ebs OPERATION ... --output json` against this server, decoded (test reads of what the tool wrote).
    func ebs(_ arguments: [String]) throws -> [String: Any] {
        let aws = try #require(MotoServer.which("aws"))
        let out = try Integration.run(
            aws, ["ebs"] + arguments + ["--output", "json", "--endpoint-url", endpoint, "--region", "ap-northeast-1"],
            environment: MotoServer.awsEnvironment)
        try #require(out.status == 0, "aws ebs \(arguments): \(out.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    }

    static func which(_ name: String) -> String? {
        let dirs: [String] = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin"]
        for dir in dirs {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }
}

/// A value shared by concurrent test threads.
// Unchecked: `value` is only touched under `lock`.
final class RegisterShared<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}

@Suite(.serialized, .enabled(if: Integration.enabled))
struct RegisterTests {
    func toolEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        MotoServer.awsEnvironment.merging(extra) { $1 }
    }

    func register(_ moto: MotoServer, _ args: [String], dir: String, env: [String: String] = [:]) throws -> Integration.Output {
        let log = args.contains("--log") ? [] : ["--log", dir + "/register.log"]
        return try Integration.tool(
            ["register"] + args + ["--endpoint-url", moto.endpoint, "--results", dir + "/results.json", "--poll", "1"] + log,
            environment: toolEnvironment(env))
    }

    @Test func usageErrorsExit64BeforeAnyCall() throws {
        // --endpoint-url points nowhere: none of these may get as far as calling it.
        let cases: [([String], String)] = [
            (["register"], "register needs VERSION and TARGET"),
            (["register", "6.4", "vol-0123456789abcdef0", "--ena"], "CentOS 6.4 cannot have the ENA driver"),
            (["register", "6.11", "vol-0123456789abcdef0"], "unknown release '6.11'"),
            (["register", "6.9", "disk.img"], "target 'disk.img' is neither a volume id"),
            (["register", "6.9", "vol-0123456789abcdef0", "--imds-support", "v1"], "--imds-support must be v2.0 or none"),
            (["register", "6.9", "vol-0123456789abcdef0", "--build-id", "a b"], "build id 'a b'"),
            (["register", "6.9", "vol-0123456789abcdef0", "--copy-to", ","], "--copy-to needs"),
            (["cleanup"], "cleanup needs --build-id ID"),
        ]
        for (args, message) in cases {
            let out = try Integration.tool(args + ["--endpoint-url", "http://127.0.0.1:9"], environment: toolEnvironment())
            #expect(out.status == 64, "\(args)")
            #expect(out.stderr.contains("error: \(message)"), "\(args): \(out.stderr)")
            #expect(out.stderr.contains("usage: centos6-ami \(args[0])"))
        }
        let missing = try Integration.tool(["table", "--from", "/nonexistent/results.json"])
        #expect(missing.status == 64)
        #expect(missing.stderr.contains("--from '/nonexistent/results.json' is not a readable file"))
    }

    /// `--ena` on a local device: the image's boot verdict is read read-only (not one byte changes):
    /// refused while it cannot boot on Nitro; once it can, a loop device is refused as not being an
    /// EBS volume, before any AWS call.
    @Test func enaIsCheckedReadOnlyOnALocalDevice() throws {
        let dir = try Integration.scratchDirectory("register-ena")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/ena.img", mnt = dir + "/mnt"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        func sh(_ tool: String, _ args: [String], stdin: String? = nil) throws -> String {
            let out = try Integration.run(tool, args, stdin: stdin.map { Data($0.utf8) })
            try #require(out.status == 0, "\(tool) \(args) failed: \(out.stderr)")
            return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try sh("/usr/bin/truncate", ["-s", "64M", image])
        _ = try sh("/usr/sbin/sfdisk", ["-q", image], stdin: "label: dos\nstart=2048, type=83\n")
        let loop = try sh("/usr/sbin/losetup", ["--find", "--show", "--partscan", image])
        defer { _ = try? Integration.run("/usr/sbin/losetup", ["-d", loop]) }
        // Without udev the partition may need announcing, and its node making (the tool makes its own).
        _ = try? Integration.run("/usr/bin/partx", ["-u", loop])
        var part = loop + "p1"
        let sysName = (loop as NSString).lastPathComponent + "p1"
        if !FileManager.default.fileExists(atPath: part) {
            let dev = try String(contentsOfFile: "/sys/class/block/\(sysName)/dev", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines).split(
                separator: ":")
            part = dir + "/part1"
            _ = try sh("/usr/bin/mknod", [part, "b", String(dev[0]), String(dev[1])])
        }
        _ = try sh("/usr/sbin/mkfs.ext4", ["-q", "-F", "-L", "/", part])
        let kver = "2.6.32-696.el6.x86_64"
        func edit(_ body: () throws -> Void) throws {
            _ = try sh("/usr/bin/mount", [part, mnt])
            defer { _ = try? Integration.run("/usr/bin/umount", [mnt]) }
            try body()
        }
        // A kernel, its grub entry and a gzip'd newc initramfs holding the Xen and NVMe drivers.
        let modules = ["kernel/drivers/block/xen-blkfront.ko", "kernel/drivers/net/xen-netfront.ko", "kernel/drivers/nvme/host/nvme.ko"]
        try edit {
            for path in ["boot/vmlinuz-\(kver)", "lib/modules/\(kver)/kernel/drivers/net/e1000/e1000.ko"] + modules.map({ "lib/modules/\(kver)/" + $0 }) {
                try FileManager.default.createDirectory(atPath: (mnt + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                FileManager.default.createFile(atPath: mnt + "/" + path, contents: Data("x".utf8))
            }
            try FileManager.default.createDirectory(atPath: mnt + "/boot/grub", withIntermediateDirectories: true)
            try "default=0\ntitle CentOS 6.9\n\tkernel /boot/vmlinuz-\(kver) ro root=LABEL=/\n\tinitrd /boot/initramfs-\(kver).img\n"
                .write(toFile: mnt + "/boot/grub/grub.conf", atomically: true, encoding: .utf8)
            let initrd = dir + "/initrd"
            for m in modules {
                try FileManager.default.createDirectory(
                    atPath: (initrd + "/lib/modules/\(kver)/" + m as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                FileManager.default.createFile(atPath: initrd + "/lib/modules/\(kver)/" + m, contents: Data("x".utf8))
            }
            _ = try sh("/bin/sh", ["-c", "cd \(initrd) && find . | cpio -o -H newc 2>/dev/null | gzip -9 > \(mnt)/boot/initramfs-\(kver).img"])
        }
        let args = [
            "register", "6.9", loop, "--ena", "--region", "ap-northeast-1", "--endpoint-url", "http://127.0.0.1:9",
            "--results", dir + "/results.json", "--log", dir + "/register.log",
        ]
        let before = try sh("/usr/bin/sha256sum", [image])
        let missing = try Integration.tool(args, environment: toolEnvironment())
        #expect(missing.status == 1)
        #expect(
            missing.stderr.contains(
                "error: '\(loop)' cannot boot on Nitro, so it is not registered with ENA support: nitro: no network, ENA not installed (build the image with --ena); register it without --ena"
            ), "\(missing.stderr)")
        #expect(try sh("/usr/bin/sha256sum", [image]) == before, "the check changes no byte")
        #expect(Integration.mounts(under: "/tmp/centos6-ami-ena-check").isEmpty)

        try edit {
            try FileManager.default.createDirectory(atPath: mnt + "/lib/modules/\(kver)/extra/ena", withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: mnt + "/lib/modules/\(kver)/extra/ena/ena.ko", contents: Data("x".utf8))
        }
        let after = try sh("/usr/bin/sha256sum", [image])
        let refused = try Integration.tool(args, environment: toolEnvironment())
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("'\(loop)' boots on: Xen and Nitro"), "\(refused.stderr)")
        #expect(refused.stderr.contains("a loop device is not an EBS volume"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("127.0.0.1:9"), "no AWS call was made")
        #expect(try sh("/usr/bin/sha256sum", [image]) == after)
        #expect(Integration.mounts(under: "/tmp/centos6-ami-ena-check").isEmpty)
        #expect(Integration.mounts(under: dir).isEmpty)
        _ = try? Integration.run("/usr/sbin/losetup", ["-d", loop])
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func registersThreeBuildsWithTheRightFlagsAndTablesThem() throws {
        let dir = try Integration.scratchDirectory("register")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        try moto.http("POST", "/moto-api/recorder/start-recording")

        let builds: [(release: String, ena: Bool, build: String)] = [("6.4", false, "it-64"), ("6.9", false, "it-69"), ("6.9", true, "it-69-ena")]
        var amis: [String: String] = [:] // build id -> AMI id printed
        // The three run at once, as a parallel batch would: they share one results file.
        let volumes = try builds.map { _ in try moto.createVolume() }
        let outputs = RegisterShared([Integration.Output?](repeating: nil, count: builds.count))
        DispatchQueue.concurrentPerform(iterations: builds.count) { i in
            let b = builds[i]
            let args = [b.release, volumes[i], "--build-id", b.build, "--log", dir + "/register-\(b.build).log"] + (b.ena ? ["--ena"] : [])
            let out = try? register(moto, args, dir: dir)
            outputs.withLock { $0[i] = out }
        }
        for (i, b) in builds.enumerated() {
            let out = try #require(outputs.withLock { $0[i] }, "register \(b.build) did not run")
            #expect(out.status == 0, "register \(b.build) failed: \(out.stderr)")
            let line = try #require(out.stdout.split(separator: "\n").first.map(String.init))
            let fields = line.split(separator: "\t").map(String.init)
            #expect(fields.count == 3)
            #expect(fields.first == "ap-northeast-1")
            amis[b.build] = fields.count > 1 ? fields[1] : ""
        }
        try moto.http("POST", "/moto-api/recorder/stop-recording")

        // The results file holds exactly these three.
        let results = try ResultsFile.load(path: dir + "/results.json")
        #expect(results.amis.count == 3)
        #expect(Set(results.amis.map(\.amiId)) == Set(amis.values))
        for record in results.amis {
            #expect(amis[record.buildId] == record.amiId)
            let ena = record.buildId == "it-69-ena"
            #expect(record.variant == (ena ? .ena : .plain))
            #expect(record.name.hasPrefix("CentOS \(record.release) x86_64 \(ena ? "ENA " : "")"))
            #expect(record.region == "ap-northeast-1")
            #expect(record.snapshotId.hasPrefix("snap-"))
        }

        // What moto received (it keeps only Name and Description of RegisterImage).
        let requests = try moto.recordedRequests()
        let registrations = requests.filter { $0["Action"] == "RegisterImage" }
        #expect(registrations.count == 3)
        for record in results.amis {
            let r = try #require(registrations.first { $0["Name"] == record.name }, "no RegisterImage named '\(record.name)'")
            #expect(r["Architecture"] == "x86_64")
            #expect(r["VirtualizationType"] == "hvm")
            #expect(r["BootMode"] == "legacy-bios")
            #expect(r["ImdsSupport"] == "v2.0")
            #expect(r["RootDeviceName"] == "/dev/sda1")
            #expect(r["BlockDeviceMapping.1.DeviceName"] == r["RootDeviceName"])
            #expect(r["BlockDeviceMapping.2.DeviceName"] == nil, "one mapping only")
            #expect(r["BlockDeviceMapping.1.Ebs.SnapshotId"] == record.snapshotId)
            #expect(r["BlockDeviceMapping.1.Ebs.DeleteOnTermination"] == "true")
            #expect(r["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3")
            #expect(Int(r["BlockDeviceMapping.1.Ebs.VolumeSize"] ?? "") ?? 0 >= 8)
            if record.variant == .ena {
                #expect(r["EnaSupport"] == "true")
            } else {
                #expect(r["EnaSupport"] == nil, "no EnaSupport at all for a plain image")
            }
        }
        let snapshots = requests.filter { $0["Action"] == "CreateSnapshot" }
        #expect(snapshots.count == 3)
        #expect(snapshots.allSatisfy { $0["TagSpecification.1.ResourceType"] == "snapshot" && $0.values.contains("centos6-ami:build-id") })
        #expect(requests.filter { $0["Action"] == "CreateTags" }.count == 3)

        // The AMIs exist under those names (one call: each aws call costs a Python start).
        let images = try #require(try moto.ec2(["describe-images", "--image-ids"] + results.amis.map(\.amiId))["Images"] as? [[String: Any]])
        var names: [String: String] = [:]
        for image in images { names[image["ImageId"] as? String ?? ""] = image["Name"] as? String }
        #expect(names == Dictionary(uniqueKeysWithValues: results.amis.map { ($0.amiId, $0.name) }))

        // The table, in the seed README's form.
        let table = try Integration.tool(["table", "--from", dir + "/results.json"])
        #expect(table.status == 0)
        let expected = """
            Region: ap-northeast-1

            | version  | AMI ID |
            | ------------- | ------------- |
            | CentOS 6.4  |  \(amis["it-64"]!)  |
            | CentOS 6.9  |  \(amis["it-69"]!), \(amis["it-69-ena"]!) (*1) |

            \(AMITable.footnote)

            """
        #expect(table.stdout == expected)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func failedRegisterImageDeletesTheSnapshotOrKeepsItWhenAsked() throws {
        let dir = try Integration.scratchDirectory("register-fail")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let realAWS = try #require(MotoServer.which("aws"), "the aws CLI is not installed")
        let fakeDir = Integration.repoRoot.appendingPathComponent("scripts/fake-aws").path
        let path = fakeDir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        func snapshots(_ build: String) throws -> [String] {
            let out = try moto.ec2(["describe-snapshots", "--owner-ids", "self", "--filters", "Name=tag:centos6-ami:build-id,Values=\(build)"])
            return (out["Snapshots"] as? [[String: Any]] ?? []).compactMap { $0["SnapshotId"] as? String }
        }

        // RegisterImage fails once: the run's snapshot is deleted, exit 1, the step is named.
        let volume = try moto.createVolume()
        let env = ["PATH": path, "REAL_AWS": realAWS, "FAKE_AWS_FAIL_ONCE": dir + "/failed-once"]
        let failed = try register(moto, ["6.9", volume, "--build-id", "it-fail"], dir: dir, env: env)
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("error: step 'register-image' failed: 'aws ec2 register-image' failed"), "\(failed.stderr)")
        #expect(failed.stderr.contains("injected by scripts/fake-aws"))
        #expect(failed.stderr.contains("deleted what this run created: snapshot 'snap-"))
        #expect(FileManager.default.fileExists(atPath: dir + "/failed-once"), "the fake aws was used")
        #expect(try snapshots("it-fail").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/results.json"), "nothing recorded")

        // Again with --keep-on-error: the snapshot stays and is named; cleanup removes it.
        try FileManager.default.removeItem(atPath: dir + "/failed-once")
        let kept = try register(moto, ["6.9", "--volume", volume, "--build-id", "it-keep", "--keep-on-error"], dir: dir, env: env)
        #expect(kept.status == 1)
        let left = try snapshots("it-keep")
        #expect(left.count == 1)
        let snap = left.first ?? "snap-?"
        #expect(kept.stderr.contains("step 'register-image' failed: "))
        #expect(kept.stderr.contains("kept what this run created (--keep-on-error): snapshot '\(snap)' in 'ap-northeast-1'"), "\(kept.stderr)")
        #expect(kept.stderr.contains("delete-snapshot --snapshot-id \(snap)"))

        let listed = try Integration.tool(["cleanup", "--build-id", "it-keep", "--endpoint-url", moto.endpoint, "--dry-run"], environment: toolEnvironment())
        #expect(listed.status == 0)
        #expect(listed.stdout == "ap-northeast-1\tsnapshot\t\(snap)\n")
        #expect(try snapshots("it-keep") == [snap], "--dry-run removes nothing")
        let cleaned = try Integration.tool(["cleanup", "--build-id", "it-keep", "--endpoint-url", moto.endpoint], environment: toolEnvironment())
        #expect(cleaned.status == 0, "\(cleaned.stderr)")
        #expect(cleaned.stdout.contains("deleted snapshot '\(snap)'"))
        #expect(try snapshots("it-keep").isEmpty)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func interruptedWhileWaitingDeletesTheSnapshotAndExits130() throws {
        let dir = try Integration.scratchDirectory("register-int")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let realAWS = try #require(MotoServer.which("aws"), "the aws CLI is not installed")
        let path = Integration.repoRoot.appendingPathComponent("scripts/fake-aws").path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let volume = try moto.createVolume()
        let process = try startTool(
            Command(
                Integration.binary,
                [
                    "register", "6.9", volume, "--build-id", "it-int", "--endpoint-url", moto.endpoint,
                    "--results", dir + "/results.json", "--log", dir + "/register.log",
                ]),
            environment: ProcessInfo.processInfo.environment.merging(
                toolEnvironment(
                    ["PATH": path, "REAL_AWS": realAWS, "FAKE_AWS_SLOW": "describe-snapshots", "FAKE_AWS_SLOW_SECONDS": "60"])
            ) { $1 },
            error: .collect)
        defer { if process.isRunning { kill(process.pid, SIGKILL); process.wait() } }
        func snapshots() throws -> [String] {
            let out = try moto.ec2(["describe-snapshots", "--owner-ids", "self", "--filters", "Name=tag:centos6-ami:build-id,Values=it-int"])
            return (out["Snapshots"] as? [[String: Any]] ?? []).compactMap { $0["SnapshotId"] as? String }
        }
        let deadline = Date().addingTimeInterval(60)
        while try snapshots().isEmpty, Date() < deadline, process.isRunning { Thread.sleep(forTimeInterval: 0.5) }
        #expect(try snapshots().count == 1, "the run got as far as its snapshot")
        kill(process.pid, SIGINT)
        let ended = process.finish()
        let text = ended.stderrText
        #expect(ended.status == 130, "\(text)")
        #expect(text.contains("step 'wait-snapshot' failed: "), "\(text)")
        #expect(text.contains("deleted what this run created: snapshot 'snap-"), "\(text)")
        #expect(try snapshots().isEmpty)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func publicCopiesAreRecordedAndCleanupRemovesEverythingOfTheBuild() throws {
        let dir = try Integration.scratchDirectory("register-copy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let moto = try MotoServer(directory: dir)
        defer { moto.stop() }
        let volume = try moto.createVolume()
        let out = try register(
            moto, ["6.10", volume, "--ena", "--public", "--copy-to", "us-east-1", "--build-id", "it-copy"], dir: dir,
            env: ["AWS_MAX_ATTEMPTS": "1"])
        #expect(out.status == 0, "\(out.stderr)")
        let results = try ResultsFile.load(path: dir + "/results.json")
        #expect(results.amis.map(\.region) == ["ap-northeast-1", "us-east-1"])
        #expect(results.amis.allSatisfy { $0.public && $0.variant == .ena && $0.buildId == "it-copy" })
        let copy = try #require(results.amis.last)
        #expect(copy.copiedFrom == results.amis.first?.amiId)
        for record in results.amis {
            let attr = try moto.ec2(["describe-image-attribute", "--image-id", record.amiId, "--attribute", "launchPermission"], region: record.region)
            #expect((attr["LaunchPermissions"] as? [[String: String]]) == [["Group": "all"]], "\(record.amiId) is public")
        }
        let table = try Integration.tool(["table", "--from", dir + "/results.json"])
        #expect(table.stdout.contains("Region: us-east-1\n\n| version  | AMI ID |\n| ------------- | ------------- |\n| CentOS 6.10  |  \(copy.amiId) (*1) |"))

        let cleaned = try Integration.tool(
            ["cleanup", "--build-id", "it-copy", "--endpoint-url", moto.endpoint, "--region", "ap-northeast-1,us-east-1"],
            environment: toolEnvironment())
        #expect(cleaned.status == 0, "\(cleaned.stderr)")
        for region in ["ap-northeast-1", "us-east-1"] {
            let images = try moto.ec2(["describe-images", "--owners", "self", "--filters", "Name=tag:centos6-ami:build-id,Values=it-copy"], region: region)
            #expect((images["Images"] as? [Any])?.isEmpty == true, "no image of the build left in \(region)")
            let snaps = try moto.ec2(
                ["describe-snapshots", "--owner-ids", "self", "--filters", "Name=tag:centos6-ami:build-id,Values=it-copy"], region: region)
            #expect((snaps["Snapshots"] as? [Any])?.isEmpty == true, "no snapshot of the build left in \(region)")
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
