// Every EC2 call `register` and `cleanup` make, as pure functions that build
// the aws CLI's argument list, plus the JSON shapes they answer with.
// Nothing here runs a process: `EC2Client` (EC2Client.swift) does, through a CommandRunner.
import Foundation
import Host

/// How to reach EC2: the `aws` executable, `--region`, `--endpoint-url` and `--profile`.
/// Credentials and the default region of the aws CLI calls come from the environment
/// the aws CLI reads itself (AWS_PROFILE, AWS_REGION, ~/.aws). The one call signed
/// here, PutSnapshotBlock, finds its credentials the same way (Credentials.swift).
public struct AWSContext: Equatable, Sendable {
    public var executable: String
    /// Passed as `--region` when set; otherwise the aws CLI's own default applies.
    public var region: String?
    /// Passed as `--endpoint-url` when set (moto in tests, a VPC endpoint in the field).
    public var endpointURL: String?
    /// Passed as `--profile` when set; also the profile the block upload's credentials come from.
    public var profile: String?
    public init(executable: String = "aws", region: String? = nil, endpointURL: String? = nil, profile: String? = nil) {
        self.executable = executable
        self.region = region
        self.endpointURL = endpointURL
        self.profile = profile
    }

    /// The same context aimed at another region (copies, cleanup of copies).
    public func inRegion(_ region: String) -> AWSContext {
        var other = self
        other.region = region
        return other
    }

    /// `aws ec2 OPERATION ARGS... --output json [--region R] [--endpoint-url U]`.
    public func ec2(_ operation: String, _ arguments: [String] = []) -> Command {
        var args = ["ec2", operation] + arguments + ["--output", "json"]
        if let region { args += ["--region", region] }
        if let endpointURL { args += ["--endpoint-url", endpointURL] }
        if let profile { args += ["--profile", profile] }
        return Command(executable, args)
    }
}

/// One tag. Keys of ours start with `centos6-ami:` so `cleanup` can find them.
public struct Tag: Codable, Equatable, Sendable {
    public var Key: String
    public var Value: String
    public init(_ key: String, _ value: String) { Key = key; Value = value }
}

/// A `Name=...,Values=...` filter of the Describe* calls.
public struct Filter: Equatable, Sendable {
    public var name: String
    public var values: [String]
    public init(_ name: String, _ values: [String]) { self.name = name; self.values = values }
    public static func tag(_ key: String, _ value: String) -> Filter { Filter("tag:\(key)", [value]) }
}

/// The tag keys a build carries.
public enum TagKey {
    public static let buildID = "centos6-ami:build-id"
    public static let release = "centos6-ami:release"
    public static let variant = "centos6-ami:variant"
    public static let toolVersion = "centos6-ami:version"
    /// sha256 (hex) of the build's package manifest.
    public static let manifestSHA256 = "centos6-ami:manifest-sha256"
    /// sha256 (hex) of the build's SPDX SBOM.
    public static let sbomSHA256 = "centos6-ami:sbom-sha256"
    /// Where the image boots (`xen,nitro`, `xen`), read from the image by `register` on a local device.
    public static let bootsOn = "centos6-ami:boots-on"
}

