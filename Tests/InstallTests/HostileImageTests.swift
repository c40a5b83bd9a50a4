import Foundation
import Host
import Testing
import Verdict
@testable import Install

/// Nothing in an image can make the tool read or print a file of the builder: every
/// path read from an image (grub.conf's kernel and initrd, authorized_keys, logs,
/// ifcfg files) is resolved inside the image root, symlinks included.
@Suite struct HostileImageTests {
    let root: String
    let host: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString.prefix(8))").path
        root = base + "/image"
        host = base + "/host-secret"
        let fm = FileManager.default
        for dir in ["/boot/grub", "/etc/ssh", "/home/ec2-user/.ssh", "/lib/modules/2.6.32-696.el6.x86_64", "/var", "/etc/sysconfig/network-scripts"] {
            try fm.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
        }
        try "HOST-SECRET-\(UUID().uuidString)\n".write(toFile: host, atomically: true, encoding: .utf8)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }

    @Test func linksAndDotDotStayInsideTheRoot() throws {
        defer { cleanup() }
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: root + "/home/ec2-user/.ssh/authorized_keys", withDestinationPath: host)
        #expect(ImageRoot.resolve("/home/ec2-user/.ssh/authorized_keys", inRoot: root) == host, "the absolute link is taken as a path inside the image")
        #expect(ImageRoot.contents("/home/ec2-user/.ssh/authorized_keys", in: root) == nil, "no such file inside the image")
        #expect(ImageRoot.resolve("/../../../..\(host)", inRoot: root) == host)
        #expect(ImageRoot.contents("/../../../..\(host)", in: root) == nil)
        try fm.createSymbolicLink(atPath: root + "/loop", withDestinationPath: "/loop")
        #expect(ImageRoot.resolve("/loop/x", inRoot: root) == nil, "a link loop resolves to nothing")
        // The status of a link itself, never of its target.
        let info = try #require(ImageRoot.status("/home/ec2-user/.ssh/authorized_keys", in: root))
        #expect(info.st_mode & S_IFMT == S_IFLNK)
    }

    @Test func grubConfsInitrdOutsideTheImageIsNotRead() throws {
        defer { cleanup() }
        let kver = "2.6.32-696.el6.x86_64"
        try "default=0\ntitle x\nkernel /boot/vmlinuz-\(kver) ro root=LABEL=/\ninitrd /../../../../..\(host)\n"
            .write(toFile: root + "/boot/grub/grub.conf", atomically: true, encoding: .utf8)
        #expect(throws: BootVerdict.Failure.self) { try BootVerdict.compute(root: root) }
        do { _ = try BootVerdict.compute(root: root) } catch {
            let secret = try String(contentsOfFile: host, encoding: .utf8)
            #expect(!"\(error)".contains(secret.trimmingCharacters(in: .whitespacesAndNewlines)), "named, never echoed")
        }
        // A grub.conf that is a link to a host file is not read either.
        try FileManager.default.removeItem(atPath: root + "/boot/grub/grub.conf")
        try FileManager.default.createSymbolicLink(atPath: root + "/boot/grub/grub.conf", withDestinationPath: host)
        #expect(ImageRoot.text("/boot/grub/grub.conf", in: root) == nil)
    }

    @Test func theHygieneGateWalksTheImageNotTheBuilder() throws {
        defer { cleanup() }
        // /var/log a link to the builder's /: the walk stays in the image.
        try FileManager.default.createSymbolicLink(atPath: root + "/var/log", withDestinationPath: "/")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/sysconfig/network-scripts/ifcfg-eth0", withDestinationPath: host)
        let findings = Hygiene.findings(root: root)
        #expect(!findings.contains { $0.path.hasPrefix("/var/log/proc") || $0.path.hasPrefix("/var/log/etc") }, "\(findings)")
        #expect(findings.allSatisfy { !$0.what.contains("HOST-SECRET") })
    }
}
