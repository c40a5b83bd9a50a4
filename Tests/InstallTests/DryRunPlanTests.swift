import Foundation
import Host
@testable import Install
import TestSupport
import Testing
import Versions

@Suite struct DryRunPlanTests {
    /// A metadata-only 6.9 repository (Fixtures/make-repo.py): a dry run reads
    /// metadata to list the bootstrap set, and tests never leave the machine.
    static let fixtureMirror = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/vault").path
    static let cache = NSTemporaryDirectory() + "centos6-ami-dryrun-cache-\(getpid())"

    func plan(target: String, yumCache: String? = nil, minimal: Bool = false) throws -> [String] {
        var options = InstallOptions(release: "6.9", target: target, mirror: "file://" + DryRunPlanTests.fixtureMirror)
        options.minimal = minimal
        options.cacheDirectory = DryRunPlanTests.cache
        options.filesystemUUID = "0b7e0f2a-1111-4222-8333-444455556666"
        options.workDirectory = "/run/centos6-ami"
        options.dryRun = true
        let printer = DryRunPrinter { _ in }
        let ctx = try InstallContext(options: options, versions: try VersionsFile.embedded(), runner: printer, log: try Log(path: nil, progress: { _ in }))
        _ = try Pipeline.run(ctx)
        return printer.lines
    }

    @Test func imageFilePlanIsTheGolden() throws {
        let target = "/tmp/centos6-ami-golden-\(UUID().uuidString).img"
        let lines = try plan(target: target).map {
            $0.replacingOccurrences(of: target, with: "IMAGE").replacingOccurrences(of: DryRunPlanTests.fixtureMirror, with: "FIXTURE")
                .replacingOccurrences(of: DryRunPlanTests.cache, with: "CACHE")
        }
        try expectGolden(lines.joined(separator: "\n") + "\n", "dry-run-image.txt")
        #expect(!FileManager.default.fileExists(atPath: target), "a dry run creates nothing")
    }

    /// acpid and ntp (Time Sync) by default, enabled with chkconfig; `--minimal` is the original's package set.
    /// Either way dracut's ec2.conf is written and the target's dracut rebuilds the initramfs after it.
    @Test func servicesUnlessMinimalAndTheInitramfsAfterTheConfig() throws {
        let full = try plan(target: "/tmp/centos6-ami-golden-\(UUID().uuidString).img")
        let minimal = try plan(target: "/tmp/centos6-ami-golden-\(UUID().uuidString).img", minimal: true)
        let install = { (lines: [String]) in lines.first { $0.contains(" install @core kernel-2.6.32-696.el6 ") } ?? "" }
        #expect(install(full).hasSuffix(" install @core kernel-2.6.32-696.el6 xfsprogs grub acpid ntp --exclude=postfix"))
        #expect(install(minimal).hasSuffix(" install @core kernel-2.6.32-696.el6 xfsprogs grub --exclude=postfix"))
        for service in ["acpid", "ntpd"] {
            #expect(full.contains { $0.hasSuffix("/root chkconfig \(service) on") })
            #expect(!minimal.contains { $0.contains("chkconfig") })
        }
        #expect(full.contains { $0.contains("/root/etc/ntp.conf (") } && !minimal.contains { $0.contains("ntp.conf") })
        for lines in [full, minimal] {
            let conf = lines.firstIndex { $0.contains("/etc/dracut.conf.d/ec2.conf (") } ?? -1
            let dracut = lines.firstIndex { $0.hasSuffix("/root dracut -f /boot/initramfs-2.6.32-696.el6.x86_64.img 2.6.32-696.el6.x86_64") } ?? -1
            let grub = lines.firstIndex { $0.contains("grub --batch") } ?? -1
            #expect(conf >= 0 && conf < dracut && dracut < grub, "\(conf) \(dracut) \(grub)")
        }
    }

    /// The step list is built from the options: the ENA steps only with --ena.
    @Test func theENAStepsOnlyWithENA() throws {
        var options = InstallOptions(release: "6.9", target: "/tmp/x.img", mirror: "http://127.0.0.1:9")
        let plain = InstallSteps.steps(for: options).map(\.name)
        options.ena = true
        let ena = InstallSteps.steps(for: options).map(\.name)
        #expect(plain.count == 21 && ena.count == 25)
        #expect(!plain.contains { $0.hasPrefix("ena") })
        #expect(ena.filter { !plain.contains($0) } == ["ena-source", "ena-resolve", "ena-build", "ena-install"])
        #expect(ena.filter { plain.contains($0) } == plain, "the same order otherwise")
        #expect(Set(ena).count == ena.count, "names are unique")
    }

    /// The progress lines count the steps this install runs.
    @Test func progressCountsTheStepsOfThisInstall() throws {
        var options = InstallOptions(
            release: "6.9", target: "/tmp/centos6-ami-golden-\(UUID().uuidString).img", mirror: "file://" + DryRunPlanTests.fixtureMirror)
        options.cacheDirectory = DryRunPlanTests.cache
        options.dryRun = true
        options.stopAfter = "resolve"
        let lines = NSLock()
        nonisolated(unsafe) var progress: [String] = []
        let log = try Log(path: nil, progress: { line in lines.withLock { progress.append(line) } })
        let ctx = try InstallContext(options: options, versions: try VersionsFile.embedded(), runner: DryRunPrinter { _ in }, log: log)
        let summary = try Pipeline.run(ctx)
        #expect(summary.stepsRun == ["preflight", "fetch-metadata", "resolve"])
        let numbered = lines.withLock { progress.filter { $0.contains("/21] ") } }
        #expect(numbered.count == 3 && numbered[2].contains("[3/21] resolve: "), "\(numbered)")
    }

