import Foundation
import Testing
import Host
import TestSupport
import VM
#if canImport(Glibc)
    import Glibc
#endif

/// The boot harness against a hand-made image: the test vault's kernel (and
/// the initramfs its %posttrans builds), grub-legacy set up through private
/// alias nodes, initscripts, busybox and curl, on an msdos/ext4 disk shaped as
/// the README says. Booted by `BootRunner` with the Swift metadata service
/// serving a key; the image's rc.local fetches it with curl over IMDSv2.
@Suite(.serialized, .enabled(if: Integration.enabled))
struct HarnessTests {
    static let release = "6.9"
    static let marker = "HARNESS-IMDS-KEY:"
    static let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHarnessTestKeyFromTheImdsStub harness@test"

    var packagesDir: String { Integration.vaultBuildDir + "/vault/\(HarnessTests.release)/os/x86_64/Packages" }

    @Test func handMadeImageBootsToLoginAndReadsTheKeyOverIMDSv2() throws {
        let kernelRelease = try vaultKernelRelease()
        let dir = try Integration.scratchDirectory("harness")
        let cleanup = CleanupStack(log: nil)
        defer {
            let failures = cleanup.unwind()
            #expect(failures.isEmpty, "cleanup: \(failures)")
            #expect(Integration.mounts(under: dir).isEmpty)
            #expect((try? Integration.loopDevices(backedBy: dir)) == [])
            try? FileManager.default.removeItem(atPath: dir)
        }
        let image = dir + "/disk.img"
        try makeImage(image, kernelRelease: kernelRelease, workDir: dir, cleanup: cleanup)

        let server = IMDSServer(settings: IMDSSettings(key: HarnessTests.key + "\n"))
        let port = try server.start()
        cleanup.push("stop the metadata service") { server.stop() }

        var config = BootConfig(image: image, serialLog: dir + "/serial.log", qmpSocket: dir + "/qmp.sock", imdsPort: port)
        config.timeout = 60 // the bar: login: within 60 s of the guest's start
        let bootLog = try Log(path: dir + "/boot.log", progress: { _ in })
        let result = try BootRunner(log: bootLog).boot(config)
        let runLog = (try? String(contentsOfFile: dir + "/boot.log", encoding: .utf8)) ?? ""
        FileHandle.standardError.write(Data("harness: \(result.summary); qemu ran \(String(format: "%.1f", result.totalSeconds)) s\n\(runLog)\n".utf8))
        #expect(result.passed, "console:\n\(result.console.suffix(3000))\nqemu: \(result.qemuStderr)")
        if let seconds = result.secondsToReady { #expect(seconds < 60) }
        let lines = result.console.replacingOccurrences(of: "\r", with: "").split(separator: "\n").map(String.init)
        #expect(lines.contains("\(HarnessTests.marker) \(HarnessTests.key)"), "no key line on the console:\n\(result.console.suffix(3000))")
        #expect(result.console.contains("\(HarnessTests.release)"))
        // The guest spoke IMDSv2 only: a token first, then every GET with a valid token.
        let requests = server.service.requests
        #expect(requests.first?.method == "PUT" && requests.first?.path == "/latest/api/token" && requests.first?.status == 200)
        #expect(requests.contains { $0.path == "/latest/meta-data/public-keys/0/openssh-key" && $0.status == 200 })
        #expect(requests.filter { $0.method != "PUT" }.allSatisfy { $0.tokenSent && $0.tokenValid })
        // Nothing left running: QEMU is reaped, and powered off or stopped.
        #expect([Shutdown.guestPoweredOff, .terminated].contains(result.shutdown), "\(result.shutdown)\n\(runLog)")
        #expect(!FileManager.default.fileExists(atPath: config.qmpSocket))
    }

    /// imds-serve (the service as a process, for the tests that run rc.local
    /// under sh in a network namespace): its fault flags and its JSON log.
    @Test func imdsServeFaultsAndLog() throws {
        let dir = try Integration.scratchDirectory("imds-serve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try (HarnessTests.key + "\n").write(toFile: dir + "/key.pub", atomically: true, encoding: .utf8)
        // SIGTERM, and SIGKILL if it is still there 3 s later: never left running.
        let imds = try TestServer(
            "imds-serve",
            Command(
                Integration.imdsServe,
                [
                    "--key", dir + "/key.pub",
                    "--port-file", dir + "/port", "--log", dir + "/log.json",
                    "--refuse-first", "1", "--fail-first", "1", "--expire-tokens", "1",
                ]),
            timeout: 5, grace: 3, ready: TestServer.portFile(dir + "/port"))
        defer { imds.stop() }
        let port = imds.port
        let base = "http://127.0.0.1:\(port)"
        func curl(_ args: [String]) throws -> (code: String, body: String) {
            let out = try Integration.run("curl", ["-s", "-m", "5", "-w", "\n%{http_code}"] + args).stdout
            let parts = out.split(separator: "\n", omittingEmptySubsequences: false)
            return (String(parts.last ?? ""), parts.dropLast().joined(separator: "\n"))
        }
        let put = ["-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base + "/latest/api/token"]
        #expect(try curl(put).code == "000") // refused
        #expect(try curl(put).code == "503")
        let expired = try curl(put)
        #expect(expired.code == "200")
        #expect(try curl(["-H", "X-aws-ec2-metadata-token: \(expired.body)", base + "/latest/meta-data/public-keys/0/openssh-key"]).code == "401")
        let token = try curl(put).body
        let key = try curl(["-H", "X-aws-ec2-metadata-token: \(token)", base + "/latest/meta-data/public-keys/0/openssh-key"])
        #expect(key.code == "200" && key.body == HarnessTests.key + "\n")
        #expect(try curl([base + "/latest/meta-data/instance-id"]).code == "401")
        #expect(try curl([base + "/latest/api/token"]).code == "405")
        #expect(try curl(["-X", "PUT", base + "/latest/api/token"]).code == "400")
        #expect(try curl(["-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 21601", base + "/latest/api/token"]).code == "400")
        let log = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/log.json"))) as? [[String: Any]] ?? []
        #expect(log.first?["event"] as? String == "refused")
        let tokenless = log.filter { $0["event"] as? String == "request" && $0["method"] as? String == "GET" && $0["token"] as? Bool == false }
        #expect(tokenless.map { $0["path"] as? String } == ["/latest/meta-data/instance-id", "/latest/api/token"])
    }

    // MARK: - the hand-made image

    func vaultKernelRelease() throws -> String {
        let path = Integration.vaultBuildDir + "/vault.json"
        guard let data = FileManager.default.contents(atPath: path),
            let json = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let per = (json["perRelease"] as? [String: Any])?[HarnessTests.release] as? [String: Any],
            let kernel = per["kernelRelease"] as? String
        else {
            throw HarnessFailure("the test vault is missing ('\(path)'); run scripts/testvault/build-vault.sh \(Integration.vaultBuildDir)")
        }
        return kernel
    }

    /// The RPM files of `roots` and everything they require (by name or provide), from the vault.
    func closure(of roots: [String]) throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: packagesDir).filter { $0.hasSuffix(".rpm") }.sorted()
        guard !files.isEmpty else { throw HarnessFailure("no packages in '\(packagesDir)'") }
        let out = try Integration.run(
            "rpm", ["-qp", "--nosignature", "--qf", "N %{NAME}\n[P %{PROVIDENAME}\n][R %{REQUIRENAME}\n]"] + files.map { packagesDir + "/" + $0 })
        var fileOf: [String: String] = [:], provider: [String: String] = [:], requires: [String: [String]] = [:]
        var current = "", index = 0
        for line in out.stdout.split(separator: "\n") {
            let value = String(line.dropFirst(2))
            switch line.prefix(2) {
            case "N ": current = value; fileOf[value] = files[index]; index += 1; provider[value] = value
            case "P ": provider[value] = provider[value] ?? current
            case "R ": requires[current, default: []].append(value)
            default: break
            }
        }
        guard index == files.count else { throw HarnessFailure("rpm -qp listed \(index) of \(files.count) packages: \(out.stderr)") }
        var wanted = Set<String>(), queue = roots
        while let name = queue.popLast() {
            guard !wanted.contains(name) else { continue }
            guard fileOf[name] != nil else { throw HarnessFailure("package '\(name)' is not in the vault") }
            wanted.insert(name)
            for dep in requires[name] ?? [] where !dep.hasPrefix("rpmlib(") {
                if let p = provider[dep] {
                    queue.append(p)
                } else if !dep.hasPrefix("/") {
                    throw HarnessFailure("'\(name)' requires '\(dep)', which nothing in the vault provides")
                }
            }
        }
        // filesystem first: it owns the bin/sbin/lib -> usr/... symlinks the others' paths go through.
        return wanted.sorted { ($0 == "filesystem" ? 0 : 1, $0) < ($1 == "filesystem" ? 0 : 1, $1) }.map { packagesDir + "/" + fileOf[$0]! }
    }

    /// - Important: creates and overwrites `image`.
    func makeImage(_ image: String, kernelRelease: String, workDir: String, cleanup: CleanupStack) throws {
        let started = Date()
        func mark(_ step: String) {
            FileHandle.standardError.write(Data(String(format: "harness image: %6.1f s %@\n", Date().timeIntervalSince(started), step).utf8))
        }
        let rpms = try closure(of: ["filesystem", "centos-release", "kernel", "grub", "initscripts", "busybox", "curl", "bash"])

        mark("closure resolved")
        try checked("truncate", ["-s", "1G", image])
        try checked("sfdisk", ["-q", image], stdin: Data("label: dos\nstart=2048, type=83, bootable\n".utf8))
        let loop = try checked("losetup", ["--find", "--show", "--partscan", image]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        let name = (loop as NSString).lastPathComponent
        cleanup.push("detach \(loop)") {
            // Only while it is still ours (the happy path detached it already).
            let backing = (try? String(contentsOfFile: "/sys/class/block/\(name)/loop/backing_file", encoding: .utf8)) ?? ""
            if backing.trimmingCharacters(in: .whitespacesAndNewlines) == image { try checked("losetup", ["-d", loop]) }
        }
        // No udev here: make the kernel read the table, then use a private node for the partition.
        _ = try? Integration.run("partx", ["-u", loop])
        let diskNumbers = try deviceNumbers(name)
        var partNumbers: (UInt32, UInt32)?
        for _ in 0..<50 where partNumbers == nil {
            partNumbers = try? deviceNumbers(name + "p1")
            if partNumbers == nil { usleep(100_000) }
        }
        guard let partNumbers else { throw HarnessFailure("partition 1 of '\(loop)' never appeared in /sys/class/block") }
        let nodes = workDir + "/nodes"
        try FileManager.default.createDirectory(atPath: nodes, withIntermediateDirectories: true)
        let partition = nodes + "/part1"
        try makeNode(partition, partNumbers)

        mark("partitioned and attached")
        try checked("mkfs.ext4", ["-q", "-F", "-I", "256", "-O", "^metadata_csum,^64bit,^orphan_file,^metadata_csum_seed", "-L", "/", partition])
        let root = workDir + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try checked("mount", [partition, root])
        cleanup.push("unmount \(root)") {
            if !Integration.mounts(under: root).isEmpty { try checked("umount", [root]) }
        }

        mark("formatted and mounted")
        // Through a file, not through this process: pushing the kernel's ~100 MB
        // payload through ProcessRunner's pipes took minutes of CPU here.
        let payload = workDir + "/payload.cpio"
        for rpm in rpms {
            let out = open(payload, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard out >= 0 else { throw HarnessFailure("cannot create '\(payload)'") }
            let extract = try startTool(Command("/usr/bin/rpm2cpio", [rpm]), output: .descriptor(out))
            close(out)
            let status = extract.finish().status
            guard status == 0 else { throw HarnessFailure("rpm2cpio '\(rpm)' exited \(status)") }
            try checked("cpio", ["-idmu", "--quiet", "--no-absolute-filenames", "-D", root, "-F", payload])
        }
        try FileManager.default.removeItem(atPath: payload)
        mark("packages extracted")
        // The two nodes a CentOS 6 root has before devtmpfs is mounted.
        try? FileManager.default.removeItem(atPath: root + "/dev/null")
        try checked("mknod", ["-m", "666", root + "/dev/null", "c", "1", "3"])
        try checked("mknod", ["-m", "600", root + "/dev/console", "c", "5", "1"])

        // The kernel package's %posttrans, as rpm would run it (builds the initramfs).
        let script = try checked(
            "rpm", ["-qp", "--nosignature", "--qf", "%{POSTTRANS}", rpms.first { ($0 as NSString).lastPathComponent.hasPrefix("kernel-2") }!]
        ).stdoutText
        try script.write(toFile: root + "/tmp/kernel-posttrans.sh", atomically: true, encoding: .utf8)
        try checked("chroot", [root, "/bin/sh", "/tmp/kernel-posttrans.sh", "1"])
        try FileManager.default.removeItem(atPath: root + "/tmp/kernel-posttrans.sh")
        let initramfs = root + "/boot/initramfs-\(kernelRelease).img"
        guard FileManager.default.fileExists(atPath: initramfs) else { throw HarnessFailure("the kernel's %posttrans made no '\(initramfs)'") }

        mark("initramfs built by the kernel %posttrans")
        // rc.local: IMDSv2 with curl, the key on the console after a marker.
        let rcLocal = """
            #!/bin/sh
            url=http://169.254.169.254/latest
            token=$(curl -sS -f --connect-timeout 5 -m 20 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' $url/api/token)
            key=$(curl -sS -f --connect-timeout 5 -m 20 -H "X-aws-ec2-metadata-token: $token" $url/meta-data/public-keys/0/openssh-key)
            echo "\(HarnessTests.marker) $key"

            """
        try rcLocal.write(toFile: root + "/etc/rc.d/rc.local", atomically: false, encoding: .utf8)
        chmod(root + "/etc/rc.d/rc.local", 0o755)

        // grub-legacy: stage files in /boot/grub, menu.lst, then `setup (hd0)` in the chroot through alias nodes.
        try FileManager.default.createDirectory(atPath: root + "/boot/grub", withIntermediateDirectories: true)
        for stage in ["stage1", "stage2", "e2fs_stage1_5"] {
            try FileManager.default.copyItem(atPath: root + "/usr/share/grub/x86_64-redhat/" + stage, toPath: root + "/boot/grub/" + stage)
        }
        let menu = """
            default=0
            timeout=0
            hiddenmenu
            title CentOS \(HarnessTests.release) (hand-made harness image)
                    root (hd0,0)
                    kernel /boot/vmlinuz-\(kernelRelease) ro root=LABEL=/ console=tty0 console=ttyS0,115200
                    initrd /boot/initramfs-\(kernelRelease).img

            """
        try menu.write(toFile: root + "/boot/grub/menu.lst", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/boot/grub/grub.conf", withDestinationPath: "menu.lst")
        try checked("sync", [])
        let aliases = root + "/tmp/grub-aliases"
        try FileManager.default.createDirectory(atPath: aliases, withIntermediateDirectories: true)
        cleanup.push("remove \(aliases)") { try? FileManager.default.removeItem(atPath: aliases) }
        try makeNode(aliases + "/xvdz", diskNumbers)
        try makeNode(aliases + "/xvdz1", partNumbers)
        let grub = try checked(
            "chroot", [root, "/sbin/grub", "--batch", "--no-floppy", "--device-map=/dev/null"],
            stdin: Data("device (hd0) /tmp/grub-aliases/xvdz\nroot (hd0,0)\nsetup (hd0)\nquit\n".utf8))
        guard grub.stdoutText.contains("Done."), !grub.stdoutText.contains("Error") else {
            throw HarnessFailure("grub setup failed:\n\(grub.stdoutText)\n\(grub.stderr)")
        }
        try FileManager.default.removeItem(atPath: aliases)

        mark("grub set up")
        try checked("umount", [root])
        try checked("e2fsck", ["-fn", partition])
        try checked("losetup", ["-d", loop])
        mark("unmounted, checked, detached")
        // stage1 in the MBR: grub-legacy's "GRUB " string sits in the first sector.
        let mbr = try FileHandle(forReadingFrom: URL(fileURLWithPath: image)).read(upToCount: 512) ?? Data()
        #expect(mbr.range(of: Data("GRUB ".utf8)) != nil && mbr[510] == 0x55 && mbr[511] == 0xAA)
    }

    func deviceNumbers(_ blockName: String) throws -> (UInt32, UInt32) {
        let text = try String(contentsOfFile: "/sys/class/block/\(blockName)/dev", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = text.split(separator: ":").compactMap { UInt32($0) }
        guard parts.count == 2 else { throw HarnessFailure("cannot read device numbers of '\(blockName)'") }
        return (parts[0], parts[1])
    }

    func makeNode(_ path: String, _ numbers: (UInt32, UInt32)) throws {
        try? FileManager.default.removeItem(atPath: path)
        try checked("mknod", [path, "b", String(numbers.0), String(numbers.1)])
    }
}

private struct HarnessFailure: Error, CustomStringConvertible {
    var description: String
    init(_ text: String) { description = text }
}

private struct CheckedOutput {
    var standardOutputData: Data
    var stdoutText: String
    var stderr: String
}

/// Runs a host tool and throws unless it exits 0 (test code; output kept as bytes for rpm2cpio).
@discardableResult
private func checked(_ executable: String, _ arguments: [String], stdin: Data? = nil) throws -> CheckedOutput {
    let result = ProcessRunner(
        log: nil, environment: ProcessInfo.processInfo.environment.merging(["LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]) { $1 }
    ).run(Command(executable, arguments, standardInput: stdin))
    guard result.status == 0 else {
        throw HarnessFailure("'\(([executable] + arguments).joined(separator: " "))' exited \(result.status): \(result.stderrText.suffix(2000))")
    }
    return CheckedOutput(standardOutputData: result.standardOutput, stdoutText: result.stdoutText, stderr: result.stderrText)
}
