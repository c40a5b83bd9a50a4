import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every command that takes resources journals them: after kill -9 of boot-test or
/// inspect, `cleanup --local` leaves nothing (no QEMU, loop device, mount or scratch
/// directory), and says the host is clean only when it is.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct KillRecoveryTests {
    func journal(_ work: String) -> String {
        let dir = work + "/journal"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".journal") }
        return files.map { (try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8)) ?? "" }.joined()
    }

    func entries(_ text: String, _ kind: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix(kind + "\t") }.map { String($0.dropFirst(kind.count + 1)) }
    }

    /// cleanup --local after the kill: clean, and nothing of the run is left.
    func recover(work: String, scratch: [String], children: [Int32], image: String) throws {
        let out = try Integration.tool(["cleanup", "--local"], environment: ["CENTOS6_AMI_WORK_DIR": work])
        #expect(out.status == 0 && out.stdout.contains("the host is clean"), "\(out.stdout)\n\(out.stderr)")
        for dir in scratch { #expect(!FileManager.default.fileExists(atPath: dir), "scratch \(dir) left") }
        for pid in children {
            let state = Integration.procText("/proc/\(pid)/stat")
            #expect(state.isEmpty || state.contains(") Z"), "child \(pid) still runs: \(state)")
        }
        #expect(BlockDevicesProbe.loops(backing: image).isEmpty, "loop devices left on \(image)")
        #expect(Integration.mounts(under: "/tmp/centos6-ami-ro.").isEmpty && Integration.mounts(under: work).isEmpty)
        #expect(journal(work).isEmpty, "journal left")
    }

    @Test func bootTestKilledWhileQEMURunsIsRecovered() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0)
        let work = try Integration.scratchDirectory("kill-boot")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let run = try BackgroundProcess(Integration.binary, ["boot-test", built.image, "--timeout", "240", "--console", work + "/console.log"],
                                        environment: ["CENTOS6_AMI_WORK_DIR": work])
        // Until QEMU is up: its pid in the journal and the console growing.
        var children: [Int32] = []
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            children = entries(journal(work), "child").compactMap { Int32($0.split(separator: "\t").first ?? "") }
            let qemu = children.contains { Integration.procText("/proc/\($0)/comm").hasPrefix("qemu") }
            if qemu, ((try? FileManager.default.attributesOfItem(atPath: work + "/console.log"))?[.size] as? Int ?? 0) > 0 { break }
            usleep(100_000)
        }
        let text = journal(work)
        let scratch = entries(text, "scratch")
        try #require(!scratch.isEmpty && children.contains { Integration.procText("/proc/\($0)/comm").hasPrefix("qemu") }, "QEMU never started: \(text)")
        run.signal(SIGKILL)
        _ = run.wait(timeout: 30)
        #expect(scratch.allSatisfy { FileManager.default.fileExists(atPath: $0) }, "the kill left the scratch directory (else this proves nothing)")
        try recover(work: work, scratch: scratch, children: children, image: built.image)
    }

    @Test func inspectKilledWhileTheImageIsMountedIsRecovered() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0)
        var caught = false
        for attempt in 1...8 where !caught {
            let work = try Integration.scratchDirectory("kill-inspect")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let run = try BackgroundProcess(Integration.binary, ["inspect", built.image], environment: ["CENTOS6_AMI_WORK_DIR": work])
            // Caught once its read-only mount is up (the hygiene walk takes a moment).
            var mounts: [String] = []
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline && run.process.isRunning {
                mounts = entries(journal(work), "mount").filter { Integration.mounts(under: $0).contains($0) }
                if !mounts.isEmpty { break }
                usleep(2_000)
            }
            guard !mounts.isEmpty else { _ = run.wait(timeout: 30); print("inspect kill: attempt \(attempt) missed the mount"); continue }
            run.signal(SIGKILL)
            _ = run.wait(timeout: 30)
            caught = !Integration.mounts(under: mounts[0]).isEmpty
            guard caught else { continue }
            try recover(work: work, scratch: [], children: [], image: built.image)
            #expect(Integration.mounts(under: mounts[0]).isEmpty)
        }
        #expect(caught, "no attempt caught inspect with its image mounted")
    }
}

/// Loop devices whose backing file is `image` (losetup -j).
enum BlockDevicesProbe {
    static func loops(backing image: String) -> [String] {
        let out = (try? Integration.run("/usr/sbin/losetup", ["-j", image]).stdout) ?? ""
        return out.split(separator: "\n").map { String($0.split(separator: ":").first ?? "") }.filter { !$0.isEmpty }
    }
}
