import Foundation
import Templates
import TestSupport
import Testing
import Versions

// Every template against its golden file (Golden/*), every edit against a
// faithful copy of the file CentOS 6.9's package ships (Golden/fixtures/*).
// UPDATE_GOLDEN=1 rewrites the golden files; then review the diff.

func fixture(_ name: String) throws -> String { try golden("fixtures/\(name)") }

func lines(_ text: String) -> [String] { text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

let mirror = "http://archive.kernel.org/centos-vault"
let commentedMirror = "https://vault.centos.org"

@Suite struct FstabTests {
    @Test func byLabelIsTheGolden() throws {
        try expectGolden(Fstab.render(), "fstab-label")
        #expect(Fstab.render() == Fstab.render(root: .label), "LABEL=/ is the default, as the original")
    }

    @Test func byUUIDIsTheGolden() throws {
        let text = Fstab.render(root: .uuid("0b7e0f2a-1111-4222-8333-444455556666"))
        try expectGolden(text, "fstab-uuid")
        #expect(text.contains("UUID=0b7e0f2a-1111-4222-8333-444455556666 / "))
    }

    @Test func rootAndVirtualFilesystemsHaveTheirFields() {
        let entries = lines(Fstab.render()).filter { !$0.isEmpty && !$0.hasPrefix("#") }.map { $0.split(separator: " ").map(String.init) }
        #expect(entries.count == 5)
        #expect(entries.allSatisfy { $0.count == 6 }, "6 fields per line")
        #expect(entries.first == ["LABEL=/", "/", "ext4", "defaults,noatime", "1", "1"])
        #expect(Set(entries.dropFirst().map { $0[1] }) == ["/dev/shm", "/dev/pts", "/sys", "/proc"])
        #expect(entries.contains(["devpts", "/dev/pts", "devpts", "gid=5,mode=620", "0", "0"]))
    }
}

@Suite struct GrubMenuTests {
    @Test func plainIsTheGolden() throws {
        try expectGolden(GrubMenu.render(release: "6.9", kernel: "2.6.32-696.el6.x86_64", ena: false), "grub.conf")
    }

    @Test func enaAddsNetIfnames() throws {
        let ena = GrubMenu.render(release: "6.9", kernel: "2.6.32-696.el6.x86_64", ena: true)
        try expectGolden(ena, "grub.conf-ena")
        let kernelLine = lines(ena).first { $0.contains("kernel /boot/") } ?? ""
        #expect(kernelLine.hasSuffix(" xen_pv_hvm=enable net.ifnames=0"))
        #expect(!GrubMenu.render(release: "6.9", kernel: "2.6.32-696.el6.x86_64", ena: false).contains("net.ifnames"))
    }

    @Test func kernelAndInitrdNameTheInstalledKernel() {
        let text = GrubMenu.render(release: "6.10", kernel: GrubMenu.installedKernel("2.6.32-754.el6"), ena: false)
        #expect(text.contains("title CentOS 6.10\n"))
        #expect(text.contains("\tkernel /boot/vmlinuz-2.6.32-754.el6.x86_64 ro root=LABEL=/ "))
        #expect(text.contains("\tinitrd /boot/initramfs-2.6.32-754.el6.x86_64.img\n"))
        #expect(GrubMenu.installedKernel("2.6.32-754.el6.x86_64") == "2.6.32-754.el6.x86_64", "already installed names stay")
    }

    /// grub's menu on the EC2 serial console: serial and terminal before the first entry.
    @Test func grubTalksOnTheSerialConsole() {
        let text = lines(GrubMenu.render(release: "6.9", kernel: "2.6.32-696.el6.x86_64", ena: false))
        let serial = text.firstIndex(of: "serial --unit=0 --speed=115200"), terminal = text.firstIndex(of: "terminal --timeout=0 serial console")
        let title = text.firstIndex { $0.hasPrefix("title ") }
        #expect(serial != nil && terminal != nil && title != nil && serial! < terminal! && terminal! < title!)
    }

    /// CentOS 6's layout: grub.conf is the file new-kernel-pkg edits; menu.lst and /etc/grub.conf are links.
    @Test func sysconfigKernelIsTheGolden() throws {
        try expectGolden(SysconfigKernel.text, "sysconfig-kernel")
        #expect(SysconfigKernel.text.contains("\nUPDATEDEFAULT=yes\n") && SysconfigKernel.text.contains("\nDEFAULTKERNEL=kernel\n"))
    }

    @Test func linksResolveToGrubConf() {
        // Each link, resolved relative to its directory, must land on grub.conf.
        func resolve(_ path: String) -> String {
            guard let link = GrubMenu.links.first(where: { $0.path == path }) else { return path }
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
            return resolve(URL(fileURLWithPath: link.target, relativeTo: dir).standardizedFileURL.path)
        }
        #expect(GrubMenu.links.count == 2)
        for link in GrubMenu.links { #expect(resolve(link.path) == GrubMenu.configPath, "\(link.path)") }
        #expect(Set(GrubMenu.links.map(\.path)) == ["/boot/grub/menu.lst", "/etc/grub.conf"])
    }
}

@Suite struct NetworkAndSystemTests {
    @Test func ifcfgEth0IsTheGoldenWithoutHardwareIdentity() throws {
        try expectGolden(Network.ifcfgEth0, "ifcfg-eth0")
        #expect(!Network.ifcfgEth0.contains("HWADDR") && !Network.ifcfgEth0.contains("UUID"))
    }

    @Test func sysconfigNetworkIsTheGolden() throws { try expectGolden(Network.sysconfigNetwork, "network") }

    @Test func clockIsTheGolden() throws {
        try expectGolden(Clock.sysconfigClock, "clock")
        #expect(Clock.zoneinfoSource.hasSuffix("/GMT"))
    }

    @Test func releaseverPinsThePointRelease() {
        #expect(YumRepos.releasever("6.9") == "6.9\n")
        #expect(YumRepos.releasever("6.10") == "6.10\n")
    }

    @Test func selinuxIsDisabledKeepingTheRest() throws {
        let original = try fixture("selinux-config")
        let edited = SELinux.disable(original)
        try expectGolden(edited, "selinux-config")
        #expect(SELinux.disable(edited) == edited, "idempotent")
        let diff = zip(lines(original), lines(edited)).filter { $0 != $1 }
        #expect(diff.count == 1 && diff.first?.1 == "SELINUX=disabled", "only the SELINUX= line changes")
        #expect(SELinux.disable(original.replacingOccurrences(of: "SELINUX=enforcing", with: "SELINUX=permissive")) == edited)
        #expect(SELinux.disable("") == "SELINUX=disabled\n", "a missing file gets the line")
        #expect(SELinux.disable("SELINUXTYPE=targeted") == "SELINUXTYPE=targeted\nSELINUX=disabled\n")
    }
}

@Suite struct YumRepoTests {
    func rewritten() throws -> String {
        YumRepos.rewriteCentOSBase(try fixture("CentOS-Base.repo"), mirror: mirror, commentedMirror: commentedMirror)
    }

    @Test func centos69BaseRepoIsTheGolden() throws { try expectGolden(try rewritten(), "CentOS-Base.repo") }

    @Test func idempotent() throws {
        let once = try rewritten()
        #expect(YumRepos.rewriteCentOSBase(once, mirror: mirror, commentedMirror: commentedMirror) == once)
        #expect(YumRepos.rewriteCentOSBase(once, mirror: mirror + "/", commentedMirror: commentedMirror + "/") == once, "a trailing slash changes nothing")
    }

    /// Per section: no active mirrorlist, exactly our two baseurls, everything else kept.
    @Test func everySectionPointsAtTheVault() throws {
        let original = try fixture("CentOS-Base.repo"), text = try rewritten()
        let sections = ["base": "os", "updates": "updates", "extras": "extras", "centosplus": "centosplus", "contrib": "contrib"]
        var current = "", seen: [String: [String]] = [:]
        for line in lines(text) {
            if line.hasPrefix("[") { current = String(line.dropFirst().dropLast()); continue }
            if !current.isEmpty { seen[current, default: []].append(line) }
        }
        #expect(Set(seen.keys) == Set(sections.keys))
        for (section, dir) in sections {
            let body = seen[section] ?? []
            #expect(!body.contains { $0.hasPrefix("mirrorlist=") }, "\(section)")
            #expect(body.filter { $0.hasPrefix("#mirrorlist=") && $0.contains("repo=\(dir)&") }.count == 1, "\(section)")
            #expect(body.filter { $0.hasPrefix("baseurl=") } == ["baseurl=\(mirror)/$releasever/\(dir)/$basearch/"], "\(section)")
            #expect(body.filter { $0.hasPrefix("#baseurl=") } == ["#baseurl=\(commentedMirror)/$releasever/\(dir)/$basearch/"], "\(section)")
            #expect(body.contains("gpgcheck=1") && body.contains("gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-6"), "\(section)")
            #expect(body.contains("enabled=0") == ["centosplus", "contrib"].contains(section), "\(section)")
        }
        #expect(!text.contains("mirror.centos.org"), "the dead mirror's commented baseurls are replaced")
        // Nothing but mirrorlist/baseurl lines changed.
        let untouched = { (t: String) in lines(t).filter { !$0.contains("mirrorlist=") && !$0.contains("baseurl=") } }
        #expect(untouched(original) == untouched(text))
    }

    @Test func sectionWithoutMirrorlistAndContinuationURLs() {
        let repo = "[updates]\nname=x\nbaseurl=http://a/6/updates/x86_64/\n  http://b/6/updates/x86_64/\ngpgcheck=1\n"
        let out = YumRepos.rewriteCentOSBase(repo, mirror: mirror, commentedMirror: commentedMirror)
        #expect(
            out
                == "[updates]\nname=x\n#baseurl=\(commentedMirror)/$releasever/updates/$basearch/\nbaseurl=\(mirror)/$releasever/updates/$basearch/\ngpgcheck=1\n"
        )
    }
}

@Suite struct SSHDTests {
    /// CentOS 6's file: `#UseDNS yes` and `#PermitRootLogin yes` commented, `PasswordAuthentication yes` present.
    @Test func centos69ConfigIsTheGolden() throws {
        let original = try fixture("sshd_config")
        let edited = SSHD.harden(original)
        try expectGolden(edited, "sshd_config")
        #expect(SSHD.harden(edited) == edited, "idempotent")
        let changed = zip(lines(original), lines(edited)).filter { $0 != $1 }.map { "\($0.0) -> \($0.1)" }
        #expect(
            changed == [
                "#PermitRootLogin yes -> PermitRootLogin no",
                "PasswordAuthentication yes -> PasswordAuthentication no",
                "#UseDNS yes -> UseDNS no",
            ])
    }

    /// The three keywords missing, and an active Match block at the end: they go before it.
    @Test func missingKeywordsGoBeforeTheFirstMatch() throws {
        let stripped = lines(try fixture("sshd_config")).filter { line in
            !["UseDNS", "PermitRootLogin", "PasswordAuthentication"].contains { line.contains($0) }
        }.joined(separator: "\n")
        let original = stripped + "Match User backup\n\tPasswordAuthentication yes\n\tPermitRootLogin yes\n"
        let edited = SSHD.harden(original)
        try expectGolden(edited, "sshd_config-missing-match")
        #expect(SSHD.harden(edited) == edited, "idempotent")
        #expect(
            edited.hasSuffix(
                "UseDNS no\nPermitRootLogin no\nPasswordAuthentication no\nMatch User backup\n\tPasswordAuthentication yes\n\tPermitRootLogin yes\n"),
            "global settings before the Match; its own lines untouched")
    }

    @Test func presentWithOtherValuesInAnySpelling() {
        let original = "usedns yes\nPermitRootLogin=without-password\nPasswordAuthentication\tyes\nPasswordAuthentication no\n"
        #expect(
            SSHD.harden(original) == "UseDNS no\nPermitRootLogin no\nPasswordAuthentication no\n#PasswordAuthentication no\n",
            "first active line rewritten, later duplicates commented out")
        #expect(SSHD.harden("") == "UseDNS no\nPermitRootLogin no\nPasswordAuthentication no\n", "appended to an empty file")
        #expect(
            SSHD.harden("# PermitRootLogin is prose here\n") == "# PermitRootLogin is prose here\nUseDNS no\nPermitRootLogin no\nPasswordAuthentication no\n")
        #expect(
            SSHD.harden("#UseDNSX yes") == "#UseDNSX yes\nUseDNS no\nPermitRootLogin no\nPasswordAuthentication no\n", "a longer keyword is another keyword")
    }
}