/// Argument lists of the EC2 calls (pure; unit-tested one by one).
public enum EC2Args {
    /// The aws CLI's shorthand for tags (`{Key=a,Value=b}`) breaks on commas in
    /// values, so every structured argument is passed as JSON instead.
    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }

    struct TagSpecification: Encodable {
        var ResourceType: String
        var Tags: [Tag]
    }

    static func filterArguments(_ filters: [Filter]) -> [String] {
        struct F: Encodable { var Name: String; var Values: [String] }
        return filters.isEmpty ? [] : ["--filters", json(filters.map { F(Name: $0.name, Values: $0.values) })]
    }

    /// CreateSnapshot, tagged in the same call so an interrupted run's snapshot is still findable by build id.
    public static func createSnapshot(volumeID: String, description: String, tags: [Tag]) -> [String] {
        [
            "--volume-id", volumeID, "--description", description,
            "--tag-specifications", json([TagSpecification(ResourceType: "snapshot", Tags: tags)]),
        ]
    }

    public static func describeSnapshots(ids: [String]) -> [String] {
        ["--snapshot-ids"] + ids
    }

    /// Our own snapshots matching the filters (cleanup by tag).
    public static func describeSnapshots(filters: [Filter]) -> [String] {
        ["--owner-ids", "self"] + filterArguments(filters)
    }

    public static func deleteSnapshot(id: String) -> [String] { ["--snapshot-id", id] }

    public static func describeVolumes(ids: [String]) -> [String] { ["--volume-ids"] + ids }

    /// The volume attached to `instanceID` as one of `devices` (`/dev/sdf` and `/dev/xvdf` name the same attachment).
    public static func describeVolumes(instanceID: String, devices: [String]) -> [String] {
        filterArguments([Filter("attachment.instance-id", [instanceID]), Filter("attachment.device", devices)])
    }

    /// Everything RegisterImage gets. Defaults are what a CentOS 6 image needs:
    /// grub-legacy in the MBR (legacy-bios, hvm), IMDSv2 only (rc.local asks for a token first).
    public struct RegisterImage: Equatable, Sendable {
        public var name: String
        public var description: String
        public var snapshotID: String
        /// GiB of the gp3 root volume; at least the snapshot's size.
        public var volumeSize: Int
        public var enaSupport: Bool
        public var rootDeviceName = "/dev/sda1"
        public var architecture = "x86_64"
        public var virtualizationType = "hvm"
        public var bootMode = "legacy-bios"
        /// `v2.0` (instances launched from the AMI require IMDSv2) or nil to leave the account default.
        public var imdsSupport: String? = "v2.0"
        public var volumeType = "gp3"
        // No public initializer: only register builds one, with the memberwise initializer
        // (name:description:snapshotID:volumeSize:enaSupport:, the rest as above).

        /// The root device, backed by the snapshot.
        public var blockDeviceMappings: [BlockDeviceMapping] {
            [
                BlockDeviceMapping(
                    DeviceName: rootDeviceName,
                    Ebs: .init(SnapshotId: snapshotID, VolumeSize: volumeSize, DeleteOnTermination: true, VolumeType: volumeType))
            ]
        }
    }

    /// RegisterImage. `--ena-support` only for an image that holds the ENA driver
    /// for its kernel: an instance type that needs ENA would otherwise boot without network.
    public static func registerImage(_ r: RegisterImage) -> [String] {
        var args = [
            "--name", r.name, "--description", r.description,
            "--architecture", r.architecture,
            "--virtualization-type", r.virtualizationType,
            "--boot-mode", r.bootMode,
        ]
        if let imds = r.imdsSupport { args += ["--imds-support", imds] }
        args += [
            "--root-device-name", r.rootDeviceName,
            "--block-device-mappings", json(r.blockDeviceMappings),
        ]
        if r.enaSupport { args.append("--ena-support") }
        return args
    }

    public static func createTags(resources: [String], tags: [Tag]) -> [String] {
        ["--resources"] + resources + ["--tags", json(tags)]
    }

    public static func describeImages(ids: [String]) -> [String] { ["--image-ids"] + ids }

    /// Our own images matching the filters (name taken?, cleanup by tag).
    public static func describeImages(filters: [Filter]) -> [String] {
        ["--owners", "self"] + filterArguments(filters)
    }

    public static func deregisterImage(id: String) -> [String] { ["--image-id", id] }

    public static func getImageBlockPublicAccessState() -> [String] { [] }

    /// ModifyImageAttribute: launch permission for everyone (`--public`).
    public static func makePublic(imageID: String) -> [String] {
        struct Permission: Encodable { var Group: String }
        struct LaunchPermission: Encodable { var Add: [Permission] }
        return ["--image-id", imageID, "--launch-permission", json(LaunchPermission(Add: [Permission(Group: "all")]))]
    }

    /// CopyImage, run against the destination region (its `--region`).
    public static func copyImage(sourceImageID: String, sourceRegion: String, name: String, description: String) -> [String] {
        ["--source-image-id", sourceImageID, "--source-region", sourceRegion, "--name", name, "--description", description]
    }
}

// MARK: - Answers (the shapes of the EC2 API's JSON as the aws CLI prints it)

public struct Snapshot: Codable, Equatable, Sendable {
    public var SnapshotId: String
    public var VolumeId: String?
    /// pending | completed | error | recoverable | recovering
    public var State: String
    public var StateMessage: String?
    /// `"37%"`; absent on some endpoints.
    public var Progress: String?
    /// GiB.
    public var VolumeSize: Int?
    public var Description: String?
    public var Tags: [Tag]?
}

public struct DescribeSnapshotsOutput: Codable, Equatable, Sendable {
    public var Snapshots: [Snapshot]
}

public struct VolumeAttachment: Codable, Equatable, Sendable {
    public var Device: String?
    public var InstanceId: String?
    public var State: String?
}

public struct Volume: Codable, Equatable, Sendable {
    public var VolumeId: String
    public var Size: Int?
    public var State: String?
    public var AvailabilityZone: String?
    public var Attachments: [VolumeAttachment]?
}

public struct DescribeVolumesOutput: Codable, Equatable, Sendable {
    public var Volumes: [Volume]
}

public struct ImageIDOutput: Codable, Equatable, Sendable {
    public var ImageId: String
}

public struct StateReason: Codable, Equatable, Sendable {
    public var Code: String?
    public var Message: String?
}

/// A block device mapping as RegisterImage takes it and DescribeImages answers it
/// (an answer may leave out any field).
public struct BlockDeviceMapping: Codable, Equatable, Sendable {
    public struct EBS: Codable, Equatable, Sendable {
        public var SnapshotId: String?
        public var VolumeSize: Int?
        public var DeleteOnTermination: Bool?
        public var VolumeType: String?
    }
    public var DeviceName: String?
    public var Ebs: EBS?
}

public struct Image: Codable, Equatable, Sendable {
    public var ImageId: String
    public var Name: String?
    /// pending | available | invalid | deregistered | transient | failed | error | disabled
    public var State: String?
    public var StateReason: StateReason?
    public var BlockDeviceMappings: [BlockDeviceMapping]?
    public var Tags: [Tag]?

    public var snapshotIDs: [String] { (BlockDeviceMappings ?? []).compactMap { $0.Ebs?.SnapshotId } }
}

public struct DescribeImagesOutput: Codable, Equatable, Sendable {
    public var Images: [Image]
}

public struct ImageBlockPublicAccessStateOutput: Codable, Equatable, Sendable {
    /// `unblocked` or `block-new-sharing`.
    public var ImageBlockPublicAccessState: String
}

/// Decodes the aws CLI's JSON answer, naming the call when it does not fit.
public func decodeAWS<T: Decodable>(_ type: T.Type, from data: Data, call: String) throws -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch {
        let text = String(decoding: data.prefix(300), as: UTF8.self)
        throw AMIError.unexpectedAnswer(call: call, detail: "\(error)", output: text)
    }
}
