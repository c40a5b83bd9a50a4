import Foundation
@testable import Install
import Testing

/// The runner with /bin/sh standing in for `centos6-ami install`: results come
/// from the child's result JSON, or from its exit status and last `error:` line.
@Suite(.serialized) struct BatchRunnerTests {
    func spec(_ release: String, _ script: String, dir: String, index: Int) -> BatchJobSpec {
        let result = "\(dir)/\(index).json"
        return BatchJobSpec(
            job: BatchJob(release: release, target: "/i/\(index).img"),
            arguments: ["-c", script.replacingOccurrences(of: "RESULT", with: result)],
            logPath: "\(dir)/\(index).log", resultPath: result, kernel: "2.6.32-696.el6", ena: index == 0)
    }

    @Test func resultsComeFromTheChildInOrderWhateverFinishesFirst() throws {
        let dir = NSTemporaryDirectory() + "batch-runner-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let okJSON = #"{"release":"6.9","target":"/i/0.img","kernel":"2.6.32-696.el6","ena":false,"result":"ok","seconds":0.3,"bytesOnVolume":1234}"#
        let specs = [
            spec("6.9", "sleep 0.3; echo '[   0.1s] [1/3] preflight: check' >&2; printf '%s' '\(okJSON)' > RESULT; exit 0", dir: dir, index: 0),
            spec(
                "6.8",
                "echo '[   0.0s] [2/3] download: x' >&2; echo \"error: 'kernel-2.6.32-642.el6.x86_64.rpm' was not found on the mirror (404)\" >&2; exit 1",
                dir: dir, index: 1),
            spec("6.8", "exit 3", dir: dir, index: 2),
        ]
        var lines: [String] = []
        let lock = NSLock()
        let runner = BatchRunner(executable: "/bin/sh", specs: specs, parallel: 2, live: false) { text in lock.withLock { lines.append(text) } }
        let (results, interrupted) = runner.run()
        #expect(!interrupted)
        #expect(results.map(\.result) == [InstallResult.ok, InstallResult.failed, InstallResult.failed])
        #expect(results[0].bytesOnVolume == 1234 && results[0].ena, "from the JSON; ENA from the batch")
        #expect(results[0].log == "\(dir)/0.log")
        #expect(results[1].error == "'kernel-2.6.32-642.el6.x86_64.rpm' was not found on the mirror (404)")
        #expect(results[1].kernel == "2.6.32-696.el6")
        #expect(results[2].error?.hasPrefix("exit status 3") == true, "\(results[2].error ?? "")")
        let text = lock.withLock { lines.joined() }
        #expect(text.contains("6.9 -> /i/0.img: [1/3] preflight"), "plain progress lines: \(text)")
        #expect(text.contains("batch: 6.8 -> /i/1.img: failed: 'kernel-2.6.32-642"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/0.json"), "result files are consumed")
    }

    @Test func neverMoreThanJobsAtATime() throws {
        let dir = NSTemporaryDirectory() + "batch-runner-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Each child records how many siblings run with it (marker files in dir).
        let script = "touch \(dir)/run.$$; ls \(dir) | grep -c '^run\\.' > \(dir)/seen.$$; sleep 0.4; rm \(dir)/run.$$"
        let specs = (0..<4).map { spec("6.9", script, dir: dir, index: $0) }
        let started = Date()
        let (results, _) = BatchRunner(executable: "/bin/sh", specs: specs, parallel: 2, live: false) { _ in }.run()
        #expect(results.allSatisfy { $0.result == InstallResult.ok })
        let seen = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("seen.") }.compactMap {
            Int((try? String(contentsOfFile: "\(dir)/\($0)", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
        }
        #expect(seen.count == 4 && seen.allSatisfy { $0 <= 2 }, "\(seen)")
        #expect(Date().timeIntervalSince(started) > 0.75, "two rounds of two")
    }
}