@Suite struct SudoersTests {
    @Test func centos69AlreadyIncludesTheDirectory() throws {
        let original = try fixture("sudoers")
        #expect(Sudoers.addIncludeDir(original) == original)
    }

    @Test func appendedWhenAbsent() throws {
        let without = lines(try fixture("sudoers")).filter { !$0.hasPrefix("#includedir") }.joined(separator: "\n")
        let edited = Sudoers.addIncludeDir(without)
        try expectGolden(edited, "sudoers-appended")
        #expect(edited.hasSuffix("\n#includedir /etc/sudoers.d\n"))
        #expect(Sudoers.addIncludeDir(edited) == edited, "idempotent")
        #expect(Sudoers.addIncludeDir("root ALL=(ALL) ALL") == "root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n", "no newline at the end")
        #expect(Sudoers.addIncludeDir("@includedir /etc/sudoers.d\n") == "@includedir /etc/sudoers.d\n")
    }

    @Test func ec2UserRuleIsTheGolden() throws {
        try expectGolden(Sudoers.ec2UserRule, "sudoers.d-ec2-user")
        #expect(Sudoers.ec2UserMode == 0o440 && Sudoers.directoryMode == 0o750 && Sudoers.mode == 0o440)
    }
}

@Suite struct RcLocalTemplateTests {
    @Test func scriptIsTheGoldenByteForByte() throws {
        // The golden file holds the shell's `$(...)`, `$((...))` and `"$nl%{http_code}"`
        // as written: nothing was expanded when the template was rendered.
        try expectGolden(RcLocal.script, "rc.local")
    }

