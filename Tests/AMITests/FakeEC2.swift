import Foundation
@testable import AMI
import Host
import TestSupport

/// An in-memory EC2 behind a RecordingRunner: answers the aws CLI calls the way
/// the service does (JSON on stdout, an error line on stderr with exit 255).
// Unchecked: the fake account's state is only touched under `lock`.
final class FakeEC2: @unchecked Sendable {
    struct Snap { var id: String; var region: String; var states: [String]; var size: Int; var tags: [Tag] }
    struct Img { var id: String; var region: String; var name: String; var snapshots: [String]; var states: [String]; var tags: [Tag] }

    let lock = NSLock()
    var volumes: [String: Int] = ["vol-0123456789abcdef0": 8]
    var snapshots: [String: Snap] = [:]
    var images: [String: Img] = [:]
    /// States a new snapshot goes through, one per DescribeSnapshots.
    var snapshotStates = ["pending", "completed"]
    var imageStates = ["pending", "available"]
    var copyStates = ["pending", "available"]
    /// Operations that fail (once each) with this stderr.
    var failures: [String: String] = [:]
    var publicAccess: String? = "unblocked"
    var counter = 0
    /// EBS direct: blocks written per snapshot (bytes, checksum), completions (count, aggregate), blocks that always fail.
    var blocks: [String: [Int: (Data, String)]] = [:]
    var completions: [String: (Int, String)] = [:]
    var failBlocks: Set<Int> = []
    /// PutSnapshotBlock calls (block indices, in order), through `putBlock` below, not the aws CLI.
    var blockPuts: [Int] = []
    let runner: RecordingRunner

    init() {
        runner = RecordingRunner()
        runner.respond = { [unowned self] in self.answer($0) }
    }

    var client: EC2Client { EC2Client(context: AWSContext(region: "ap-northeast-1"), runner: runner) }
    var operations: [String] { runner.commands.filter { $0.executable == "aws" }.map { $0.arguments[1] } }

    func arg(_ flag: String, _ args: [String]) -> String? {
        guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
        return args[i + 1]
    }

    func nextID(_ prefix: String) -> String {
        counter += 1
        return prefix + String(format: "%017x", counter)
    }

    func ok(_ object: Any) -> CommandResult {
        CommandResult(status: 0, standardOutput: try! JSONSerialization.data(withJSONObject: object))
    }

    func fail(_ op: String, _ text: String) -> CommandResult {
        CommandResult(status: 255, standardError: Data("\nAn error occurred (\(text)) when calling the \(op) operation: \(text)\n".utf8))
    }

    func tagsJSON(_ tags: [Tag]) -> [[String: String]] { tags.map { ["Key": $0.Key, "Value": $0.Value] } }

    func filterValues(_ args: [String]) -> [(String, [String])] {
        guard let text = arg("--filters", args), let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else { return [] }
        return list.map { ($0["Name"] as! String, $0["Values"] as! [String]) }
    }

    func matches(tags: [Tag], name: String?, filters: [(String, [String])]) -> Bool {
        filters.allSatisfy { key, values in
            if key == "name" { return values.contains(name ?? "") }
            if key.hasPrefix("tag:") { return tags.contains { $0.Key == String(key.dropFirst(4)) && values.contains($0.Value) } }
            return true
        }
    }

    func snapJSON(_ s: inout Snap) -> [String: Any] {
        let state = s.states.count > 1 ? s.states.removeFirst() : s.states[0]
        return [
            "SnapshotId": s.id, "State": state, "VolumeSize": s.size, "Progress": state == "completed" ? "100%" : "50%", "Tags": tagsJSON(s.tags),
            "StateMessage": state == "error" ? "internal error" : "",
        ]
    }

