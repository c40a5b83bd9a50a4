import Foundation
import Testing

/// `centos6-ami batch` against the test vault. Each batch has its own
/// image directory, work directory (CENTOS6_AMI_WORK_DIR) and summary, so
/// leftovers can be checked per batch.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct BatchTests {
    static let kernels = ["6.8": "2.6.32-642.el6", "6.9": "2.6.32-696.el6"]

    struct Batch {
        let dir: String
        var workDir: String { dir + "/work" }
        var summary: String { dir + "/summary.json" }
        func image(_ name: String) -> String { dir + "/" + name }
        var environment: [String: String] { ["CENTOS6_AMI_WORK_DIR": workDir] }
        func arguments(_ pairs: [String], mirror: String, cache: String = SharedCache.path, extra: [String] = []) -> [String] {
            ["batch"] + pairs + [
                "--mirror", mirror, "--gpg-key", TestVault.key, "--cache", cache,
                "--summary", summary, "--log-dir", dir + "/logs",
            ] + extra
        }
        func results() throws -> [[String: Any]] {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summary))) as? [String: Any]
            guard let rows = object?["results"] as? [[String: Any]] else { throw TestFailure("no results in \(summary)") }
            return rows
        }
    }

    func fresh(_ name: String) throws -> Batch { try TestVault.require(); return Batch(dir: try Integration.scratchDirectory(name)) }

    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }

    /// Processes whose command line names `dir` (a child install left running).
    func processes(naming dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            guard Int(pid) != nil, Int32(pid) != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\0", with: " ").contains(dir)
        }
    }

    /// Partition table, filesystem label, the release's kernel and releasever in one image.
    func checkImage(_ image: String, release: String) throws {
        let table = try Integration.run("/usr/sbin/sfdisk", ["-d", image]).stdout
        #expect(table.contains("\(image)1 : start=        2048,") && table.contains("type=83, bootable"), "\(table)")
        let attached = try AttachedImage(image, readOnly: true)
        defer { attached.detach() }
        let label = try Integration.run("/usr/sbin/blkid", ["-o", "value", "-s", "LABEL", attached.partition]).stdout
        #expect(label.trimmingCharacters(in: .whitespacesAndNewlines) == "/", "label of \(image): \(label)")
        let mnt = image + ".ro"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mnt) }
        let mount = try Integration.run("/usr/bin/mount", ["-o", "ro,noload", attached.partition, mnt])
        guard mount.status == 0 else { throw TestFailure("cannot mount \(image): \(mount.stderr)") }
        defer { _ = try? Integration.run("/usr/bin/umount", [mnt]) }
        let kernel = Self.kernels[release]!
        #expect(FileManager.default.fileExists(atPath: "\(mnt)/boot/vmlinuz-\(kernel).x86_64"), "\(image): kernel \(kernel)")
        let others = Self.kernels.values.filter { $0 != kernel }
        for other in others { #expect(!FileManager.default.fileExists(atPath: "\(mnt)/boot/vmlinuz-\(other).x86_64"), "\(image): no \(other)") }
        #expect((try? String(contentsOfFile: mnt + "/etc/yum/vars/releasever", encoding: .utf8)) == release + "\n", "\(image): releasever")
        let menu = (try? String(contentsOfFile: mnt + "/boot/grub/menu.lst", encoding: .utf8)) ?? ""
        #expect(menu.contains("kernel /boot/vmlinuz-\(kernel).x86_64 ro root=LABEL=/"), "\(image): menu.lst")
    }

    /// Every target is checked before the first write; all problems are listed at once.
    @Test func theMappingIsRefusedBeforeAnythingIsWritten() throws {
        let batch = try fresh("batch-refuse")
        defer { try? FileManager.default.removeItem(atPath: batch.dir) }
        let used = batch.image("used.img"), fresh1 = batch.image("new.img")
        let made = try sh("truncate -s 3G \(used) && mkfs.ext4 -q -F \(used)")
        #expect(made.status == 0, "\(made.stderr)")
        let out = try Integration.tool(
            batch.arguments(
                ["6.8=\(fresh1)", "6.9=\(used)", "6.9=\(batch.dir)/../\((batch.dir as NSString).lastPathComponent)/new.img"],
                mirror: "http://127.0.0.1:9"), environment: batch.environment)
        #expect(out.status == 1, "exit \(out.status): \(out.stderr)")
        #expect(out.stderr.contains("refused before anything was written"), "\(out.stderr)")
        #expect(out.stderr.contains("6.9 -> \(used): target '\(used)' already has"), "\(out.stderr)")
        #expect(out.stderr.contains("is given twice (for 6.8 and 6.9;"), "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fresh1), "nothing created")
        #expect(!FileManager.default.fileExists(atPath: batch.summary), "no install ran")

        // --ena goes only to the releases that can take it; the dry run shows each install's command.
        let plan = try Integration.tool(
            batch.arguments(
                ["6.5=\(batch.image("a.img"))", "6.9=\(batch.image("b.img"))"], mirror: "http://127.0.0.1:9",
                extra: ["--ena", "--dry-run"]), environment: batch.environment)
        #expect(plan.status == 0, "\(plan.stderr)")
        let lines = plan.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(plan.stdout)")
        #expect(lines.first { $0.contains(" install 6.5 ") }.map { !$0.contains("--ena") } == true, "\(plan.stdout)")
        #expect(
            lines.first { $0.contains(" install 6.9 ") }.map { $0.contains(" --ena --ena-share ") } == true, "one kmod-ena build per release: \(plan.stdout)")
        #expect(plan.stderr.contains("6.9 -> \(batch.image("b.img"))  (with ENA)") && !plan.stderr.contains("a.img  (with ENA)"), "\(plan.stderr)")
    }

    /// The bar: four installs (6.8 and 6.9, two image files each), two at a time, one shared cache.
    @Test func fourInstallsOfTwoReleasesSucceedAndTheImagesAreRight() throws {
        let batch = try fresh("batch4")
        defer { try? FileManager.default.removeItem(atPath: batch.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        let pairs = [("6.8", "a.img"), ("6.8", "b.img"), ("6.9", "c.img"), ("6.9", "d.img")]
        let out = try Integration.tool(
            batch.arguments(pairs.map { "\($0.0)=\(batch.image($0.1))" }, mirror: server.mirror, extra: ["--jobs", "2"]),
            environment: batch.environment)
        #expect(out.status == 0, "exit \(out.status): \(out.stderr)\n\(out.stdout)")
        print(out.stdout)
        #expect(out.stdout.contains("4 of 4 installs succeeded"), "\(out.stdout)")
        #expect(out.stdout.contains("BOOTS ON") && out.stdout.split(separator: "\n").filter { $0.contains(" xen ") }.count == 4, "\(out.stdout)")
        try Integration.expectNothingLeft(batch.dir, workDir: batch.workDir)
        #expect(processes(naming: batch.dir).isEmpty)
        let rows = try batch.results()
        #expect(rows.count == 4)
        for (row, pair) in zip(rows, pairs) {
            #expect(row["release"] as? String == pair.0 && row["target"] as? String == batch.image(pair.1))
            #expect(row["result"] as? String == "ok", "\(row)")
            #expect(row["kernel"] as? String == Self.kernels[pair.0])
            #expect(row["ena"] as? Bool == false)
            #expect(row["bootsOn"] as? String == "xen", "without ENA: Xen only, read from each image: \(row)")
            #expect((row["bytesOnVolume"] as? Int ?? 0) > 100_000_000, "\(row)")
            let log = row["log"] as? String ?? ""
            #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("CentOS \(pair.0) installed on \(batch.image(pair.1))"), "log \(log)")
        }
        for (release, name) in pairs { try checkImage(batch.image(name), release: release) }

        // Boot one of the four (the other release's boot is the end-to-end test's): boot-test, on a copy.
        let copy = batch.image("boot-6.8.img")
        _ = try sh("cp --sparse=always \(batch.image("a.img")) \(copy)")
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBatchBootTestKeyCentos6Ami6x8 batch@test"
        try (key + "\n").write(toFile: batch.dir + "/key.pub", atomically: true, encoding: .utf8)
        let boot = try Integration.tool(["boot-test", copy, "--key", batch.dir + "/key.pub", "--timeout", "240"])
        #expect(boot.status == 0, "boot-test of the 6.8 image: \(boot.stderr)")
        let console = (try? String(contentsOfFile: copy + ".console.log", encoding: .utf8)) ?? ""
        #expect(console.contains("CentOS release 6.8 (Final)"), "console: \(console.suffix(2000))")
        try Integration.expectNothingLeft(batch.dir, workDir: batch.workDir)
    }

    /// A 404 on 6.8's kernel fails that install alone; 6.9 succeeds; `--continue` then re-runs only 6.8.
    @Test func oneFailingInstallDoesNotStopTheOthersAndContinueRerunsIt() throws {
        let batch = try fresh("batch-fault")
        defer { try? FileManager.default.removeItem(atPath: batch.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        // Its own cold cache: the shared one already holds the kernel and would hide the fault.
        let cache = batch.dir + "/cache"
        try server.control(#"{"faults": [{"path": "/6.8/os/x86_64/Packages/kernel-2.6.32-642*", "status": 404}]}"#)
        let out = try Integration.tool(
            batch.arguments(["6.8=\(batch.image("a.img"))", "6.9=\(batch.image("b.img"))"], mirror: server.mirror, cache: cache),
            environment: batch.environment)
        #expect(out.status == 1, "exit \(out.status): \(out.stderr)")
        print(out.stdout)
        let rows = try batch.results()
        #expect(rows.map { $0["result"] as? String } == ["failed", "ok"], "\(rows)")
        let error = rows.first?["error"] as? String ?? ""
        #expect(error.contains("kernel-2.6.32-642") && error.contains("404"), "a clear error: \(error)")
        #expect(out.stdout.contains("6.8 -> \(batch.image("a.img")): failed: "), "\(out.stdout)")
        #expect(out.stdout.contains("1 of 2 installs succeeded"), "\(out.stdout)")
        #expect(!FileManager.default.fileExists(atPath: batch.image("a.img")), "the failed install leaves no image")
        try Integration.expectNothingLeft(batch.dir, workDir: batch.workDir)
        try checkImage(batch.image("b.img"), release: "6.9")

        // The fault is gone: --continue re-runs only 6.8, on its target, with the same options.
        try server.control(#"{"reset": true, "reset_stats": true}"#)
        let again = try Integration.tool(["batch", "--continue", "--summary", batch.summary, "--log-dir", batch.dir + "/logs"], environment: batch.environment)
        #expect(again.status == 0, "exit \(again.status): \(again.stderr)")
        #expect(again.stderr.contains("batch: 1 install(s)") && again.stderr.contains("6.8 -> \(batch.image("a.img"))"), "\(again.stderr)")
        #expect(!again.stderr.contains("-> \(batch.image("b.img"))"), "6.9 is not run again")
        #expect(try batch.results().map { $0["result"] as? String } == ["ok", "ok"])
        try checkImage(batch.image("a.img"), release: "6.8")
        try Integration.expectNothingLeft(batch.dir, workDir: batch.workDir)
    }

    /// A mirror password never reaches the summary (options and errors alike);
    /// `--continue` refuses without it, and takes it from CENTOS6_AMI_MIRROR_PASSWORD.
    @Test func theSummaryKeepsNoMirrorPassword() throws {
        let batch = try fresh("batch-password")
        defer { try? FileManager.default.removeItem(atPath: batch.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        let mirror = "http://builder:s3cret-pw@127.0.0.1:\(server.port)"
        try server.control(#"{"faults": [{"path": "/6.9/os/x86_64/Packages/bash-*.rpm", "status": 404}]}"#)
        let out = try Integration.tool(
            batch.arguments(["6.9=\(batch.image("a.img"))"], mirror: mirror, cache: batch.dir + "/cache", extra: ["--stop-after", "download"]),
            environment: batch.environment)
        #expect(out.status == 1, "exit \(out.status): \(out.stderr)")
        let text = try String(contentsOfFile: batch.summary, encoding: .utf8)
        #expect(!text.contains("s3cret-pw"), "\(text)")
        #expect(text.contains("http://builder:***@127.0.0.1:\(server.port)"), "\(text)")
        #expect(!out.stdout.contains("s3cret-pw") && !out.stderr.contains("s3cret-pw"))

        try server.control(#"{"reset": true}"#)
        let refused = try Integration.tool(
            ["batch", "--continue", "--summary", batch.summary, "--log-dir", batch.dir + "/logs"], environment: batch.environment)
        #expect(refused.status == 64, "exit \(refused.status): \(refused.stderr)")
        #expect(refused.stderr.contains("CENTOS6_AMI_MIRROR_PASSWORD"), "\(refused.stderr)")
        let again = try Integration.tool(
            ["batch", "--continue", "--summary", batch.summary, "--log-dir", batch.dir + "/logs"],
            environment: batch.environment.merging(["CENTOS6_AMI_MIRROR_PASSWORD": "s3cret-pw"]) { $1 })
        #expect(again.status == 0, "exit \(again.status): \(again.stderr)")
        #expect(try batch.results().map { $0["result"] as? String } == ["ok"])
        #expect(!(try String(contentsOfFile: batch.summary, encoding: .utf8)).contains("s3cret-pw"))
        try Integration.expectNothingLeft(batch.dir, workDir: batch.workDir)
    }

    /// ^C while both installs have their targets mounted: exit 130, everything of both unwound.
    @Test func sigintStopsAndCleansUpEveryInstall() throws {
        let batch = try fresh("batch-int")
        defer { try? FileManager.default.removeItem(atPath: batch.dir) }
        let server = try VaultServer()
        defer { server.stop() }
        let a = batch.image("a.img"), b = batch.image("b.img")
        let job = try BackgroundProcess(Integration.binary, batch.arguments(["6.8=\(a)", "6.9=\(b)"], mirror: server.mirror), environment: batch.environment)
        // Both in the chroot phase: loop devices, mounts and tmpfs exist for each.
        let deadline = Date().addingTimeInterval(240)
        func inBootstrap(_ image: String) -> Bool {
            job.stderr.split(separator: "\n").contains { $0.contains("-> \(image): [") && ($0.hasSuffix("] bootstrap") || $0.hasSuffix("] install-packages")) }
        }
        while Date() < deadline && job.process.isRunning && !(inBootstrap(a) && inBootstrap(b)) { usleep(100_000) }
        #expect(inBootstrap(a) && inBootstrap(b), "\(job.stderr)")
        #expect(!Integration.mounts(under: batch.workDir).isEmpty, "mounted before the signal")
        usleep(1_000_000)
        job.signal(SIGINT)
        let status = job.wait(timeout: 180)
        #expect(status == 130, "exit \(status): \(job.stderr)")
        try Integration.expectNothingLeft(batch.dir, workDir: batch.workDir)
        #expect(processes(naming: batch.dir).isEmpty, "child processes left: \(processes(naming: batch.dir))")
        #expect(!FileManager.default.fileExists(atPath: a) && !FileManager.default.fileExists(atPath: b), "unfinished images removed")
        let rows = try batch.results()
        #expect(rows.map { $0["result"] as? String } == ["interrupted", "interrupted"], "\(rows)")
        #expect(job.stderr.contains("batch: interrupted"), "\(job.stderr)")
    }
}
