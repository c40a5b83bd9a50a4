import Foundation
@testable import Install
import Testing

@Suite struct HygieneTests {
    func tree(_ files: [String: String], dirs: [String] = []) throws -> String {
        let root = NSTemporaryDirectory() + "hygiene-\(UUID().uuidString.prefix(8))"
        for d in dirs { try FileManager.default.createDirectory(atPath: root + d, withIntermediateDirectories: true) }
        for (path, text) in files {
            try FileManager.default.createDirectory(atPath: (root + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: root + path, atomically: false, encoding: .utf8)
        }
        return root
    }

    /// What the install leaves: empty logs, ifcfg-eth0 without HWADDR/UUID, no keys.
    @Test func aFreshlyBuiltTreeHasNoFindings() throws {
        let root = try tree(
            [
                "/var/log/messages": "", "/var/log/yum.log": "", "/var/log/audit/audit.log": "",
                "/etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n",
                "/etc/sysconfig/network-scripts/ifcfg-lo": "DEVICE=lo\n",
                "/etc/ssh/sshd_config": "UseDNS no\n", "/etc/rc.d/rc.local": "#!/bin/sh\n",
                "/usr/share/doc/x/authorized_keys": "documentation is not looked at",
            ], dirs: ["/home/ec2-user", "/root", "/var/lib/dhclient", "/var/lib/yum", "/proc/1"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(Hygiene.findings(root: root) == [])
    }

    /// What a first boot of CentOS 6 (and a person at the console) leaves.
    @Test func aBootedTreeListsEveryKindOfLeftover() throws {
        let root = try tree([
            "/etc/ssh/ssh_host_rsa_key": "k", "/etc/ssh/ssh_host_rsa_key.pub": "k",
            "/home/ec2-user/.ssh/authorized_keys": "ssh-ed25519 AAAA test\n",
            "/home/ec2-user/.bash_history": "ls\n",
            "/root/.ssh/known_hosts": "x",
            "/etc/udev/rules.d/70-persistent-net.rules": "SUBSYSTEM==\"net\", ATTR{address}==\"52:54:00:12:34:56\", NAME=\"eth0\"\n",
            "/etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nHWADDR=52:54:00:12:34:56\nUUID=1234\n",
            "/var/log/messages": "kernel: booted\n",
            "/var/lib/dhclient/dhclient-eth0.leases": "lease {}\n",
            "/var/lib/random-seed": "seed", "/var/lib/yum/uuid": "uuid",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let found = Hygiene.findings(root: root)
        let paths = found.map(\.path)
        for expected in [
            "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub", "/home/ec2-user/.ssh/authorized_keys",
            "/home/ec2-user/.bash_history", "/root/.ssh", "/etc/udev/rules.d/70-persistent-net.rules",
            "/var/log/messages", "/var/lib/dhclient/dhclient-eth0.leases", "/var/lib/random-seed", "/var/lib/yum/uuid",
        ] {
            #expect(paths.contains(expected), "\(expected) missing from \(paths)")
        }
        #expect(found.filter { $0.path == "/etc/sysconfig/network-scripts/ifcfg-eth0" }.map(\.what).map { String($0.prefix(7)) } == ["HWADDR=", "UUID= ("])
        #expect(!paths.contains("/root/.ssh/known_hosts"), "root's .ssh is reported once, as a whole")
        let message = HygieneError.dirty(target: "/dev/loop3", findings: found).description
        #expect(message.hasPrefix("'/dev/loop3' holds what a boot or a person left behind; refusing to snapshot it:"))
        #expect(message.contains("  /home/ec2-user/.ssh/authorized_keys: an authorized_keys file"))
        #expect(message.hasSuffix("--allow-dirty registers it anyway"))
    }
}
