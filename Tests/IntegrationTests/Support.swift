import Foundation
import Host
import TestSupport
import Testing

/// Shared facts and helpers for the integration tests (root, loop devices,
/// the local test vault, QEMU). They run when CENTOS6_AMI_INTEGRATION=1, which
/// scripts/test.sh (and so .ci/run) sets; there a missing prerequisite is a
/// failure, never a skip.
enum Integration {
    static let environment = ProcessInfo.processInfo.environment
    static var enabled: Bool { environment["CENTOS6_AMI_INTEGRATION"] == "1" }

    /// The repository checkout (this file is Tests/IntegrationTests/Support.swift).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where expensive, shareable things live across runs (the test vault).
    static var cacheDir: String { environment["CENTOS6_AMI_TEST_CACHE"] ?? "/var/cache/centos6-ami-test" }

    /// The built test vault (scripts/testvault/build-vault.sh CACHE/vault-build).
    static var vaultBuildDir: String { environment["CENTOS6_AMI_TEST_VAULT"] ?? cacheDir + "/vault-build" }

    /// The centos6-ami binary that `swift test` built beside the test bundle.
    static var binary: String {
        if let path = environment["CENTOS6_AMI_BIN"] { return path }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("centos6-ami").path
    }

    /// The IMDSv2 service as a process (Sources/imds-serve/main.swift), built beside the binary.
    static var imdsServe: String { URL(fileURLWithPath: binary).deletingLastPathComponent().appendingPathComponent("imds-serve").path }

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs a program (a name is looked up on PATH) and collects its output, through the tool's runner.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:], stdin: Data? = nil) throws -> Output {
        let result = runTool(Command(executable, arguments, standardInput: stdin), environment: environment.merging(extra) { $1 })
        return Output(status: result.status, stdout: result.stdoutText, stderr: result.stderrText)
    }

    /// Runs the centos6-ami binary.
    @discardableResult
    /// Every run of the tool gets dummy AWS credentials and no instance metadata:
    /// whatever the test, an aws CLI it reaches must never look for credentials
    /// on the host's metadata address or in the user's ~/.aws.
    static func tool(_ arguments: [String], environment extra: [String: String] = [:]) throws -> Output {
        try run(binary, arguments, environment: MotoServer.awsEnvironment.merging(extra) { $1 })
    }

    /// A fresh scratch directory under the cache dir's tmp (not /tmp: some tests make multi-GiB sparse files).
    /// Registered the moment it exists, so it is removed at the latest when the
    /// test process exits (`removeScratchDirectories`), whatever the test did;
    /// tests still remove their own as soon as they are done (disk space).
    static func scratchDirectory(_ name: String) throws -> String {
        let dir = cacheDir + "/tmp/\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        scratch.withLock { state in
            if !state.atExitRegistered {
                state.atExitRegistered = true
                atexit { Integration.removeScratchDirectories() }
            }
            state.directories.append(dir)
        }
        return dir
    }

    /// The scratch directories this process made, and whether the exit hook is in place.
    private static let scratch = Locked<(directories: [String], atExitRegistered: Bool)>(([], false))

    /// Removes every scratch directory of this process that is still there: the
    /// shared images (built once, read by several suites) and whatever a failed
    /// test left. Loop devices on their files are detached first; a directory
    /// with anything still mounted under it is left and named (recursing into a
    /// leftover chroot's /dev or /proc would empty the host's).
    static func removeScratchDirectories() {
        let directories = scratch.withLock { state in
            defer { state.directories = [] }
            return state.directories
        }
        for dir in directories where FileManager.default.fileExists(atPath: dir) {
            let mounted = mounts(under: dir + "/")
            guard mounted.isEmpty else {
                FileHandle.standardError.write(Data("integration tests: leaving \(dir): still mounted under it: \(mounted.joined(separator: " "))\n".utf8))
                continue
            }
            for line in (try? loopDevices(backedBy: dir + "/")) ?? [] {
                if let device = line.split(separator: ":").first { _ = try? run("/usr/sbin/losetup", ["-d", String(device)]) }
            }
            do { try FileManager.default.removeItem(atPath: dir) } catch {
                FileHandle.standardError.write(Data("integration tests: cannot remove \(dir): \(error)\n".utf8))
            }
        }
    }

    /// Lines of `losetup -a` naming a file under `directory` (loop devices a test left attached).
    static func loopDevices(backedBy directory: String) throws -> [String] {
        try run("/usr/sbin/losetup", ["-a"]).stdout.split(separator: "\n").map(String.init).filter { $0.contains(directory) }
    }

    /// Nothing of a run is left: no mount under `workDir`, no loop device on a file
    /// under `dir` (but `ownLoop`), no yum-cache tmpfs, no process rooted under `workDir`.
    static func expectNothingLeft(
        _ dir: String, workDir: String, except ownLoop: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(mounts(under: workDir).isEmpty, "mounts left under \(workDir): \(mounts(under: workDir))", sourceLocation: sourceLocation)
        let loops = try loopDevices(backedBy: dir).filter { ownLoop == nil || !$0.hasPrefix(ownLoop! + ":") }
        #expect(loops.isEmpty, "loop devices left for \(dir): \(loops)", sourceLocation: sourceLocation)
        let info = procText("/proc/self/mountinfo")
        #expect(!info.contains(workDir), "a mount of this run is still listed", sourceLocation: sourceLocation)
        let rooted = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            Int(pid) != nil && ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root")) ?? "").hasPrefix(workDir)
        }
        #expect(rooted.isEmpty, "processes left in the chroot: \(rooted)", sourceLocation: sourceLocation)
    }

    /// A /proc file read to its end (procfs returns about a page per read).
    static func procText(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    /// Mount points under `directory` still in /proc/self/mountinfo.
    static func mounts(under directory: String) -> [String] {
        let text = procText("/proc/self/mountinfo")
        return text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4])
            return point.hasPrefix(directory) ? point : nil
        }
    }
}

