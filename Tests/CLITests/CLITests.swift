import Foundation
import Testing
@testable import CLI
import TestSupport
import Versions

/// Runs the CLI in-process and captures both streams.
func runCLI(_ args: [String]) -> (code: Int32, out: String, err: String) {
    var out: [String] = [], err: [String] = []
    let console = Console(out: { out.append($0) }, err: { err.append($0) }, environment: [:])
    let code = CLI.main(args, console: console)
    return (code, out.joined(separator: "\n"), err.joined(separator: "\n"))
}

@Suite struct TableCommandTests {
    @Test func reproducesTheSeedReadmeRowsExactly() throws {
        let result = runCLI(["table"])
        #expect(result.code == 0)
        let seed = try golden("seed-README.ja.md").split(separator: "\n").filter { $0.hasPrefix("| ") }.map(String.init)
        let ours = result.out.split(separator: "\n").filter { $0.hasPrefix("| ") }.map(String.init)
        #expect(ours == seed)
        #expect(result.out.contains("*1 ... ENA driver"))
    }

    @Test func markdownGoldenAndJSON() throws {
        try expectGolden(runCLI(["table"]).out + "\n", "table.md")
        let json = runCLI(["table", "--format", "json"])
        #expect(json.code == 0)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as! [[String: String]]
        #expect(decoded.count == 16)
        #expect(decoded.filter { $0["variant"] == "ena" }.map { $0["release"]! } == ["6.6", "6.7", "6.8", "6.9", "6.10"])
        #expect(runCLI(["table", "--format", "html"]).code == 64)
    }
}

@Suite struct ArgumentTests {
    @Test func parsesFlagsOptionsAndPositionals() throws {
        let p = try parseArguments(
            ["6.9", "--dry-run", "--mirror=http://x", "/dev/xvdb", "--size", "10G", "--", "--odd"],
            flags: ["--dry-run"], options: ["--mirror", "--size"], usage: "u")
        #expect(p.positionals == ["6.9", "/dev/xvdb", "--odd"])
        #expect(p.has("--dry-run"))
        #expect(p.value("--mirror") == "http://x")
        #expect(p.value("--size") == "10G")
        #expect(throws: UsageError.self) { try parseArguments(["--bogus"], usage: "u") }
        #expect(throws: UsageError.self) { try parseArguments(["--size"], options: ["--size"], usage: "u") }
        #expect(throws: UsageError.self) { try parseArguments(["--dry-run=yes"], flags: ["--dry-run"], usage: "u") }
    }

    @Test func helpAndVersionGoToStdout() {
        let help = runCLI(["--help"])
        #expect(help.code == 0 && help.out.contains("usage: centos6-ami") && help.err.isEmpty)
        for name in ["install", "versions", "table"] {
            let a = runCLI(["help", name]), b = runCLI([name, "--help"])
            #expect(a.code == 0 && b.code == 0 && a.out == b.out && a.out.hasPrefix("usage: centos6-ami \(name)"))
        }
        #expect(runCLI(["--version"]).out == "centos6-ami \(CLI.version)")
    }

