import Foundation
import Testing

/// Messages say what happened: an empty image file, a missing TMPDIR, register
/// without root, a read-only --cache, and a default log that cannot be written
/// (a warning, and the run goes on).
@Suite(.serialized, .enabled(if: Integration.enabled))
struct MessagesTests {
    func sh(_ script: String) throws -> Integration.Output { try Integration.run("/bin/sh", ["-c", script]) }

    @Test func anEmptyImageFileIsSaidAtOnce() throws {
        let dir = try Integration.scratchDirectory("messages-empty")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/empty.img"
        FileManager.default.createFile(atPath: image, contents: nil)
        for args in [
            ["inspect", image], ["boot-test", image],
            ["register", "6.9", image, "--region", "ap-northeast-1", "--results", dir + "/r.json", "--log", dir + "/r.log"],
        ] {
            let out = try Integration.tool(args)
            #expect(out.status != 0 && out.stderr.contains("it is an empty image file (0 bytes)"), "\(args[0]): \(out.stderr)")
        }
        #expect(try Integration.loopDevices(backedBy: dir).isEmpty)
    }

    @Test func aMissingTMPDIRIsNamed() throws {
        let rpm = Integration.repoRoot.appendingPathComponent("Tests/Fixtures/el6-rpm-runtime/rpm-4.8.0-59.el6.x86_64.rpm").path
        let out = try Integration.tool(["rpm", "runtime", rpm], environment: ["TMPDIR": "/nonexistent-centos6-ami-tmp"])
        #expect(out.status == 1 && out.stderr.contains("TMPDIR") && out.stderr.contains("does not exist"), "\(out.stderr)")
    }

    @Test func registerWithoutRootSaysSoFirst() throws {
        let dir = try Integration.scratchDirectory("messages-nonroot")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/c.img", contents: Data(count: 512))
        let out = try Integration.run(
            "/usr/sbin/runuser", ["-u", "nobody", "--", Integration.binary, "register", "6.9", dir + "/c.img", "--region", "ap-northeast-1"])
        #expect(out.status == 64 && out.stderr.contains("register needs root"), "\(out.stderr)")
    }

    @Test func aReadOnlyCacheIsNamedInPreflight() throws {
        try TestVault.require()
        let dir = try Integration.scratchDirectory("messages-rocache")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/cache", withIntermediateDirectories: true)
        // In a mount namespace of its own: the read-only bind mount goes with it.
        let out = try sh(
            """
            unshare -m sh -c 'mount --bind -o ro \(dir)/cache \(dir)/cache && exec \(Integration.binary) install 6.9 \(dir)/x.img \\
              --cache \(dir)/cache --mirror http://127.0.0.1:9 --gpg-key \(TestVault.key) --log \(dir)/install.log'
            """)
        #expect(
            out.status == 1 && out.stderr.contains("the download cache --cache '\(dir)/cache' cannot be written: on a read-only filesystem (EROFS)"),
            "\(out.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.img"), "nothing was written")
    }

    @Test func anUnwritableDefaultLogOnlyWarns() throws {
        let dir = try Integration.scratchDirectory("messages-log")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/ro", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/var/log/centos6-ami", withIntermediateDirectories: true)
        let image = dir + "/empty.img"
        FileManager.default.createFile(atPath: image, contents: nil)
        let out = try sh(
            """
            unshare -m sh -c 'mount --bind -o ro \(dir)/ro /var/log/centos6-ami && exec \(Integration.binary) register 6.9 \(image) --region ap-northeast-1 --results \(dir)/r.json'
            """)
        #expect(out.stderr.contains("warning: cannot write the default log"), "\(out.stderr)")
        #expect(out.stderr.contains("it is an empty image file"), "the run went on to its real answer: \(out.stderr)")
    }
}
