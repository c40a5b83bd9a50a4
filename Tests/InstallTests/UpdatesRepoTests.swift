@testable import Install
import Testing

/// `install --updates`: the chroot yum's second repository.
@Suite struct UpdatesRepoTests {
    @Test func withoutUpdatesTheChrootYumHasOnlyTheOsRepository() {
        let config = PackageSteps.yumConfig(upstream: "http://vault.example/6.9/os/x86_64/")
        #expect(config.contains("[centos6-ami-os]"))
        #expect(!config.contains("updates"), "\(config)")
    }

    @Test func updatesAddsTheUpdatesRepositoryLocalMirrorFirstWithGpgcheck() {
        let config = PackageSteps.yumConfig(
            upstream: "http://vault.example/6.9/os/x86_64/",
            updatesUpstream: "http://vault.example/6.9/updates/x86_64/")
        let section = config.components(separatedBy: "[centos6-ami-updates]").last ?? ""
        #expect(config.contains("[centos6-ami-updates]"), "\(config)")
        #expect(section.contains("baseurl=file:///var/cache/yum/centos6-ami/mirror-updates/\n        http://vault.example/6.9/updates/x86_64/\n"), "\(section)")
        #expect(section.contains("gpgcheck=1\ngpgkey=file:///var/cache/yum/centos6-ami/RPM-GPG-KEY\nenabled=1\n"), "\(section)")
    }
}