    @Test func shellExpansionsAreLiteral() {
        let s = RcLocal.script
        for literal in [
            #"start=$(date +%s)"#, #"calls=$((calls + 1))"#, #"status=$?"#, #"-w "$nl%{http_code}""#, "home=~ec2-user", #"printf '%s\n' "$key" | grep -Eq"#,
        ] {
            #expect(s.contains(literal), "\(literal)")
        }
        #expect(s.hasPrefix("#!/bin/sh\n"))
        #expect(s.contains("\ntouch /var/lock/subsys/local\n"))
    }

    /// Every request: curl -f with both timeouts; PUT carries the TTL, GET the token; no other URL.
    @Test func everyRequestIsBoundedAndTokened() {
        let s = RcLocal.script
        let curls = lines(s).filter { $0.contains("curl ") && !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        #expect(curls.count == 1, "one curl call site, shared by the PUT and the GET")
        #expect(curls.allSatisfy { $0.contains("curl -f -sS --connect-timeout 2 --max-time 5 ") })
        let calls = lines(s).map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("call ") }
        #expect(
            calls == [
                #"call PUT /latest/api/token "X-aws-ec2-metadata-token-ttl-seconds: 21600""#,
                #"call GET /latest/meta-data/public-keys/0/openssh-key "X-aws-ec2-metadata-token: $token""#,
            ])
        #expect(s.contains("imds=http://169.254.169.254\n"), "the address is fixed in the script")
        for forbidden in ["rpm ", "yum ", "| sh", "|sh", "bash -c", "wget", "ec2-ami-tools", "ec2-metadata ", "/ec2-metadata", "s3.amazonaws", "eval "] {
            #expect(!s.contains(forbidden), "no download and execution of software: \(forbidden)")
        }
    }
}

