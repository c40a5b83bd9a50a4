import Foundation
import Testing
@testable import AMI
import Host
import TestSupport

@Suite(.serialized) struct RegistrarTests {
    func options(_ fake: FakeEC2, clock: FakeClock = FakeClock()) -> RegisterOptions {
        var o = RegisterOptions.forTests(buildID: "20240501-000000-abcd", clock: clock)
        o.instanceID = {
            Issue.record("the instance id must not be needed for a volume id"); return "i-0"
        }
        return o
    }

    /// Registers the fake volume expecting it to fail: what the error says.
    func failure(_ fake: FakeEC2, _ o: RegisterOptions, log: Log?) throws -> String {
        do {
            _ = try AMIRegistrar.register(target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: log)
        } catch {
            return "\(error)"
        }
        Issue.record("register must fail")
        return ""
    }

    @Test func registersTagsAndWaitsInOrder() throws {
        let fake = FakeEC2(), clock = FakeClock()
        let result = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .ena,
            options: options(fake, clock: clock), runner: fake.runner, log: nil)
        #expect(
            fake.operations == [
                "describe-volumes", "describe-images", "create-snapshot", "describe-snapshots", "describe-snapshots",
                "register-image", "create-tags", "describe-images", "describe-images",
            ])
        #expect(result.primary.name == "CentOS 6.9 x86_64 ENA 2024-05-01")
        #expect(result.primary.variant == .ena)
        #expect(result.primary.region == "ap-northeast-1")
        #expect(result.primary.buildId == "20240501-000000-abcd")
        #expect(result.primary.date == "2024-05-01T00:00:00Z")
        #expect(fake.snapshots[result.primary.snapshotId] != nil)
        #expect(fake.images[result.primary.amiId]?.tags.contains(Tag(TagKey.buildID, "20240501-000000-abcd")) == true)
        #expect(clock.sleeps == [10, 10], "one poll interval per pending answer, on the injected clock")
        let register = fake.runner.commands.first { $0.arguments[1] == "register-image" }!.arguments
        #expect(register.contains("--ena-support"))
        #expect(value(after: "--block-device-mappings", in: register)!.contains(result.primary.snapshotId))
    }

    @Test func plainVariantHasNoENAFlag() throws {
        let fake = FakeEC2()
        let result = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.4", variant: .plain,
            options: options(fake), runner: fake.runner, log: nil)
        #expect(result.primary.name == "CentOS 6.4 x86_64 2024-05-01")
        let register = fake.runner.commands.first { $0.arguments[1] == "register-image" }!.arguments
        #expect(!register.contains { $0.contains("ena-support") })
    }

    @Test func failedRegisterDeletesTheSnapshot() throws {
        let fake = FakeEC2()
        fake.failures["register-image"] = "InvalidParameterValue"
        do {
            _ = try AMIRegistrar.register(
                target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain,
                options: options(fake), runner: fake.runner, log: nil)
            Issue.record("register must fail")
        } catch let error as StepFailed {
            #expect(error.step == "register-image")
            #expect(error.aftermath?.contains("deleted what this run created: snapshot 'snap-") == true)
            #expect("\(error)".hasPrefix("step 'register-image' failed: 'aws ec2 register-image' failed"))
        }
        #expect(fake.snapshots.isEmpty)
        #expect(fake.images.isEmpty)
        #expect(fake.operations.suffix(2) == ["describe-images", "delete-snapshot"], "looks for an AMI by its name, then deletes the snapshot")
    }

    @Test func keepOnErrorKeepsAndNamesTheSnapshot() throws {
        let fake = FakeEC2(), printed = PrintedLines()
        fake.failures["register-image"] = "InvalidParameterValue"
        var o = options(fake)
        o.keepOnError = true
        let error = try failure(fake, o, log: printed.log())
        let snap = try #require(fake.snapshots.keys.first)
        #expect(error.hasPrefix("step 'register-image' failed: 'aws ec2 register-image' failed"))
        #expect(error.contains("kept what this run created (--keep-on-error): snapshot '\(snap)' in 'ap-northeast-1'"))
        #expect(error.contains("centos6-ami cleanup --build-id 20240501-000000-abcd"))
        // The manual lines go where the install's go: the engine's --keep-on-error message.
        #expect(
            printed.text.contains("--keep-on-error: left everything in place; to clean up by hand run:\n  aws ec2 delete-snapshot --snapshot-id \(snap)"),
            "\(printed.text)")
        #expect(fake.snapshots.count == 1)
        #expect(!fake.operations.contains("delete-snapshot"))
        #expect(!printed.text.contains("cleaning up"), "nothing unwound")
    }

    @Test func keepOnErrorAfterTheAMIExistsNamesEverythingWithItsManualLine() throws {
        let fake = FakeEC2(), printed = PrintedLines()
        fake.failures["modify-image-attribute"] = "AuthFailure"
        var o = options(fake)
        o.makePublic = true
        o.keepOnError = true
        let error = try failure(fake, o, log: printed.log())
        let snap = try #require(fake.snapshots.keys.first), ami = try #require(fake.images.keys.first)
        #expect(error.hasPrefix("step 'make-public' failed: "))
        #expect(
            error.contains("kept what this run created (--keep-on-error): image '\(ami)' in 'ap-northeast-1', snapshot '\(snap)' in 'ap-northeast-1'"),
            "newest first, the AMI by its id")
        let manual =
            "to clean up by hand run:\n  aws ec2 deregister-image --image-id \(ami) --output json --region ap-northeast-1"
            + "\n  aws ec2 delete-snapshot --snapshot-id \(snap) --output json --region ap-northeast-1"
        #expect(printed.text.contains(manual), "\(printed.text)")
        #expect(fake.images.count == 1 && fake.snapshots.count == 1)
        #expect(!fake.operations.contains("deregister-image") && !fake.operations.contains("delete-snapshot"))
    }

    @Test func theStepListFollowsTheTargetAndTheOptions() {
        var o = RegisterOptions.forTests(buildID: "b")
        o.resultsFile = nil
        #expect(
            AMIRegistrar.steps(target: .volume("vol-0123456789abcdef0"), variant: .plain, options: o, copyRegions: []).map(\.name)
                == ["check-image", "locate-volume", "choose-name", "create-snapshot", "wait-snapshot", "register-image", "tag-image", "wait-image"])
        #expect(
            AMIRegistrar.steps(target: .device("/dev/nvme1n1"), variant: .ena, options: o, copyRegions: []).map(\.name).prefix(2) == [
                "check-image", "locate-volume",
            ],
            "no preflight without --public")
        var all = o
        all.makePublic = true
        all.resultsFile = "results.json"
        #expect(
            AMIRegistrar.steps(target: .image("/srv/c69.img"), variant: .ena, options: all, copyRegions: ["us-east-1", "eu-west-1"]).map(\.name)
                == [
                    "check-image", "scan-image", "preflight", "choose-name", "start-snapshot", "upload-image", "wait-snapshot", "register-image",
                    "tag-image", "wait-image", "make-public", "copy-to-us-east-1", "copy-to-eu-west-1", "record-results",
                ])
        let plain = AMIRegistrar.steps(target: .image("/srv/c69.img"), variant: .plain, options: all, copyRegions: []).map(\.name)
        #expect(!plain.contains("locate-volume") && !plain.contains("create-snapshot") && !plain.contains { $0.hasPrefix("copy-to-") })
    }

    @Test func progressLinesAreNumberedStepsAndTheHomeRegionIsNotACopyStep() throws {
        let fake = FakeEC2(), printed = PrintedLines()
        var o = options(fake)
        o.copyTo = ["ap-northeast-1", "us-east-1"]
        o.resultsFile = nil
        _ = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain, options: o, runner: fake.runner,
            log: printed.log())
        let headers = printed.lines.compactMap { line in line.range(of: #"\[[0-9]+/[0-9]+\] [a-z0-9-]+"#, options: .regularExpression).map { String(line[$0]) }
        }
        #expect(
            headers == [
                "[1/9] check-image", "[2/9] locate-volume", "[3/9] choose-name", "[4/9] create-snapshot", "[5/9] wait-snapshot",
                "[6/9] register-image", "[7/9] tag-image", "[8/9] wait-image", "[9/9] copy-to-us-east-1",
            ])
        #expect(!printed.text.contains("copy-to-ap-northeast-1"))
        #expect(!printed.text.contains("cleaning up"), "a successful registration keeps what it made and says nothing about cleanup")
    }

    @Test func snapshotErrorFailsFastAndCleansUp() throws {
        let fake = FakeEC2(), clock = FakeClock()
        fake.snapshotStates = ["pending", "error"]
        #expect(throws: StepFailed.self) {
            _ = try AMIRegistrar.register(
                target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain,
                options: options(fake, clock: clock), runner: fake.runner, log: nil)
        }
        #expect(clock.sleeps == [10], "no waiting after the error state")
        #expect(fake.snapshots.isEmpty)
        #expect(!fake.operations.contains("register-image"))
    }

    @Test func snapshotWaitHasItsOwnDeadline() throws {
        let fake = FakeEC2(), clock = FakeClock()
        fake.snapshotStates = ["pending"]
        var o = options(fake, clock: clock)
        o.snapshotWait = WaitPolicy(timeout: 60, interval: 20)
        do {
            _ = try AMIRegistrar.register(target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
            Issue.record("must time out")
        } catch {
            #expect("\(error)".hasPrefix("step 'wait-snapshot' failed: "))
            #expect("\(error)".contains("did not finish within 60 s"))
        }
        #expect(clock.sleeps == [20, 20, 20])
        #expect(fake.snapshots.isEmpty)
    }

    @Test func failedCopyRemovesCopyImageAndSnapshot() throws {
        let fake = FakeEC2()
        fake.copyStates = ["pending", "failed"]
        var o = options(fake)
        o.copyTo = ["us-east-1", "eu-west-1"]
        do {
            _ = try AMIRegistrar.register(target: .volume("vol-0123456789abcdef0"), release: "6.10", variant: .ena, options: o, runner: fake.runner, log: nil)
            Issue.record("must fail")
        } catch {
            #expect("\(error)".hasPrefix("step 'copy-to-us-east-1' failed: "))
            #expect("\(error)".contains("went to state 'failed'"))
            #expect("\(error)".contains("deleted what this run created: copy 'ami-"))
        }
        #expect(fake.images.isEmpty, "copy and primary deregistered")
        #expect(fake.snapshots.isEmpty, "the copy's snapshot and ours deleted")
        #expect(!fake.runner.commands.contains { value(after: "--region", in: $0.arguments) == "eu-west-1" && $0.arguments[1] == "copy-image" })
    }

    @Test func failedPublicRemovesImageAndSnapshot() throws {
        let fake = FakeEC2()
        fake.failures["modify-image-attribute"] = "AuthFailure"
        var o = options(fake)
        o.makePublic = true
        do {
            _ = try AMIRegistrar.register(target: .volume("vol-0123456789abcdef0"), release: "6.10", variant: .ena, options: o, runner: fake.runner, log: nil)
            Issue.record("must fail")
        } catch {
            #expect("\(error)".hasPrefix("step 'make-public' failed: "))
        }
        #expect(fake.images.isEmpty)
        #expect(fake.snapshots.isEmpty)
    }

    @Test func copiesAreTaggedWaitedAndRecorded() throws {
        let fake = FakeEC2()
        var o = options(fake)
        o.copyTo = ["us-east-1", "ap-northeast-1"]
        let dir = NSTemporaryDirectory() + "ami-results-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        o.resultsFile = dir + "/results.json"
        let result = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.10", variant: .plain, options: o, runner: fake.runner, log: nil)
        #expect(result.copies.map(\.region) == ["us-east-1"], "the home region is not copied to itself")
        let copy = result.copies[0]
        #expect(copy.copiedFrom == result.primary.amiId)
        #expect(fake.images[copy.amiId]?.region == "us-east-1")
        #expect(fake.images[copy.amiId]?.tags.contains(Tag(TagKey.release, "6.10")) == true)
        #expect(fake.snapshots[copy.snapshotId]?.tags.contains(Tag(TagKey.buildID, o.buildID)) == true)
        let copyCall = fake.runner.commands.first { $0.arguments[1] == "copy-image" }!.arguments
        #expect(value(after: "--region", in: copyCall) == "us-east-1")
        #expect(value(after: "--source-region", in: copyCall) == "ap-northeast-1")
        let saved = try ResultsFile.load(path: o.resultsFile!)
        #expect(saved.amis == result.all)
    }

    @Test func publicIsRefusedBeforeAnythingExistsWhenBlocked() throws {
        let fake = FakeEC2()
        fake.publicAccess = "block-new-sharing"
        var o = options(fake)
        o.makePublic = true
        do {
            _ = try AMIRegistrar.register(target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
            Issue.record("must refuse")
        } catch {
            #expect(error as? AMIError == .publicAccessBlocked(region: "ap-northeast-1", state: "block-new-sharing"))
            #expect("\(error)".contains("disable-image-block-public-access"))
        }
        #expect(fake.operations == ["get-image-block-public-access-state"])
    }

    @Test func publicPreflightThatCannotAnswerOnlyWarns() throws {
        let fake = FakeEC2()
        fake.publicAccess = nil
        var o = options(fake)
        o.makePublic = true
        let result = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
        #expect(result.primary.public)
        #expect(fake.operations.contains("modify-image-attribute"))
    }

    @Test func takenNameGetsTheBuildID() throws {
        let fake = FakeEC2()
        fake.images["ami-old"] = .init(
            id: "ami-old", region: "ap-northeast-1", name: "CentOS 6.9 x86_64 2024-05-01", snapshots: [], states: ["available"], tags: [])
        let result = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain,
            options: options(fake), runner: fake.runner, log: nil)
        #expect(result.primary.name == "CentOS 6.9 x86_64 2024-05-01 20240501-000000-abcd")
    }

    @Test func uniqueNameGivesUpWhenEvenTheSuffixIsTaken() throws {
        #expect(try AMIRegistrar.uniqueName(base: "a", buildID: "b", taken: { _ in false }) == "a")
        #expect(try AMIRegistrar.uniqueName(base: "a", buildID: "b", taken: { $0 == "a" }) == "a b")
        #expect(try AMIRegistrar.uniqueName(base: "a", buildID: "b", taken: { _ in true }) == nil)
    }

    @Test func volumeSizeBelowTheSnapshotIsRefused() throws {
        let fake = FakeEC2()
        var o = options(fake)
        o.volumeSize = 4
        #expect(throws: AMIError.volumeTooSmall(requested: 4, snapshot: 8)) {
            _ = try AMIRegistrar.register(target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain, options: o, runner: fake.runner, log: nil)
        }
        #expect(!fake.operations.contains("create-snapshot"))
    }

    /// The image is read in the engine's first step, before any AWS call: where it boots decides
    /// ENA support, --ena on an image that cannot boot on Nitro is refused, and a volume id that
    /// cannot be read here is taken on trust with a warning.
    @Test func checkImageRunsFirstAndWhereTheImageBootsDecidesENA() throws {
        let fake = FakeEC2(), printed = PrintedLines()
        var o = options(fake)
        o.readable = "/dev/loop9"
        o.readImage = { _ in ImageReading(bootsOn: "xen", nitro: false, summary: "Xen only: no nvme", nitroReasons: ["nitro: nvme is missing"]) }
        do {
            _ = try AMIRegistrar.register(target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .ena, options: o, runner: fake.runner, log: nil)
            Issue.record("--ena on a Xen-only image must be refused")
        } catch {
            #expect("\(error)".contains("'/dev/loop9' cannot boot on Nitro, so it is not registered with ENA support: nitro: nvme is missing"), "\(error)")
        }
        #expect(fake.operations.isEmpty, "refused before any AWS call")
        o.readImage = { _ in ImageReading(bootsOn: "xen,nitro", nitro: true, summary: "Xen and Nitro") }
        let nitro = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .plain, options: o,
            runner: fake.runner, log: printed.log())
        #expect(nitro.primary.variant == .ena && nitro.primary.bootsOn == "xen,nitro")
        #expect(printed.lines.contains { $0.contains("registering with ENA support: the image boots on Nitro") })
        var unread = options(fake)
        unread.readImage = { _ in
            Issue.record("nothing to read"); throw AMIError.instanceIDUnknown
        }
        let trusted = try AMIRegistrar.register(
            target: .volume("vol-0123456789abcdef0"), release: "6.9", variant: .ena, options: unread,
            runner: fake.runner, log: printed.log())
        #expect(trusted.primary.variant == .ena && trusted.primary.bootsOn == nil)
        #expect(printed.lines.contains { $0.contains("is a volume id, so where it boots is not checked: --ena (ENA support) is taken on trust") })
    }

    @Test func regionComesFromTheEnvironmentOrTheCLIConfig() throws {
        let runner = RecordingRunner { cmd in
            cmd.arguments == ["configure", "get", "region"] ? CommandResult(status: 0, standardOutput: Data("eu-central-1\n".utf8)) : CommandResult(status: 1)
        }
        let client = EC2Client(context: AWSContext(), runner: runner)
        #expect(try client.resolvedRegion(environment: ["AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "x"]) == "us-west-2")
        #expect(try client.resolvedRegion(environment: ["AWS_DEFAULT_REGION": "sa-east-1"]) == "sa-east-1")
        #expect(try client.resolvedRegion(environment: [:]) == "eu-central-1")
        let none = EC2Client(context: AWSContext(), runner: RecordingRunner { _ in CommandResult(status: 1) })
        #expect(throws: AMIError.noRegion) { try none.resolvedRegion(environment: [:]) }
        #expect(try EC2Client(context: AWSContext(region: "ap-south-1"), runner: runner).resolvedRegion(environment: ["AWS_REGION": "x"]) == "ap-south-1")
    }

    @Test func buildIDs() {
        let id = RegisterOptions.newBuildID(Date(timeIntervalSince1970: 1_714_521_600))
        #expect(id.hasPrefix("20240501-000000-"))
        #expect(RegisterOptions.isValidBuildID(id))
        #expect(!RegisterOptions.isValidBuildID("a b"))
        #expect(!RegisterOptions.isValidBuildID(""))
        #expect(!RegisterOptions.isValidBuildID("a,b"))
    }
}

