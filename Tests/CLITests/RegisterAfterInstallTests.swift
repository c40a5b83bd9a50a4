import Foundation
import Testing
@testable import CLI

@Suite struct RegisterAfterInstallTests {
    /// `install --register` hands register the install's log, so register's steps land in the same file.
    @Test func registerGetsTheInstallsLog() {
        var err: [String] = []
        let console = Console(out: { _ in }, err: { err.append($0) }, environment: [:])
        // An unknown release stops register at its usage check, before any log is opened or AWS is asked.
        #expect(throws: UsageError.self) {
            _ = try InstallCommand.registerAfterInstall(
                RegisterArguments(release: "6.99", target: "vol-0123456789abcdef0"),
                outcome: .init(status: ExitCode.success, log: "/nonexistent/install-6.9.log"), console: console)
        }
        #expect(err.first == "register: 6.99 vol-0123456789abcdef0 --log /nonexistent/install-6.9.log")
    }

    @Test func aFailedInstallRegistersNothing() throws {
        let console = Console(out: { _ in Issue.record("nothing printed") }, err: { _ in Issue.record("nothing printed") }, environment: [:])
        #expect(
            try InstallCommand.registerAfterInstall(
                RegisterArguments(release: "6.9", target: "vol-0123456789abcdef0"),
                outcome: .init(status: ExitCode.failure, log: "/x.log"), console: console)
                == ExitCode.failure)
    }
}
