import Foundation
import Templates
import TestSupport
import Testing

@Suite struct EC2ReadinessTemplateTests {
    @Test func dracutConfigWithNVMeIsTheGolden() throws {
        let text = DracutEC2.render(nvme: true)
        try expectGolden(text, "dracut-ec2.conf")
        // The one line dracut reads, in the form CentOS 6's dracut.conf(5) documents (spaces inside the quotes).
        let active = lines(text).filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(active == ["add_drivers+=\" xen-blkfront xen-netfront nvme \""])
    }

    @Test func dracutConfigWithoutNVMeIsTheGolden() throws {
        let text = DracutEC2.render(nvme: false)
        try expectGolden(text, "dracut-ec2.conf-no-nvme")
        #expect(!text.contains("nvme"), "a kernel without nvme (6.0-6.4): dracut would fail to find it")
        #expect(text.contains("add_drivers+=\" xen-blkfront xen-netfront \""))
    }

    @Test func ntpConfIsTheGoldenAndPrefersTimeSync() throws {
        try expectGolden(NTPConf.text, "ntp.conf")
        let servers = lines(NTPConf.text).filter { $0.hasPrefix("server ") }
        #expect(servers == ["server 169.254.169.123 prefer iburst"], "only the Amazon Time Sync Service: \(servers)")
        #expect(lines(NTPConf.text).contains("driftfile /var/lib/ntp/drift"))
    }

    @Test func imageFilesCarryNTPOnlyWhenAskedAndTheDracutConfigIsItsOwnList() throws {
        var c = ImageConfiguration(release: "6.4", kernel: "2.6.32-358.el6.x86_64", ena: false, mirror: mirror, commentedMirror: commentedMirror)
        var files = imageFiles(c)
        #expect(!files.contains { $0.path == "/etc/ntp.conf" }, "--minimal: no ntp, so no ntp.conf")
        // ec2.conf is written before the package transaction, not by the configure step.
        #expect(!files.contains { $0.path.hasPrefix("/etc/dracut.conf.d") })
        c.timeSync = true
        files = imageFiles(c)
        #expect(files.contains { $0.path == "/etc/ntp.conf" && $0.content == .text(NTPConf.text) && $0.mode == 0o644 })
        #expect(
            dracutImageFiles(nvme: false) == [
                ImageFile(path: "/etc/dracut.conf.d", content: .directory, mode: 0o755),
                ImageFile(path: "/etc/dracut.conf.d/ec2.conf", content: .text(DracutEC2.render(nvme: false)), mode: 0o644),
            ])
        #expect(dracutImageFiles(nvme: true).last?.content == .text(DracutEC2.render(nvme: true)))
        #expect(Services.enabled == ["acpid", "ntpd"] && Services.packages == ["acpid", "ntp"])
    }
}