    @Test(arguments: [
        ([], "no command given"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["help", "frobnicate"], "unknown command 'frobnicate'"),
        (["versions", "--bogus"], "unknown option '--bogus'"),
        (["install"], "install needs VERSION and TARGET"),
        (["install", "6.9"], "install needs VERSION and TARGET"),
        (["install", "6.9", "/dev/xvdb", "--mirror", "ftp://x"], "mirror 'ftp://x' is not an http://, https:// or file:// URL"),
        (["install", "6.9", "/dev/xvdb", "--size", "huge"], "size 'huge' is not a size"),
        (["install", "6.9", "/dev/xvdb", "--size", "1G"], "--size must be at least 2G"),
        (["install", "6.9", "/dev/xvdb", "--yum-cache", "/nonexistent"], "--yum-cache: '/nonexistent'"),
        (["install", "6.9", "/dev/xvdb", "--stop-after", "nap"], "unknown step 'nap'"),
        (["install", "6.9", "/dev/xvdb", "--stop-after", "ena-build"], "unknown step 'ena-build' without --ena"),
        (["batch", "6.9=/tmp/x.img", "--stop-after", "ena-install"], "unknown step 'ena-install'"),
        (["install", "6.9", "/dev/xvdb", "--hold", "5"], "--hold needs --stop-after"),
        (["install", "6.9", "/dev/xvdb", "extra"], "unexpected argument 'extra'"),
        (["install", "6.9", "/dev/loop3", "--register"], "is a loop device, not an EBS volume"),
        (["install", "6.9", "/dev/xvdb", "--region", "ap-northeast-1"], "--region needs --register"),
        (["register", "6.9", "/nonexistent/c69.img"], "nor an existing image file"),
        (["register", "6.9", "vol-0123456789abcdef0", "--upload-jobs", "0"], "--upload-jobs needs a whole number from 1 to 256"),
        (["table", "--packages"], "--packages needs --from RESULTS.json"),
        (["install", "6.9", "/dev/xvdb", "--register", "--dry-run"], "--register makes no sense"),
    ])
    func usageErrorsExit64WithTheUsageLine(_ args: [String], _ message: String) {
        let r = runCLI(args)
        #expect(r.code == 64, "\(args)")
        #expect(r.err.hasPrefix("error: "), "\(r.err)")
        #expect(r.err.contains(message), "\(r.err)")
        #expect(r.err.contains("usage: centos6-ami"), "\(r.err)")
    }

    @Test func unknownReleaseIsAUsageErrorListingTheValidOnes() {
        let r = runCLI(["install", "7.0", "/dev/xvdb"])
        #expect(r.code == 64)
        #expect(r.err.hasPrefix("error: unknown release '7.0'; valid releases: 6.0, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 6.10\nusage: "))
    }

    @Test func aMissingVersionsFileIsAUsageError() {
        let r = runCLI(["versions", "--versions", "/nonexistent/versions.json"])
        #expect(r.code == 64)
        #expect(r.err.hasPrefix("error: --versions '/nonexistent/versions.json' is not a readable file\nusage: "))
    }

    @Test func versionsTableAndJSON() throws {
        let r = runCLI(["versions"])
        #expect(r.code == 0)
        #expect(r.out.split(separator: "\n").count == 12)
        #expect(r.out.contains("6.9     2.6.32-696.el6        yes (2.9.1); updates bring kernel 2.6.32-696.30.1.el6\n"))
        let json = runCLI(["versions", "--json"])
        let decoded = try JSONDecoder().decode(VersionsFile.self, from: Data(json.out.utf8))
        #expect(decoded == (try VersionsFile.embedded()))
    }
}

@Suite struct MirrorOptionTests {
    /// `--mirror` repeats: install keeps the order (primary first), batch passes every one on.
    @Test func repeatedMirrorsArePrimaryThenAlternatives() throws {
        let versions = try VersionsFile.embedded()
        let args = try InstallCommand.parse(["6.9", "/x.img", "--mirror", "http://a", "--mirror", "file:///b"])
        let options = try InstallCommand.makeOptions(args, versions: versions, environment: [:])
        #expect(options.mirror == "http://a")
        #expect(options.alternativeMirrors == ["file:///b"])
        let defaults = try InstallCommand.makeOptions(try InstallCommand.parse(["6.9", "/x.img"]), versions: versions, environment: [:])
        #expect(defaults.mirrors == [versions.mirrors.download] + versions.mirrors.downloadAlternatives)
        #expect(throws: UsageError.self) { _ = try InstallCommand.parse(["6.9", "/x.img", "--mirror", "http://a", "--mirror", "ftp://b"]) }
        let batch = try BatchCommand.parse(["6.9=/x.img", "--mirror", "http://a", "--mirror", "http://b"])
        #expect(InstallCommand.options.words(batch.install) == ["--mirror", "http://a", "--mirror", "http://b"])
    }
}