/// A child started by a test and watched while it runs (for signals mid-run).
final class BackgroundProcess: Sendable {
    let process: RunningCommand
    private let errText = Locked("")
    private let outText = Locked("")

    init(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws {
        process = try startTool(
            Command(executable, arguments), environment: Integration.environment.merging(extra) { $1 },
            output: .blocks { [outText] in
                let text = String(decoding: $0, as: UTF8.self); outText.withLock { $0 += text }
            },
            error: .blocks { [errText] in
                let text = String(decoding: $0, as: UTF8.self); errText.withLock { $0 += text }
            })
    }

    var stderr: String { errText.value }
    var stdout: String { outText.value }

    /// Waits until stderr contains `text`; false on timeout or exit.
    func waitFor(_ text: String, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            if !process.isRunning { return stderr.contains(text) }
            usleep(50_000)
        }
        return false
    }

    /// To the child itself (not its process group: the tool stops its own children).
    func signal(_ sig: Int32) { kill(process.pid, sig) }

    /// Waits for the exit (killing it after `timeout`) and returns the status.
    func wait(timeout: TimeInterval) -> Int32 {
        if process.wait(timeout: timeout) == nil { kill(process.pid, SIGTERM); usleep(500_000); kill(process.pid, SIGKILL) }
        return process.finish().status
    }
}

/// The test vault's facts (scripts/testvault/build-vault.sh writes vault.json).
enum TestVault {
    static var root: String { Integration.vaultBuildDir + "/vault" }
    static var key: String { Integration.vaultBuildDir + "/keys/test-key.asc" }
    static var gnupgHome: String { Integration.vaultBuildDir + "/keys/gnupg" }
    static func repo(_ release: String) -> String { "\(root)/\(release)/os/x86_64" }
    static func bad(_ name: String) -> String { Integration.vaultBuildDir + "/bad/\(name).rpm" }

