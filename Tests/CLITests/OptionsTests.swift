import Foundation
import Host
import Testing
import Versions
@testable import CLI
@testable import Install

/// Options declared once: each declaration parses, checks and stores its value, and writes it
/// back as words that parse to the same value (how batch and `install --register` pass them on).
@Suite struct OptionsTests {
    static let everyInstallOption = [
        "6.9", "/x.img", "--yum-cache", "tmpfs:512M", "--mirror", "http://a", "--mirror", "file:///b", "--size", "10G",
        "--cache", "/c", "--ena", "--ena-source", "/e.tar.gz", "--ena-share", "/share", "--minimal", "--updates",
        "--speed-limit", "2000", "--speed-time", "45", "--log", "/l.log", "--keep-on-error", "--register", "--region", "eu-west-1", "--endpoint-url",
        "http://127.0.0.1:9", "--results", "/r.json",
        "--build-id", "b-1", "--copy-to", "us-east-1,ap-northeast-1", "--versions", "/v.json", "--result-json", "/res.json",
    ]

    @Test func installsOptionsArriveTypedAndPassOnAsWordsThatParseToTheSame() throws {
        let given = try InstallCommand.parse(Self.everyInstallOption)
        #expect(given.release == "6.9" && given.target == "/x.img")
        #expect(given.options.yumCache == .tmpfs(bytes: 512 << 20))
        #expect(given.mirrors == ["http://a", "file:///b"])
        #expect(given.size == 10 << 30)
        #expect(given.options.lowSpeedLimit == 2000 && given.options.lowSpeedTime == 45)
        #expect(given.options.ena && given.options.minimal && given.options.updates && given.options.keepOnError && given.register)
        let stopping = try InstallCommand.parse(["6.9", "/x.img", "--ena", "--stop-after", "ena-build", "--hold", "2.5"])
        #expect(stopping.options.stopAfter == "ena-build" && stopping.options.holdSeconds == 2.5)
        #expect(try InstallCommand.parse(Array(InstallCommand.words(stopping).dropFirst())).options.holdSeconds == 2.5)
        #expect(given.registration.region == "eu-west-1" && given.registration.copyTo == ["us-east-1", "ap-northeast-1"])
        #expect(given.registration.buildID == "b-1" && given.registration.results == "/r.json")
        let again = try InstallCommand.parse(Array(InstallCommand.words(given).dropFirst()))
        #expect(InstallCommand.words(again) == InstallCommand.words(given))
        #expect(Set(InstallCommand.words(given).filter { $0.hasPrefix("--") }) == Set(Self.everyInstallOption.filter { $0.hasPrefix("--") }))
    }

    @Test func aValueIsCheckedWhereItIsDeclared() {
        for (words, message) in [
            (["--speed-limit", "0"], "--speed-limit needs a whole number of bytes per second (at least 1)"),
            (["--size", "1G"], "--size must be at least 2G"),
            (["--yum-cache", "/nonexistent/cache"], "is not tmpfs, tmpfs:SIZE"),
            (["--copy-to", "us east"], "--copy-to needs a comma-separated list of regions"),
            (["--build-id", "a b"], "build id 'a b' may hold only"),
            (["--ena-share", "/s"], "--ena-share needs --ena"),
            (["--register", "--dry-run"], "--register makes no sense with --stop-after or --dry-run"),
        ] {
            #expect(throws: UsageError.self) { _ = try InstallCommand.parse(["6.9", "/x.img"] + words) }
            do { _ = try InstallCommand.parse(["6.9", "/x.img"] + words) } catch { #expect("\(error)".contains(message), "\(words): \(error)") }
        }
    }

    /// batch declares none of install's options again: they land in its `install` value and
    /// reach each install, --updates included; ENA only where the release can take it.
    @Test func batchPassesInstallsOwnOptionsToEachInstall() throws {
        let batch = try BatchCommand.parse([
            "6.5=/a.img", "6.9=/b.img", "--updates", "--minimal", "--ena", "--ena-source", "e.tar.gz",
            "--size", "4G", "--mirror", "http://m", "--jobs", "2",
        ])
        #expect(batch.pairs == ["6.5=/a.img", "6.9=/b.img"] && batch.jobs == 2)
        #expect(batch.install.options.updates && batch.install.options.minimal && batch.install.options.ena && batch.install.size == 4 << 30)
        let shared = BatchCommand.absolutePaths(batch.install)
        #expect(shared.options.enaSource == FileManager.default.currentDirectoryPath + "/e.tar.gz")
        let old = BatchCommand.installArguments(
            shared, job: BatchJob(release: "6.5", target: "/a.img"), ena: false,
            log: "/l1", result: "/r1", enaShare: "/s")
        let new = BatchCommand.installArguments(
            shared, job: BatchJob(release: "6.9", target: "/b.img"), ena: true,
            log: "/l2", result: "/r2", enaShare: "/s")
        let oldWords = InstallCommand.words(old), newWords = InstallCommand.words(new)
        #expect(Array(oldWords.prefix(3)) == ["install", "6.5", "/a.img"])
        #expect(oldWords.contains("--updates") && !oldWords.contains("--ena") && !oldWords.contains("--ena-source"))
        #expect(newWords.contains("--updates") && newWords.contains("--ena") && newWords.contains("--ena-share"))
        // What an install is started with is what install itself parses back.
        let parsed = try InstallCommand.parse(Array(newWords.dropFirst()))
        #expect(
            parsed.options.updates && parsed.options.ena && parsed.options.enaShareDirectory == "/s" && parsed.options.logPath == "/l2"
                && parsed.resultJSON == "/r2" && parsed.size == 4 << 30)
    }