    func imgJSON(_ i: inout Img) -> [String: Any] {
        let state = i.states.count > 1 ? i.states.removeFirst() : i.states[0]
        return [
            "ImageId": i.id, "Name": i.name, "State": state, "Tags": tagsJSON(i.tags),
            "BlockDeviceMappings": i.snapshots.map { ["DeviceName": "/dev/sda1", "Ebs": ["SnapshotId": $0]] },
        ]
    }

    func answer(_ command: Command) -> CommandResult {
        lock.lock(); defer { lock.unlock() }
        let args = command.arguments
        guard command.executable == "aws", args.count > 1 else { return .success } // sync
        let op = args[1]
        let region = arg("--region", args) ?? "ap-northeast-1"
        if let text = failures.removeValue(forKey: op) { return fail(op, text) }
        switch op {
        case "start-snapshot": // aws ebs start-snapshot: pending until complete-snapshot
            let id = nextID("snap-")
            let tags = (try! JSONSerialization.jsonObject(with: Data(arg("--tags", args)!.utf8)) as! [[String: String]]).map { Tag($0["Key"]!, $0["Value"]!) }
            let size = Int(arg("--volume-size", args)!)!
            snapshots[id] = Snap(id: id, region: region, states: ["pending"], size: size, tags: tags)
            return ok(["SnapshotId": id, "Status": "pending", "VolumeSize": size, "BlockSize": 524288])
        case "complete-snapshot":
            let id = arg("--snapshot-id", args)!
            completions[id] = (Int(arg("--changed-blocks-count", args)!)!, arg("--checksum", args)!)
            snapshots[id]!.states = snapshotStates
            return ok(["Status": "completed"])
        case "describe-volumes":
            let id = arg("--volume-ids", args) ?? ""
            guard let size = volumes[id] else { return fail(op, "InvalidVolume.NotFound") }
            return ok(["Volumes": [["VolumeId": id, "Size": size, "State": "available"]]])
        case "create-snapshot":
            let id = nextID("snap-")
            let spec = try! JSONSerialization.jsonObject(with: Data(arg("--tag-specifications", args)!.utf8)) as! [[String: Any]]
            let tags = (spec[0]["Tags"] as! [[String: String]]).map { Tag($0["Key"]!, $0["Value"]!) }
            let s = Snap(id: id, region: region, states: snapshotStates, size: volumes[arg("--volume-id", args)!] ?? 8, tags: tags)
            snapshots[id] = s
            var first = s
            first.states = ["pending"]
            return ok(snapJSON(&first))
        case "describe-snapshots":
            if let id = arg("--snapshot-ids", args) {
                guard var s = snapshots[id], s.region == region else { return fail(op, "InvalidSnapshot.NotFound") }
                let json = snapJSON(&s)
                snapshots[id] = s
                return ok(["Snapshots": [json]])
            }
            let f = filterValues(args)
            var list: [[String: Any]] = []
            for (id, var s) in snapshots.sorted(by: { $0.key < $1.key }) where s.region == region && matches(tags: s.tags, name: nil, filters: f) {
                list.append(snapJSON(&s)); snapshots[id] = s
            }
            return ok(["Snapshots": list])
        case "delete-snapshot":
            let id = arg("--snapshot-id", args)!
            guard snapshots[id]?.region == region else { return fail(op, "InvalidSnapshot.NotFound") }
            if images.values.contains(where: { $0.snapshots.contains(id) }) { return fail(op, "InvalidSnapshot.InUse") }
            snapshots[id] = nil
            return ok([:])
        case "register-image":
            let id = nextID("ami-")
            let bdm = try! JSONSerialization.jsonObject(with: Data(arg("--block-device-mappings", args)!.utf8)) as! [[String: Any]]
            let snap = (bdm[0]["Ebs"] as! [String: Any])["SnapshotId"] as! String
            images[id] = Img(id: id, region: region, name: arg("--name", args)!, snapshots: [snap], states: imageStates, tags: [])
            return ok(["ImageId": id])
        case "copy-image":
            let id = nextID("ami-")
            let snap = nextID("snap-")
            snapshots[snap] = Snap(id: snap, region: region, states: ["completed"], size: 8, tags: [])
            images[id] = Img(id: id, region: region, name: arg("--name", args)!, snapshots: [snap], states: copyStates, tags: [])
            return ok(["ImageId": id])
        case "create-tags":
            let tags = (try! JSONSerialization.jsonObject(with: Data(arg("--tags", args)!.utf8)) as! [[String: String]]).map { Tag($0["Key"]!, $0["Value"]!) }
            var i = args.firstIndex(of: "--resources")! + 1
            while i < args.count, !args[i].hasPrefix("--") {
                if images[args[i]] != nil { images[args[i]]!.tags += tags }
                if snapshots[args[i]] != nil { snapshots[args[i]]!.tags += tags }
                i += 1
            }
            return ok([:])
        case "describe-images":
            if let id = arg("--image-ids", args) {
                guard var img = images[id], img.region == region else { return fail(op, "InvalidAMIID.NotFound") }
                let json = imgJSON(&img)
                images[id] = img
                return ok(["Images": [json]])
            }
            let f = filterValues(args)
            var list: [[String: Any]] = []
            for (id, var img) in images.sorted(by: { $0.key < $1.key }) where img.region == region && matches(tags: img.tags, name: img.name, filters: f) {
                list.append(imgJSON(&img)); images[id] = img
            }
            return ok(["Images": list])
        case "deregister-image":
            let id = arg("--image-id", args)!
            guard images[id]?.region == region else { return fail(op, "InvalidAMIID.NotFound") }
            images[id] = nil
            return ok(["Return": true])
        case "get-image-block-public-access-state":
            guard let state = publicAccess else { return fail(op, "InvalidAction") }
            return ok(["ImageBlockPublicAccessState": state])
        case "modify-image-attribute":
            return ok([:])
        default:
            return fail(op, "UnknownOperation")
        }
    }
}