    /// Fails (never skips) when the vault was not built: scripts/test.sh builds it.
    static func require() throws {
        guard FileManager.default.fileExists(atPath: repo("6.9") + "/repodata/repomd.xml") else {
            throw TestFailure("the test vault is missing at \(Integration.vaultBuildDir); run scripts/test.sh (it builds it)")
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ text: String) { description = text }
}

/// scripts/testvault/vault-server.py on 127.0.0.1, started by a test and stopped by PID.
final class VaultServer {
    let server: TestServer
    let dir: String
    var port: Int { server.port }

    init(root: String = TestVault.root, delayMs: Int = 0) throws {
        dir = try Integration.scratchDirectory("vault-server")
        do {
            server = try TestServer.vault(root: root, directory: dir, delayMs: delayMs)
        } catch {
            throw TestFailure("vault-server.py wrote no port file")
        }
    }

    deinit { stop() }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    var mirror: String { "http://127.0.0.1:\(port)" }

    /// `POST /__control__` with a JSON body (faults, delay, reset).
    func control(_ json: String) throws {
        let out = try Integration.run("/usr/bin/curl", ["-sS", "-f", "-X", "POST", "--data-binary", json, "\(mirror)/__control__"])
        guard out.status == 0 else { throw TestFailure("control \(json) failed: \(out.stderr)") }
    }

    /// Zeroes the counters of /__stats__.
    func resetStats() throws {
        let out = try Integration.run("/usr/bin/curl", ["-sS", "-f", "-X", "POST", "--data-binary", "", "\(mirror)/__stats__"])
        guard out.status == 0 else { throw TestFailure("resetting stats failed: \(out.stderr)") }
    }

    /// (file requests, body bytes sent)
    func stats() throws -> (requests: Int, bytes: Int64) {
        let out = try Integration.run("/usr/bin/curl", ["-sS", "\(mirror)/__stats__"]).stdout
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
        return (json["requests"] as? Int ?? -1, Int64(json["bytes_sent"] as? Int ?? -1))
    }
}

/// The download cache all install tests of a run share: the first install fills it.
enum SharedCache {
    static var path: String { Integration.cacheDir + "/download-cache" }
}

/// A loop device a test attached to an image, with partition 1's node made
/// sure of (no udev here: devtmpfs may lag, so fall back to partx and mknod).
final class AttachedImage {
    let loop: String
    var partition: String { loop + "p1" }
    private var madeNode = false

    init(_ image: String, readOnly: Bool = false) throws {
        let out = try Integration.run("/usr/sbin/losetup", ["--find", "--show", "--partscan"] + (readOnly ? ["--read-only"] : []) + [image])
        guard out.status == 0 else { throw TestFailure("losetup \(image): \(out.stderr)") }
        loop = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let name = (partition as NSString).lastPathComponent
        for attempt in 0..<50 where !FileManager.default.fileExists(atPath: partition) {
            if attempt == 5 || attempt == 15 { _ = try? Integration.run("partx", ["-a", loop]) }
            if attempt >= 20, let dev = try? String(contentsOfFile: "/sys/class/block/\(name)/dev", encoding: .utf8) {
                let parts = dev.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":").map(String.init)
                if parts.count == 2, (try? Integration.run("mknod", [partition, "b", parts[0], parts[1]]))?.status == 0 { madeNode = true }
            }
            usleep(100_000)
        }
        guard FileManager.default.fileExists(atPath: partition) else {
            detach()
            throw TestFailure("partition node \(partition) never appeared")
        }
    }

    private var detached = false

    /// Once only: a second `losetup -d` (a `defer` and then `deinit`) would detach
    /// whatever another test or run attached to the same /dev/loopN meanwhile.
    func detach() {
        guard !detached else { return }
        detached = true
        if madeNode { try? FileManager.default.removeItem(atPath: partition); madeNode = false }
        _ = try? Integration.run("/usr/sbin/losetup", ["-d", loop])
    }

    deinit { detach() }
}