@Suite struct ImageFilesTests {
    func configuration(ena: Bool = false) throws -> ImageConfiguration {
        let versions = try VersionsFile.embedded()
        var c = ImageConfiguration(release: try versions.require("6.9"), mirrors: versions.mirrors, ena: ena)
        c.timeSync = true
        return c
    }

    /// The whole list the configure step walks: path, mode, owner, what.
    @Test func listIsTheGolden() throws {
        let listing = imageFiles(try configuration()).map { f -> String in
            let what: String
            switch f.content {
            case let .text(t): what = "text \(t.utf8.count) bytes"
            case let .edit(e): what = "edit \(e)"
            case let .copy(from): what = "copy of \(from)"
            case let .symlink(target): what = "symlink -> \(target)"
            case .directory: what = "directory"
            }
            return "\(f.path) \(String(f.mode, radix: 8)) \(f.uid):\(f.gid) \(what)"
        }
        try expectGolden(listing.joined(separator: "\n") + "\n", "image-files.txt")
    }

    @Test func filesComeFromTheTemplates() throws {
        let c = try configuration(ena: true)
        let files = imageFiles(c)
        func text(_ path: String) -> String? {
            guard case let .text(t)? = files.first(where: { $0.path == path })?.content else { return nil }
            return t
        }
        #expect(c.kernel == "2.6.32-696.el6.x86_64")
        #expect(text("/etc/sysconfig/kernel") == SysconfigKernel.text)
        #expect(text("/boot/grub/grub.conf") == GrubMenu.render(release: "6.9", kernel: "2.6.32-696.el6.x86_64", ena: true))
        #expect(text("/etc/fstab") == Fstab.render())
        #expect(text("/etc/rc.d/rc.local") == RcLocal.script)
        #expect(text("/etc/yum/vars/releasever") == "6.9\n")
        #expect(Set(files.map(\.path)).count == files.count, "each path once")
        #expect(files.allSatisfy { $0.path.hasPrefix("/") && !$0.path.contains("..") })
        // Directories come before what goes in them.
        for (i, f) in files.enumerated() {
            let parent = URL(fileURLWithPath: f.path).deletingLastPathComponent().path
            if let j = files.firstIndex(where: { $0.path == parent }) { #expect(j < i, "\(parent) before \(f.path)") }
        }
        let edit = files.compactMap { f -> ImageFile.Edit? in if case let .edit(e) = f.content { return e } else { return nil } }
        #expect(edit.contains(.centosBaseRepo(mirror: "http://archive.kernel.org/centos-vault", commentedMirror: "https://vault.centos.org")))
    }

    @Test func editsApplyTheTemplateFunctions() throws {
        #expect(ImageFile.Edit.sshdConfig.apply(to: try fixture("sshd_config")) == SSHD.harden(try fixture("sshd_config")))
        #expect(ImageFile.Edit.selinuxDisabled.apply(to: "") == "SELINUX=disabled\n")
        #expect(!ImageFile.Edit.selinuxDisabled.requiresOriginal && ImageFile.Edit.sshdConfig.requiresOriginal)
    }
}