    @Test func everyStepAppearsInOrder() throws {
        let lines = try plan(target: "/tmp/centos6-ami-golden-\(UUID().uuidString).img")
        #expect(lines.contains { $0.hasPrefix("# bootstrap set (") && $0.contains("yum-3.2.29-81.el6.centos.noarch") && !$0.contains("postfix") })
        #expect(!lines.contains { $0.contains("not implemented yet") })
        let order = [
            "truncate", "losetup --find", "sfdisk", "mkfs.ext4", "mount -t ext4", "mount -t tmpfs", "umount /run/centos6-ami/6.9-0b7e0f2a/root/var/cache/yum",
            "umount /run/centos6-ami/6.9-0b7e0f2a/root", "e2fsck",
        ]
        let positions = order.map { word in lines.firstIndex { $0.hasPrefix(word) || $0.contains("| " + word) } ?? -1 }
        #expect(!positions.contains(-1), "\(positions)")
        #expect(positions == positions.sorted())
    }
}

/// A full filesystem is said so, with the step, whatever tool hit it.
@Suite struct NoSpaceReportTests {
    @Test func anENOSPCAnywhereIsReportedAsNoSpaceWithTheStep() throws {
        var options = InstallOptions(release: "6.9", target: "/dev/xvdf", mirror: "http://127.0.0.1:9")
        options.cacheDirectory = NSTemporaryDirectory()
        let ctx = try InstallContext(
            options: options, versions: try VersionsFile.embedded(), runner: RecordingRunner(), log: try Log(path: nil, progress: { _ in }))
        let failing = InstallStep("install-packages", "yum") { _ in
            throw CommandFailed(
                command: Command("chroot", ["/r", "yum", "-y", "install", "kernel"]),
                result: CommandResult(status: 1, standardError: Data("Error unpacking rpm package kernel: cpio: write failed - No space left on device\n".utf8))
            )
        }
        do {
            _ = try Pipeline.run(ctx, steps: [failing])
            Issue.record("the step failed but the run did not")
        } catch let error as StepFailed {
            let text = "\(error)"
            #expect(text.hasPrefix("step 'install-packages' failed: no space left on a filesystem the install writes to;"), "\(text)")
            #expect(text.contains("No space left on device"))
            guard case InstallError.noSpace = error.cause else { Issue.record("cause \(error.cause)"); return }
        }
        // Other failures stay as they are, named by their step.
        struct MirrorDown: Error, CustomStringConvertible { var description: String { "mirror down" } }
        let other = InstallStep("download", "x") { _ in throw MirrorDown() }
        #expect(throws: StepFailed.self) { _ = try Pipeline.run(ctx, steps: [other]) }
        do { _ = try Pipeline.run(ctx, steps: [other]) } catch { #expect("\(error)" == "step 'download' failed: mirror down") }
        // A plain command failure is named by its step too.
        let mkfs = InstallStep("format", "mkfs") { _ in
            throw CommandFailed(command: Command("mkfs.ext4", ["/dev/loop9p1"]), result: CommandResult(status: 1, standardError: Data("mkfs.ext4: bad\n".utf8)))
        }
        do { _ = try Pipeline.run(ctx, steps: [mkfs]) } catch { #expect("\(error)".hasPrefix("step 'format' failed: "), "\(error)") }
    }
}

/// Nothing is skipped silently: a step whose input an earlier step makes, run
/// without that step, fails naming it.
@Suite struct PhaseOrderTests {
    func failure(_ steps: [InstallStep], ena: Bool = false) throws -> String {
        var options = InstallOptions(
            release: "6.9", target: "/tmp/centos6-ami-phase-\(UUID().uuidString).img", mirror: "file://" + DryRunPlanTests.fixtureMirror)
        options.cacheDirectory = DryRunPlanTests.cache
        options.ena = ena
        options.dryRun = true
        let ctx = try InstallContext(
            options: options, versions: try VersionsFile.embedded(), runner: DryRunPrinter { _ in }, log: try Log(path: nil, progress: { _ in }))
        do { _ = try Pipeline.run(ctx, steps: steps) } catch { return "\(error)" }
        return "(no failure)"
    }

    @Test func aMissingInputNamesTheStepThatMakesIt() throws {
        #expect(
            try failure([PackageSteps.resolveStep])
                == "step 'resolve' failed: no repository metadata yet: the 'fetch-metadata' step makes it (a step list out of order)")
        #expect(
            try failure([PackageSteps.downloadStep]) == "step 'download' failed: no package plan yet: the 'resolve' step makes it (a step list out of order)")
        #expect(
            try failure([InstallSteps.partitionStep])
                == "step 'partition' failed: no target device yet: the 'attach-loop' step makes it (a step list out of order)")
        #expect(
            try failure([PackageSteps.bootstrapStep])
                == "step 'bootstrap' failed: no mounted target filesystem yet: the 'mount' step makes it (a step list out of order)")
        // With --ena the download needs the build root's packages too.
        let upToDownload = [InstallSteps.preflightStep, PackageSteps.fetchMetadataStep, PackageSteps.resolveStep, PackageSteps.downloadStep]
        #expect(
            try failure(upToDownload, ena: true) == "step 'download' failed: no ENA build set yet: the 'ena-resolve' step makes it (a step list out of order)")
        #expect(try failure(upToDownload) == "(no failure)")
    }
}
