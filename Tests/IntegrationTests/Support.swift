import Foundation
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

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs a program and collects its output (test code: a plain wait is fine).
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:], stdin: Data? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        process.environment = environment.merging(extra) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin); try? input.fileHandleForWriting.close() }
        var outData = Data(), errData = Data()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        process.waitUntilExit()
        group.wait()
        return Output(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs the centos6-ami binary.
    @discardableResult
    static func tool(_ arguments: [String], environment extra: [String: String] = [:]) throws -> Output {
        try run(binary, arguments, environment: extra)
    }

    /// A fresh scratch directory under the cache dir's tmp (not /tmp: some tests make multi-GiB sparse files).
    static func scratchDirectory(_ name: String) throws -> String {
        let dir = cacheDir + "/tmp/\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Lines of `losetup -a` naming a file under `directory` (loop devices a test left attached).
    static func loopDevices(backedBy directory: String) throws -> [String] {
        try run("/usr/sbin/losetup", ["-a"]).stdout.split(separator: "\n").map(String.init).filter { $0.contains(directory) }
    }

    /// Mount points under `directory` still in /proc/self/mountinfo.
    static func mounts(under directory: String) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4])
            return point.hasPrefix(directory) ? point : nil
        }
    }
}

/// A child started by a test and watched while it runs (for signals mid-run).
final class BackgroundProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var errText = ""
    private var outText = ""
    private let done = DispatchGroup()

    init(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = Integration.environment.merging(extra) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        for (pipe, isErr) in [(out, false), (err, true)] {
            done.enter()
            DispatchQueue.global().async { [self] in
                while true {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    lock.withLock {
                        if isErr { errText += String(decoding: chunk, as: UTF8.self) } else { outText += String(decoding: chunk, as: UTF8.self) }
                    }
                }
                done.leave()
            }
        }
    }

    var stderr: String { lock.withLock { errText } }
    var stdout: String { lock.withLock { outText } }

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

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for the exit (killing it after `timeout`) and returns the status.
    func wait(timeout: TimeInterval) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { process.terminate(); usleep(500_000); kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        done.wait()
        return process.terminationStatus
    }
}