/// The fake account's PutSnapshotBlock, as EBSBlockClient would send it (answers as the service does).
extension FakeEC2: SnapshotBlockSender {
    func putBlock(snapshotID: String, index: Int, block: Data, checksum: String) throws {
        try lock.withLock {
            blockPuts.append(index)
            guard snapshots[snapshotID]?.states == ["pending"] else {
                throw BlockPutFailure(status: 400, code: "ValidationException", message: "The snapshot is not pending", retryable: false)
            }
            if failBlocks.contains(index) {
                throw BlockPutFailure(status: 500, code: "InternalServerException", message: "injected", retryable: true)
            }
            blocks[snapshotID, default: [:]][index] = (block, checksum)
        }
    }
}

/// A clock that only moves when slept on: waits in tests take no time.
// Unchecked: `time` and `sleeps` are only touched under `lock`.
final class FakeClock: @unchecked Sendable {
    var time = Date(timeIntervalSince1970: 1_714_521_600) // 2024-05-01T00:00:00Z
    var sleeps: [TimeInterval] = []
    let lock = NSLock() // upload workers sleep from several threads
    var clock: AMIClock {
        AMIClock(
            now: { self.lock.withLock { self.time } },
            sleep: { s in
                self.lock.withLock {
                    self.sleeps.append(s); self.time += s
                }
            })
    }
}

extension RegisterOptions {
    /// Options for a registration against FakeEC2 in ap-northeast-1: the fake clock (and its
    /// date), no environment, waits of 600 s polled every 10 s.
    static func forTests(buildID: String, clock: FakeClock = FakeClock()) -> RegisterOptions {
        var o = RegisterOptions(aws: AWSContext(region: "ap-northeast-1"), buildID: buildID, toolVersion: "0.1.0")
        o.clock = clock.clock
        o.date = clock.time
        o.environment = [:]
        o.snapshotWait = WaitPolicy(timeout: 600, interval: 10)
        o.imageWait = WaitPolicy(timeout: 600, interval: 10)
        return o
    }
}
