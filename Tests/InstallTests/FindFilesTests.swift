import Foundation
import Testing
@testable import Install

/// The clean step's walk: regular files only, excluded subtrees skipped, basenames filtered.
@Suite struct FindFilesTests {
    @Test func regularFilesBelowTheRootOnly() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("find-files-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: root) }
        for dir in ["/root", "/home/ec2-user/.ssh", "/proc/1", "/var/cache/yum/x"] {
            try fm.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
        }
        for file in ["/root/.bash_history", "/home/ec2-user/.ssh/authorized_keys", "/proc/1/.bash_history", "/var/cache/yum/x/known_hosts", "/etc-file"] {
            #expect(fm.createFile(atPath: root + file, contents: Data("x".utf8)))
        }
        // A symlink named like a secret is not a regular file; a link to a directory is not followed.
        try fm.createSymbolicLink(atPath: root + "/root/known_hosts", withDestinationPath: "/etc/hostname")
        try fm.createSymbolicLink(atPath: root + "/loop", withDestinationPath: root + "/root")
        let secrets: Set<String> = [".bash_history", "authorized_keys", "known_hosts"]
        #expect(
            ConfigureSteps.findFiles(root: root, excluding: ["/proc", "/var/cache/yum"], named: secrets)
                == ["/home/ec2-user/.ssh/authorized_keys", "/root/.bash_history"])
        #expect(ConfigureSteps.findFiles(root: root, excluding: ["/proc", "/var/cache/yum", "/home"], named: nil) == ["/etc-file", "/root/.bash_history"])
    }
}