/// Progress lines a Log printed, for tests that read what a user sees.
final class PrintedLines: Sendable {
    private let stored = Locked<[String]>([])
    var lines: [String] { stored.value }
    var text: String { lines.joined(separator: "\n") }
    func log() throws -> Log { try Log(path: nil, progress: { line in self.stored.withLock { $0.append(line) } }) }
}

@Suite struct CleanupTests {
    @Test func findsTaggedImagesSnapshotsAndUntaggedImagesOfTaggedSnapshots() throws {
        let fake = FakeEC2()
        let tag = [Tag(TagKey.buildID, "b1")]
        fake.snapshots["snap-a"] = .init(id: "snap-a", region: "ap-northeast-1", states: ["completed"], size: 8, tags: tag)
        fake.snapshots["snap-b"] = .init(id: "snap-b", region: "ap-northeast-1", states: ["completed"], size: 8, tags: [])
        fake.snapshots["snap-other"] = .init(id: "snap-other", region: "ap-northeast-1", states: ["completed"], size: 8, tags: [Tag(TagKey.buildID, "b2")])
        fake.images["ami-tagged"] = .init(id: "ami-tagged", region: "ap-northeast-1", name: "x", snapshots: ["snap-b"], states: ["available"], tags: tag)
        fake.images["ami-untagged"] = .init(id: "ami-untagged", region: "ap-northeast-1", name: "y", snapshots: ["snap-a"], states: ["available"], tags: [])
        fake.images["ami-unrelated"] = .init(
            id: "ami-unrelated", region: "ap-northeast-1", name: "z", snapshots: ["snap-other"], states: ["available"], tags: [])
        let found = try AMICleanup.find(buildID: "b1", region: "ap-northeast-1", client: fake.client)
        #expect(found.images == ["ami-tagged", "ami-untagged"])
        #expect(Set(found.snapshots) == ["snap-a", "snap-b"])
        var said: [String] = []
        let failures = AMICleanup.remove(found, client: fake.client) { said.append($0) }
        #expect(failures.isEmpty)
        #expect(said.count == 4)
        #expect(Set(fake.images.keys) == ["ami-unrelated"])
        #expect(Set(fake.snapshots.keys) == ["snap-other"])
        // A second run finds nothing and removes nothing.
        #expect(try AMICleanup.find(buildID: "b1", region: "ap-northeast-1", client: fake.client).isEmpty)
    }

    @Test func alreadyGoneCountsAsDoneOtherErrorsAreReported() {
        let fake = FakeEC2()
        fake.snapshots["snap-busy"] = .init(id: "snap-busy", region: "ap-northeast-1", states: ["completed"], size: 8, tags: [])
        fake.images["ami-keep"] = .init(id: "ami-keep", region: "ap-northeast-1", name: "k", snapshots: ["snap-busy"], states: ["available"], tags: [])
        let failures = AMICleanup.remove(.init(region: "ap-northeast-1", images: ["ami-gone"], snapshots: ["snap-gone", "snap-busy"]), client: fake.client) {
            _ in
        }
        #expect(failures.count == 1)
        #expect(failures[0].contains("snap-busy") && failures[0].contains("InvalidSnapshot.InUse"))
    }
}
