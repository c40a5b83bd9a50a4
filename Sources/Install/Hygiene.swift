import Foundation
import Host

/// One thing in an image that must not be snapshotted: what a first boot or
/// a person at the console left behind, which every instance would inherit.
public struct HygieneFinding: Equatable, Sendable {
    /// Path inside the image.
    public var path: String
    /// What it is and why it matters.
    public var what: String
}

/// The hygiene gate, read-only over a mounted image root: `register` (all
/// its routes) refuses to snapshot a volume with findings, `inspect` lists
/// them. The list mirrors what the install's clean step removes (see
/// `ConfigureSteps.clean`), so a fresh install has none, plus what a CentOS 6
/// first boot writes: sshd's init script generates host keys, udev's
/// 75-persistent-net-generator writes 70-persistent-net.rules pinning the MAC,
/// dhclient keeps leases, the random-seed init script saves a seed, and
/// rc.local installs the launch key.
public enum Hygiene {
    public static func findings(root: String) -> [HygieneFinding] {
        var found: [HygieneFinding] = []
        // Every path resolved inside the image: a directory link such as /var/log -> / must not walk the builder.
        func exists(_ p: String) -> Bool { ImageRoot.status(p, in: root) != nil }
        func size(_ p: String) -> Int64 { ImageRoot.status(p, in: root).map { Int64($0.st_size) } ?? -1 }
        func isRegular(_ p: String) -> Bool { ImageRoot.status(p, in: root).map { ($0.st_mode & S_IFMT) == S_IFREG } ?? false }
        func list(_ dir: String) -> [String] { ImageRoot.list(dir, in: root).sorted() }

        for name in list("/etc/ssh") where name.hasPrefix("ssh_host_") {
            found.append(HygieneFinding(path: "/etc/ssh/" + name, what: "an SSH host key (every instance would share it)"))
        }
        if exists("/root/.ssh") {
            found.append(HygieneFinding(path: "/root/.ssh", what: "root's .ssh directory (keys or known hosts of whoever used it)"))
        }
        let perFile: [String: String] = [
            "authorized_keys": "an authorized_keys file (rc.local never installs the launch key while one exists)",
            "authorized_keys2": "an authorized_keys2 file (a login key baked into every instance)",
            "known_hosts": "a known_hosts file",
            ".bash_history": "a shell history", ".sh_history": "a shell history", ".ash_history": "a shell history",
            ".zsh_history": "a shell history", ".python_history": "a Python history", ".mysql_history": "a MySQL history",
            ".lesshst": "a less history", ".viminfo": "a vim history",
            "id_rsa": "a private key", "id_dsa": "a private key", "id_ecdsa": "a private key", "id_ed25519": "a private key",
        ]
        for path in walk(root: root, skipping: ["/proc", "/sys", "/dev", "/usr", "/lib", "/lib64", "/boot", "/var/cache/yum"])
        where !path.hasPrefix("/root/.ssh/") {
            if let what = perFile[(path as NSString).lastPathComponent] { found.append(HygieneFinding(path: path, what: what)) }
        }
        for rules in ["/etc/udev/rules.d/70-persistent-net.rules"] where exists(rules) {
            found.append(HygieneFinding(path: rules, what: "udev's persistent net rules (pin the builder's MAC: eth0 becomes eth1 on EC2, no network)"))
        }
        let scripts = "/etc/sysconfig/network-scripts"
        for name in list(scripts) where name.hasPrefix("ifcfg-") && name != "ifcfg-lo" {
            guard let text = ImageRoot.text(scripts + "/" + name, in: root, limit: 1 << 20) else { continue }
            for line in text.split(separator: "\n") {
                let key = line.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                if key == "HWADDR" || key == "UUID" {
                    found.append(HygieneFinding(path: "\(scripts)/\(name)", what: "\(key)= (ties the interface to one machine's NIC)"))
                }
            }
        }
        let logs = ImageRoot.hostPath("/var/log", in: root) ?? root + "/var/log/.unresolvable"
        for path in walk(root: logs, skipping: []) where isRegular("/var/log" + path) && size("/var/log" + path) > 0 {
            found.append(HygieneFinding(path: "/var/log" + path, what: "a non-empty log (\(size("/var/log" + path)) bytes)"))
        }
        for dir in ["/var/lib/dhclient", "/var/lib/dhcp"] {
            for name in list(dir) where name.contains("lease") {
                found.append(HygieneFinding(path: dir + "/" + name, what: "a DHCP lease"))
            }
        }
        if exists("/var/lib/random-seed") {
            found.append(HygieneFinding(path: "/var/lib/random-seed", what: "a saved random seed (every instance would start from it)"))
        }
        if exists("/var/lib/yum/uuid") {
            found.append(HygieneFinding(path: "/var/lib/yum/uuid", what: "yum's uuid (every instance would report the same one)"))
        }
        return found
    }

    /// The refusal: what was found, and the fix.
    public static func refusal(target: String, findings: [HygieneFinding]) -> String {
        var lines = ["'\(target)' holds what a boot or a person left behind; refusing to snapshot it:"]
        lines += findings.map { "  \($0.path): \($0.what)" }
        lines.append("build a fresh image (boot-test boots a copy, never the image itself) or remove these from it; --allow-dirty registers it anyway")
        return lines.joined(separator: "\n")
    }

    /// Paths under `root` (relative, with a leading '/'), not following symlinks, skipping `skipping` subtrees.
    static func walk(root: String, skipping: [String]) -> [String] {
        var out: [String] = []
        var stack = [""]
        while let dir = stack.popLast() {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: root + dir) else { continue }
            for name in names.sorted() {
                let rel = dir + "/" + name
                if skipping.contains(rel) { continue }
                var st = stat()
                guard lstat(root + rel, &st) == 0 else { continue }
                out.append(rel)
                if (st.st_mode & S_IFMT) == S_IFDIR { stack.append(rel) }
            }
        }
        return out.sorted()
    }
}

public enum HygieneError: ToolError, Equatable {
    case dirty(target: String, findings: [HygieneFinding])

    /// The whole refusal: its findings and what to do each stand on lines of their own.
    public var failure: String {
        switch self {
        case let .dirty(target, findings): return Hygiene.refusal(target: target, findings: findings)
        }
    }
}
