import Foundation

struct InstallCommand {
    static let subcommand = Subcommand(name: name, summary: summary, usage: usage, help: help, run: run)
    static let name = "install"
    static let summary = "install one CentOS 6 release onto one empty block device or image file"
    static let usage = "usage: centos6-ami install VERSION TARGET [options]"
    static let help = "(being written)"
    @Sendable static func run(_ arguments: [String], console: Console) throws -> Int32 {
        throw UsageError("install is not built yet", usage: usage)
    }
}