    /// A new install option reaches batch (and every install it starts) with nothing but its
    /// declaration: batch lists every install option except those it sets for each install.
    @Test func everyInstallOptionButTheOnesBatchSetsIsBatchsToo() {
        let install = Set(InstallCommand.options.all.map(\.name)), batch = Set(BatchCommand.options.all.map(\.name))
        #expect(install.subtracting(BatchCommand.notShared).isSubset(of: batch))
        #expect(BatchCommand.notShared.isSubset(of: install), "only install's options are left out")
        let extra = Option<InstallArguments>.flag("--new-option", \.options.minimal, help: "a newcomer's")
        let grown = Options(InstallCommand.options.all + [extra], defaults: InstallArguments())
        #expect(grown.all(except: BatchCommand.notShared, first: BatchCommand.sharedOrder).last?.name == "--new-option")
    }

    /// The tool's environment variables are read once, into the install's options.
    @Test func theEnvironmentIsReadIntoTheOptions() throws {
        let versions = try VersionsFile.embedded(), given = try InstallCommand.parse(["6.9", "/x.img"])
        let options = try InstallCommand.makeOptions(
            given, versions: versions,
            environment: ["CENTOS6_AMI_LOCK_WAIT": "90", "CENTOS6_AMI_WORK_DIR": "/run/w"])
        #expect(options.lockWait == 90 && options.workDirectory == "/run/w")
        let defaults = try InstallCommand.makeOptions(given, versions: versions, environment: [:])
        #expect(defaults.lockWait == FileLock.defaultWait && defaults.workDirectory == "/run/centos6-ami")
        #expect(throws: HostError.self) { _ = try InstallCommand.makeOptions(given, versions: versions, environment: ["CENTOS6_AMI_LOCK_WAIT": "soon"]) }
    }

    /// `install --register` hands register a typed registration: register's own declarations
    /// stored the values, so nothing is parsed twice.
    @Test func installRegisterPassesRegistersOwnOptions() throws {
        let given = try InstallCommand.parse(["6.9", "/x.img", "--register", "--ena", "--keep-on-error", "--region", "eu-west-1", "--copy-to", "us-east-1"])
        let registration = try #require(try InstallCommand.registration(given))
        #expect(registration.release == "6.9" && registration.target == "/x.img")
        #expect(registration.ena && registration.keepOnError && registration.region == "eu-west-1" && registration.copyTo == ["us-east-1"])
        #expect(try RegisterCommand.parse(RegisterCommand.words(registration)).region == "eu-west-1")
        #expect(try InstallCommand.registration(try InstallCommand.parse(["6.9", "/x.img"])) == nil)
    }
}
