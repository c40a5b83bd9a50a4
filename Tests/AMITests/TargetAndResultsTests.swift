import Foundation
import Testing
@testable import AMI
import Host
import TestSupport

func scratch(_ name: String) throws -> String {
    let dir = NSTemporaryDirectory() + "ami-tests-\(name)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func write(_ text: String, to path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

@Suite struct TargetTests {
    @Test func parsesVolumeIDsAndDevices() throws {
        #expect(try RegisterTarget.parse("vol-0123456789abcdef0") == .volume("vol-0123456789abcdef0"))
        #expect(try RegisterTarget.parse("/dev/nvme1n1") == .device("/dev/nvme1n1"))
        #expect(throws: AMIError.self) { try RegisterTarget.parse("vol-xyz") }
        #expect(throws: AMIError.self) { try RegisterTarget.parse("disk.img") }
        // An existing regular file is an image to upload; a directory is not.
        let file = NSTemporaryDirectory() + "/target-\(UUID().uuidString).img"
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try RegisterTarget.parse(file) == .image(file))
        #expect(throws: AMIError.self) { try RegisterTarget.parse(NSTemporaryDirectory()) }
    }

    @Test func installTargetsAreEBSDevicesOrImageFiles() throws {
        #expect(try RegisterTarget.forInstall(target: "/dev/nvme1n1") == .device("/dev/nvme1n1"))
        #expect(try RegisterTarget.forInstall(target: "/dev/xvdf") == .device("/dev/xvdf"))
        #expect(try RegisterTarget.forInstall(target: "/var/tmp/c69.img") == .image("/var/tmp/c69.img"), "uploaded after the install")
        #expect(throws: AMIError.self) { try RegisterTarget.forInstall(target: "/dev/loop3") }
    }

    @Test func nvmeSerialIsTheVolumeIDWithoutItsDash() {
        #expect(VolumeLocator.volumeID(fromNVMeSerial: "vol0123456789abcdef0\n") == "vol-0123456789abcdef0")
        #expect(VolumeLocator.volumeID(fromNVMeSerial: "vol-0123456789abcdef0") == "vol-0123456789abcdef0")
        #expect(VolumeLocator.volumeID(fromNVMeSerial: "AWS1234567890ABCDEF") == nil, "instance store")
        #expect(VolumeLocator.volumeID(fromNVMeSerial: "vol") == nil)
    }

    @Test func xenNamesHaveTwoSpellings() {
        #expect(VolumeLocator.attachmentNames(forDevice: "/dev/xvdf") == ["/dev/xvdf", "/dev/sdf"])
        #expect(VolumeLocator.attachmentNames(forDevice: "/dev/sdg") == ["/dev/sdg", "/dev/xvdg"])
    }

    @Test func locateReadsTheNVMeSerialWithoutAskingAnyone() throws {
        let sys = try scratch("sys")
        defer { try? FileManager.default.removeItem(atPath: sys) }
        try write("vol0abcdef0123456789\n", to: sys + "/block/nvme1n1/device/serial")
        let runner = RecordingRunner()
        let id = try VolumeLocator.locate(
            device: "/dev/nvme1n1", sysfsRoot: sys,
            instanceID: {
                Issue.record("no IMDS for NVMe"); return ""
            },
            client: EC2Client(context: AWSContext(), runner: runner))
        #expect(id == "vol-0abcdef0123456789")
        #expect(runner.commands.isEmpty)
    }

    @Test func locateAsksEC2ForAXenAttachment() throws {
        let sys = try scratch("sys")
        defer { try? FileManager.default.removeItem(atPath: sys) }
        let runner = RecordingRunner { _ in
            CommandResult(
                status: 0,
                standardOutput: Data(
                    #"{"Volumes":[{"VolumeId":"vol-0fedcba9876543210","Size":8,"Attachments":[{"Device":"/dev/sdf","InstanceId":"i-0abc","State":"attached"}]}]}"#
                        .utf8))
        }
        let id = try VolumeLocator.locate(
            device: "/dev/xvdf", sysfsRoot: sys, instanceID: { "i-0abc" }, client: EC2Client(context: AWSContext(region: "ap-northeast-1"), runner: runner))
        #expect(id == "vol-0fedcba9876543210")
        #expect(runner.commands.count == 1)
        #expect(runner.commands[0].arguments[1] == "describe-volumes")
        #expect(runner.commands[0].arguments[3].contains("i-0abc"))
        #expect(runner.commands[0].arguments[3].contains("/dev/sdf"))
        let none = RecordingRunner { _ in CommandResult(status: 0, standardOutput: Data(#"{"Volumes":[]}"#.utf8)) }
        #expect(throws: AMIError.self) {
            try VolumeLocator.locate(device: "/dev/xvdf", sysfsRoot: sys, instanceID: { "i-0abc" }, client: EC2Client(context: AWSContext(), runner: none))
        }
        #expect(throws: AMIError.self) {
            try VolumeLocator.locate(device: "/dev/nvme2n1", sysfsRoot: sys, instanceID: { "i-0abc" }, client: EC2Client(context: AWSContext(), runner: none))
        }
    }

    @Test func mountedDeviceOrPartitionIsRefusedOtherwiseSynced() throws {
        let sys = try scratch("sys")
        defer { try? FileManager.default.removeItem(atPath: sys) }
        try write("259:4\n", to: sys + "/class/block/nvme1n1/dev")
        try write("259:5\n", to: sys + "/class/block/nvme1n1/nvme1n1p1/dev")
        let mounted = sys + "/mountinfo-mounted"
        try write(
            """
            22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw
            95 22 259:5 / /mnt/target rw,relatime shared:50 - ext4 /dev/nvme1n1p1 rw
            """, to: mounted)
        let runner = RecordingRunner()
        #expect(throws: AMIError.targetMounted(device: "/dev/nvme1n1", mountPoint: "/mnt/target")) {
            try VolumeLocator.quiesce(device: "/dev/nvme1n1", sysfsRoot: sys, mountinfoPath: mounted, runner: runner)
        }
        #expect(runner.commands.isEmpty)
        let quiet = sys + "/mountinfo-quiet"
        try write("22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n", to: quiet)
        try VolumeLocator.quiesce(device: "/dev/nvme1n1", sysfsRoot: sys, mountinfoPath: quiet, runner: runner)
        #expect(runner.lines == ["sync /dev/nvme1n1"])
        #expect(throws: AMIError.self) { try VolumeLocator.quiesce(device: "/dev/nope", sysfsRoot: sys, mountinfoPath: quiet, runner: runner) }
    }

    @Test func deviceTargetIsQuiescedAndLocatedBeforeTheSnapshot() throws {
        let sys = try scratch("sys")
        defer { try? FileManager.default.removeItem(atPath: sys) }
        try write("259:4\n", to: sys + "/class/block/nvme1n1/dev")
        try write("vol0123456789abcdef0\n", to: sys + "/block/nvme1n1/device/serial")
        try write("", to: sys + "/mountinfo")
        let fake = FakeEC2()
        var o = RegisterOptions(aws: AWSContext(region: "ap-northeast-1"), buildID: "b", toolVersion: "0")
        o.sysfsRoot = sys
        o.mountinfoPath = sys + "/mountinfo"
        o.clock = FakeClock().clock
        o.instanceID = {
            Issue.record("never the IMDS in tests"); return ""
        }
        _ = try AMIRegistrar.register(target: .device("/dev/nvme1n1"), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
        #expect(fake.runner.lines.first == "sync /dev/nvme1n1")
        #expect(fake.runner.commands[1].arguments.contains("vol-0123456789abcdef0"))
    }
}

@Suite struct WaiterTests {
    @Test func imageFailureIsReportedWithItsReason() throws {
        let runner = RecordingRunner { _ in
            CommandResult(
                status: 0,
                standardOutput: Data(
                    #"{"Images":[{"ImageId":"ami-1","State":"failed","StateReason":{"Code":"Client.InvalidSnapshot","Message":"bad snapshot"}}]}"#.utf8))
        }
        let clock = FakeClock()
        #expect(throws: AMIError.imageFailed(id: "ami-1", region: "r", state: "failed", message: "bad snapshot")) {
            _ = try Waiter.imageAvailable(
                "ami-1", client: EC2Client(context: AWSContext(), runner: runner), region: "r",
                policy: WaitPolicy(timeout: 60, interval: 5), clock: clock.clock, progress: { _ in })
        }
        #expect(clock.sleeps.isEmpty)
    }

    @Test func notFoundRightAfterCreationIsPending() throws {
        var answers = [
            CommandResult(status: 255, standardError: Data("An error occurred (InvalidSnapshot.NotFound) when calling the DescribeSnapshots operation".utf8)),
            CommandResult(status: 0, standardOutput: Data(#"{"Snapshots":[{"SnapshotId":"snap-1","State":"pending","Progress":"12%"}]}"#.utf8)),
            CommandResult(
                status: 0, standardOutput: Data(#"{"Snapshots":[{"SnapshotId":"snap-1","State":"completed","Progress":"100%","VolumeSize":8}]}"#.utf8)),
        ]
        let runner = RecordingRunner { _ in answers.removeFirst() }
        var progress: [String] = []
        let clock = FakeClock()
        let snap = try Waiter.snapshotCompleted(
            "snap-1", client: EC2Client(context: AWSContext(), runner: runner),
            policy: WaitPolicy(timeout: 600, interval: 30), clock: clock.clock
        ) { progress.append($0) }
        #expect(snap.VolumeSize == 8)
        #expect(clock.sleeps == [30, 30])
        #expect(progress == ["snapshot 'snap-1': not yet listed (0 s)", "snapshot 'snap-1': pending 12% (30 s)", "snapshot 'snap-1' completed"])
    }

    @Test func otherCallErrorsStopTheWait() {
        let runner = RecordingRunner { _ in CommandResult(status: 255, standardError: Data("An error occurred (UnauthorizedOperation)".utf8)) }
        #expect(throws: AMIError.self) {
            _ = try Waiter.snapshotCompleted(
                "snap-1", client: EC2Client(context: AWSContext(), runner: runner),
                policy: WaitPolicy(timeout: 600, interval: 30), clock: FakeClock().clock
            ) { _ in }
        }
        #expect(runner.commands.count == 1)
    }
}

@Suite struct ResultsTests {
    func record(_ id: String, release: String = "6.9", region: String = "ap-northeast-1", variant: AMIVariant = .plain) -> AMIRecord {
        AMIRecord(
            release: release, region: region, variant: variant, amiId: id, snapshotId: "snap-\(id)", name: "n", date: "2024-05-01T00:00:00Z", buildId: "b")
    }

    @Test func mergeAppendsAndReplacesByRegionAndID() {
        var updated = record("ami-1")
        updated.name = "renamed"
        let file = ResultsFile(amis: [record("ami-1"), record("ami-2")]).merging([updated, record("ami-3"), record("ami-1", region: "us-east-1")])
        #expect(file.amis.map(\.amiId) == ["ami-1", "ami-2", "ami-3", "ami-1"])
        #expect(file.amis[0].name == "renamed")
    }

    @Test func concurrentMergesLoseNothing() throws {
        let dir = try scratch("results")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/results.json"
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            try! ResultsFile.merge([record("ami-\(i)")], into: path)
        }
        let file = try ResultsFile.load(path: path)
        #expect(Set(file.amis.map(\.amiId)) == Set((0..<16).map { "ami-\($0)" }))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["results.json", "results.json.lock"], "no temporary file left")
    }

    @Test func fileFormatIsStable() throws {
        let json = """
            {"schema": 1, "amis": [{"release": "6.9", "region": "ap-northeast-1", "variant": "ena", "amiId": "ami-1", "snapshotId": "snap-1",
              "name": "CentOS 6.9 x86_64 ENA 2024-05-01", "date": "2024-05-01T00:00:00Z", "buildId": "b", "public": false}]}
            """
        let file = try ResultsFile.decode(Data(json.utf8), path: "x")
        #expect(file.amis[0].variant == .ena)
        #expect(file.amis[0].tableEntry == AMIEntry(release: "6.9", region: "ap-northeast-1", variant: "ena", id: "ami-1"))
        #expect(try ResultsFile.decode(file.encoded(), path: "x") == file)
        #expect(throws: AMIError.self) { try ResultsFile.decode(Data(#"{"amis": 3}"#.utf8), path: "x") }
        #expect(throws: AMIError.self) { try ResultsFile.load(path: "/nonexistent/results.json") }
    }

    @Test func tableFromRecordsHasTheSeedForm() {
        let records = [
            record("ami-0e", release: "6.9", variant: .ena), record("ami-0b", release: "6.9"), record("ami-0a", release: "6.4"),
            record("ami-0c", release: "6.10", region: "us-east-1"),
        ]
        let text = AMITable.markdown(records.map(\.tableEntry))
        #expect(text.contains("| CentOS 6.4  |  ami-0a  |\n| CentOS 6.9  |  ami-0b, ami-0e (*1) |"))
        #expect(text.contains("Region: us-east-1\n\n| version  | AMI ID |\n| ------------- | ------------- |\n| CentOS 6.10  |  ami-0c  |"))
        #expect(text.hasSuffix(AMITable.footnote))
    }
}

/// `register --device DEV VOL_ID`: where the platform can tell (Nitro's NVMe serial), DEV must be that volume.
@Suite struct DeviceIsVolumeTests {
    @Test func theNVMeSerialDecidesAndElseItCannotTell() throws {
        let sysfs = FileManager.default.temporaryDirectory.appendingPathComponent("sysfs-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: sysfs) }
        try FileManager.default.createDirectory(atPath: sysfs + "/block/nvme1n1/device", withIntermediateDirectories: true)
        try "vol0123456789abcdef0\n".write(toFile: sysfs + "/block/nvme1n1/device/serial", atomically: true, encoding: .utf8)
        #expect(VolumeLocator.check(device: "/dev/nvme1n1", isVolume: "vol-0123456789abcdef0", sysfsRoot: sysfs) == .same)
        #expect(VolumeLocator.check(device: "/dev/nvme1n1", isVolume: "vol-0fedcba9876543210", sysfsRoot: sysfs) == .other("vol-0123456789abcdef0"))
        #expect(VolumeLocator.check(device: "/dev/xvdf", isVolume: "vol-0123456789abcdef0", sysfsRoot: sysfs) == .unknown)
    }
}
