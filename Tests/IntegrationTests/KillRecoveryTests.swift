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
        let run = try BackgroundProcess(
            Integration.binary, ["boot-test", built.image, "--timeout", "240", "--console", work + "/console.log"],
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

extension KillRecoveryTests {
    /// Pids of `centos6-ami install` processes whose command line names `target`.
    func installs(naming target: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            let cmd = Integration.procText("/proc/\(pid)/cmdline").split(separator: "\0").map(String.init)
            return cmd.count > 2 && cmd[1] == "install" && cmd.contains(target)
        }
    }

    /// kill -9 of a batch: its installs notice and unwind, the summary it wrote as it
    /// went lets --continue run them again, and cleanup --local finds nothing left.
    @Test func aBatchKilledOutrightLeavesNoUnsupervisedInstallAndASummary() throws {
        try TestVault.require()
        let dir = try Integration.scratchDirectory("kill-batch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try VaultServer()
        defer { server.stop() }
        let targets = [dir + "/a.img", dir + "/b.img"]
        let summary = dir + "/summary.json"
        let batch = try BackgroundProcess(
            Integration.binary,
            [
                "batch", "6.9=" + targets[0], "6.9=" + targets[1], "--jobs", "2",
                "--mirror", server.mirror, "--gpg-key", TestVault.key, "--cache", SharedCache.path,
                "--stop-after", "install-packages", "--summary", summary, "--log-dir", dir + "/logs",
            ],
            environment: MotoServer.awsEnvironment.merging(["CENTOS6_AMI_WORK_DIR": dir + "/work"]) { $1 })
        var children: [Int32] = []
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            children = targets.flatMap { installs(naming: $0) }
            if children.count == 2 { break }
            usleep(100_000)
        }
        try #require(children.count == 2, "both installs started: \(batch.stderr)")
        usleep(2_000_000)
        batch.signal(SIGKILL)
        _ = batch.wait(timeout: 30)
        let gone = Date().addingTimeInterval(90)
        while Date() < gone && !targets.flatMap({ installs(naming: $0) }).isEmpty { usleep(200_000) }
        #expect(targets.flatMap { installs(naming: $0) }.isEmpty, "installs outlived their batch")
        let text = (try? String(contentsOfFile: summary, encoding: .utf8)) ?? ""
        #expect(text.contains(targets[0]) && text.contains(targets[1]), "the summary names both installs: \(text)")
        let again = try Integration.tool(
            ["batch", "--continue", "--summary", summary, "--dry-run", "--mirror", server.mirror, "--gpg-key", TestVault.key],
            environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        #expect(again.status == 0 && targets.allSatisfy { again.stdout.contains($0) }, "--continue runs both again: \(again.stdout)\n\(again.stderr)")
        let cleanup = try Integration.tool(["cleanup", "--local"], environment: ["CENTOS6_AMI_WORK_DIR": dir + "/work"])
        #expect(cleanup.status == 0, "\(cleanup.stdout)\n\(cleanup.stderr)")
        try Integration.expectNothingLeft(dir, workDir: dir + "/work")
    }
}

/// Loop devices whose backing file is `image` (losetup -j).
enum BlockDevicesProbe {
    static func loops(backing image: String) -> [String] {
        let out = (try? Integration.run("/usr/sbin/losetup", ["-j", image]).stdout) ?? ""
        return out.split(separator: "\n").map { String($0.split(separator: ":").first ?? "") }.filter { !$0.isEmpty }
    }
}

/// An image a running install holds is not read by inspect, boot-test or register:
/// each refuses at once, saying it is being built and by whom.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct BuildInProgressTests {
    @Test func inspectBootTestAndRegisterRefuseAnImageBeingBuilt() throws {
        try TestVault.require()
        let dir = try Integration.scratchDirectory("being-built")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/c.img"
        #expect(try Integration.run("/bin/sh", ["-c", "truncate -s 3G \(image)"]).status == 0)
        let environment = ["CENTOS6_AMI_WORK_DIR": dir + "/work"]
        let holder = try BackgroundProcess(
            Integration.binary,
            [
                "install", "6.9", image, "--stop-after", "preflight", "--hold", "20",
                "--mirror", "http://127.0.0.1:9", "--gpg-key", TestVault.key,
                "--cache", dir + "/cache", "--log", dir + "/install.log",
            ], environment: environment)
        defer { _ = holder.wait(timeout: 30) }
        try #require(holder.waitFor("holding for", timeout: 20), "\(holder.stderr)")
        for args in [
            ["inspect", image], ["boot-test", image, "--timeout", "5"],
            ["register", "6.9", image, "--region", "ap-northeast-1", "--endpoint-url", "http://127.0.0.1:9"],
        ] {
            let out = try Integration.tool(args + ["--log", dir + "/\(args[0]).log"], environment: environment)
            #expect(out.status != 0, "\(args[0]): \(out.stderr)")
            #expect(
                out.stderr.contains("'\(image)' is being built by a running install") && out.stderr.contains("centos6-ami install 6.9"),
                "\(args[0]): \(out.stderr)")
        }
        holder.signal(SIGINT)
    }
}

/// inspect as a user without root copies what it reads out of the image (debugfs);
/// the copy goes, read-only directories (the image's 0555 /boot) included.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct NonRootInspectTests {
    @Test func aNonRootInspectLeavesNoCopy() throws {
        let built = try InstalledImage.shared()
        try #require(built.result.status == 0)
        let tmp = try Integration.scratchDirectory("nonroot-tmp")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        #expect(chown(tmp, 65534, 65534) == 0)
        let out = try Integration.run("/usr/sbin/runuser", ["-u", "nobody", "--", "/usr/bin/env", "TMPDIR=" + tmp, Integration.binary, "inspect", built.image])
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        #expect(out.stdout.contains("xen-blkfront"), "the verdict was read: \(out.stdout)")
        #expect(
            ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? ["?"]).isEmpty,
            "left in TMPDIR: \((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [])")
    }
}
