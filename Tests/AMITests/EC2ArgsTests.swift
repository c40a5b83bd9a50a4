import Foundation
import Testing
@testable import AMI
import Host

/// Parses a JSON argument back so tests assert on structure, not on key order.
func jsonValue(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}

/// The JSON value after `flag`, parsed (nil when absent).
func jsonArgument(_ flag: String, in args: [String]) throws -> Any? {
    guard let text = value(after: flag, in: args) else { return nil }
    return try jsonValue(text)
}

/// The value after `flag` in an argument list.
func value(after flag: String, in args: [String]) -> String? {
    guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
    return args[i + 1]
}

@Suite struct AWSContextTests {
    @Test func plainCallAsksForJSONAndNothingElse() {
        let cmd = AWSContext().ec2("describe-images", ["--image-ids", "ami-1"])
        #expect(cmd.executable == "aws")
        #expect(cmd.arguments == ["ec2", "describe-images", "--image-ids", "ami-1", "--output", "json"])
        #expect(cmd.environment.isEmpty, "credentials and profile come from the inherited environment")
    }

    @Test func regionAndEndpointArePassedThrough() {
        let ctx = AWSContext(region: "ap-northeast-1", endpointURL: "http://127.0.0.1:5000")
        #expect(
            ctx.ec2("delete-snapshot", ["--snapshot-id", "snap-1"]).arguments == [
                "ec2", "delete-snapshot", "--snapshot-id", "snap-1", "--output", "json", "--region", "ap-northeast-1", "--endpoint-url",
                "http://127.0.0.1:5000",
            ])
        let other = ctx.inRegion("us-east-1")
        #expect(value(after: "--region", in: other.ec2("copy-image").arguments) == "us-east-1")
        #expect(value(after: "--endpoint-url", in: other.ec2("copy-image").arguments) == "http://127.0.0.1:5000")
    }
}

@Suite struct EC2ArgsTests {
    @Test func createSnapshotTagsInTheSameCall() throws {
        let args = EC2Args.createSnapshot(
            volumeID: "vol-0abc", description: "CentOS 6.9, build b1", tags: [Tag("Name", "CentOS 6.9 x86_64 2024-05-01"), Tag(TagKey.buildID, "b1")])
        #expect(Array(args.prefix(4)) == ["--volume-id", "vol-0abc", "--description", "CentOS 6.9, build b1"])
        let spec = try #require(try jsonArgument("--tag-specifications", in: args) as? [[String: Any]])
        #expect(spec.count == 1)
        #expect(spec[0]["ResourceType"] as? String == "snapshot")
        let tags = try #require(spec[0]["Tags"] as? [[String: String]])
        #expect(tags == [["Key": "Name", "Value": "CentOS 6.9 x86_64 2024-05-01"], ["Key": "centos6-ami:build-id", "Value": "b1"]])
    }

    @Test func describeAndDeleteSnapshots() throws {
        #expect(EC2Args.describeSnapshots(ids: ["snap-1"]) == ["--snapshot-ids", "snap-1"])
        #expect(EC2Args.deleteSnapshot(id: "snap-1") == ["--snapshot-id", "snap-1"])
        let byTag = EC2Args.describeSnapshots(filters: [Filter.tag(TagKey.buildID, "b1")])
        #expect(Array(byTag.prefix(3)) == ["--owner-ids", "self", "--filters"])
        let filters = try #require(try jsonValue(byTag[3]) as? [[String: Any]])
        #expect(filters[0]["Name"] as? String == "tag:centos6-ami:build-id")
        #expect(filters[0]["Values"] as? [String] == ["b1"])
    }

    @Test func describeVolumesByAttachment() throws {
        #expect(EC2Args.describeVolumes(ids: ["vol-1"]) == ["--volume-ids", "vol-1"])
        let args = EC2Args.describeVolumes(instanceID: "i-0123", devices: ["/dev/xvdf", "/dev/sdf"])
        #expect(args[0] == "--filters")
        let filters = try #require(try jsonValue(args[1]) as? [[String: Any]])
        #expect(filters.map { $0["Name"] as? String } == ["attachment.instance-id", "attachment.device"])
        #expect(filters[1]["Values"] as? [String] == ["/dev/xvdf", "/dev/sdf"])
    }

    func register(ena: Bool, imds: String? = "v2.0") -> [String] {
        var r = EC2Args.RegisterImage(name: "CentOS 6.9 x86_64 ENA 2024-05-01", description: "d", snapshotID: "snap-0f00", volumeSize: 8, enaSupport: ena)
        r.imdsSupport = imds
        return EC2Args.registerImage(r)
    }

    @Test func registerImageHasTheCentOS6Flags() throws {
        let args = register(ena: false)
        #expect(value(after: "--name", in: args) == "CentOS 6.9 x86_64 ENA 2024-05-01")
        #expect(value(after: "--architecture", in: args) == "x86_64")
        #expect(value(after: "--virtualization-type", in: args) == "hvm")
        #expect(value(after: "--boot-mode", in: args) == "legacy-bios")
        #expect(value(after: "--imds-support", in: args) == "v2.0")
        #expect(value(after: "--root-device-name", in: args) == "/dev/sda1")
        let mappings = try #require(try jsonArgument("--block-device-mappings", in: args) as? [[String: Any]])
        #expect(mappings.count == 1)
        #expect(mappings[0]["DeviceName"] as? String == value(after: "--root-device-name", in: args))
        let ebs = try #require(mappings[0]["Ebs"] as? [String: Any])
        #expect(ebs["SnapshotId"] as? String == "snap-0f00")
        #expect(ebs["DeleteOnTermination"] as? Bool == true)
        #expect(ebs["VolumeType"] as? String == "gp3")
        #expect(ebs["VolumeSize"] as? Int == 8)
        #expect(!args.contains("--ena-support"))
        #expect(!args.contains("--no-ena-support"))
    }

    @Test func enaSupportOnlyForTheENAVariant() {
        #expect(register(ena: true).filter { $0 == "--ena-support" }.count == 1)
        #expect(!register(ena: false).contains { $0.contains("ena-support") })
    }

    @Test func imdsSupportIsSwitchable() {
        #expect(!register(ena: false, imds: nil).contains("--imds-support"))
    }

    @Test func tagsImagesCopiesAndPublic() throws {
        let tags = EC2Args.createTags(resources: ["ami-1", "snap-2"], tags: [Tag("a", "b,c")])
        #expect(Array(tags.prefix(4)) == ["--resources", "ami-1", "snap-2", "--tags"])
        #expect(try jsonValue(tags[4]) as? [[String: String]] == [["Key": "a", "Value": "b,c"]])
        #expect(EC2Args.describeImages(ids: ["ami-1"]) == ["--image-ids", "ami-1"])
        #expect(EC2Args.describeImages(filters: []) == ["--owners", "self"])
        #expect(EC2Args.deregisterImage(id: "ami-1") == ["--image-id", "ami-1"])
        #expect(EC2Args.getImageBlockPublicAccessState() == [])
        let pub = EC2Args.makePublic(imageID: "ami-1")
        #expect(Array(pub.prefix(3)) == ["--image-id", "ami-1", "--launch-permission"])
        let perm = try #require(try jsonValue(pub[3]) as? [String: Any])
        #expect(perm["Add"] as? [[String: String]] == [["Group": "all"]])
        #expect(
            EC2Args.copyImage(sourceImageID: "ami-1", sourceRegion: "ap-northeast-1", name: "n", description: "d") == [
                "--source-image-id", "ami-1", "--source-region", "ap-northeast-1", "--name", "n", "--description", "d",
            ])
    }
}

/// Answers shaped as the EC2 API reference's examples, as the aws CLI prints them with `--output json`.
@Suite struct DecodingTests {
    @Test func createSnapshot() throws {
        let json = """
            {
                "Description": "This is my root volume snapshot",
                "Tags": [{"Key": "centos6-ami:build-id", "Value": "b1"}],
                "Encrypted": false,
                "VolumeId": "vol-1234567890abcdef0",
                "State": "pending",
                "VolumeSize": 8,
                "StartTime": "2019-02-28T21:06:01.000Z",
                "Progress": "",
                "OwnerId": "012345678910",
                "SnapshotId": "snap-066877671789bd71b"
            }
            """
        let s = try decodeAWS(Snapshot.self, from: Data(json.utf8), call: "create-snapshot")
        #expect(s.SnapshotId == "snap-066877671789bd71b")
        #expect(s.State == "pending")
        #expect(s.VolumeSize == 8)
        #expect(s.Tags == [Tag("centos6-ami:build-id", "b1")])
    }

    @Test func describeSnapshots() throws {
        let json = """
            {"Snapshots": [{"Description": "x", "Encrypted": false, "VolumeId": "vol-049df61146c4d7901", "State": "error",
              "StateMessage": "Snapshot failed", "VolumeSize": 8, "StartTime": "2019-02-28T21:28:32.000Z", "Progress": "40%",
              "OwnerId": "012345678910", "SnapshotId": "snap-1234567890abcdef0"}]}
            """
        let out = try decodeAWS(DescribeSnapshotsOutput.self, from: Data(json.utf8), call: "describe-snapshots")
        #expect(out.Snapshots.map(\.State) == ["error"])
        #expect(out.Snapshots[0].StateMessage == "Snapshot failed")
        #expect(out.Snapshots[0].Progress == "40%")
    }

    @Test func describeVolumes() throws {
        let json = """
            {"Volumes": [{"AvailabilityZone": "us-east-1a", "Attachments": [{"AttachTime": "2013-12-18T22:35:00.000Z",
              "InstanceId": "i-1234567890abcdef0", "VolumeId": "vol-049df61146c4d7901", "State": "attached",
              "DeleteOnTermination": true, "Device": "/dev/sda1"}], "Encrypted": true, "VolumeType": "gp2",
              "VolumeId": "vol-049df61146c4d7901", "State": "in-use", "Iops": 100, "SnapshotId": "snap-1234567890abcdef0",
              "CreateTime": "2013-12-18T22:35:00.084Z", "Size": 8}]}
            """
        let out = try decodeAWS(DescribeVolumesOutput.self, from: Data(json.utf8), call: "describe-volumes")
        #expect(out.Volumes[0].VolumeId == "vol-049df61146c4d7901")
        #expect(out.Volumes[0].Size == 8)
        #expect(out.Volumes[0].Attachments?.first?.Device == "/dev/sda1")
        #expect(out.Volumes[0].Attachments?.first?.InstanceId == "i-1234567890abcdef0")
    }

    @Test func registerAndCopyImage() throws {
        #expect(
            try decodeAWS(ImageIDOutput.self, from: Data(#"{"ImageId": "ami-1a2b3c4d5eEXAMPLE"}"#.utf8), call: "register-image").ImageId
                == "ami-1a2b3c4d5eEXAMPLE")
        #expect(
            try decodeAWS(ImageIDOutput.self, from: Data(#"{"ImageId": "ami-0123456789abcdefg"}"#.utf8), call: "copy-image").ImageId == "ami-0123456789abcdefg")
    }

    @Test func describeImages() throws {
        let json = """
            {"Images": [{"VirtualizationType": "hvm", "Description": "Provided by Red Hat, Inc.", "PlatformDetails": "Red Hat Enterprise Linux",
              "EnaSupport": true, "Hypervisor": "xen", "State": "available", "SriovNetSupport": "simple", "ImageId": "ami-0123456789EXAMPLE",
              "UsageOperation": "RunInstances:0010", "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-111222333444aaabb",
              "DeleteOnTermination": true, "VolumeType": "gp2", "VolumeSize": 10, "Encrypted": false}}], "Architecture": "x86_64",
              "ImageLocation": "123456789012/RHEL-8.0.0_HVM-20190618-x86_64-1-Hourly2-GP2", "RootDeviceType": "ebs", "OwnerId": "123456789012",
              "RootDeviceName": "/dev/sda1", "CreationDate": "2019-05-10T13:17:12.000Z", "Public": true, "ImageType": "machine",
              "Name": "RHEL-8.0.0_HVM-20190618-x86_64-1-Hourly2-GP2"},
              {"ImageId": "ami-failed", "State": "failed", "StateReason": {"Code": "Server.InternalError", "Message": "copy failed"}}]}
            """
        let out = try decodeAWS(DescribeImagesOutput.self, from: Data(json.utf8), call: "describe-images")
        #expect(out.Images.count == 2)
        #expect(out.Images[0].snapshotIDs == ["snap-111222333444aaabb"])
        #expect(out.Images[0].Name == "RHEL-8.0.0_HVM-20190618-x86_64-1-Hourly2-GP2")
        #expect(out.Images[1].StateReason?.Message == "copy failed")
        #expect(out.Images[1].snapshotIDs.isEmpty)
    }

    @Test func imageBlockPublicAccessState() throws {
        let json = #"{"ImageBlockPublicAccessState": "block-new-sharing"}"#
        #expect(
            try decodeAWS(ImageBlockPublicAccessStateOutput.self, from: Data(json.utf8), call: "get-image-block-public-access-state")
                .ImageBlockPublicAccessState == "block-new-sharing")
    }

    @Test func garbageNamesTheCall() {
        #expect(throws: AMIError.self) { try decodeAWS(ImageIDOutput.self, from: Data("<html>500</html>".utf8), call: "register-image") }
        do {
            _ = try decodeAWS(ImageIDOutput.self, from: Data("{}".utf8), call: "register-image")
        } catch {
            #expect("\(error)".contains("'aws ec2 register-image'"))
        }
    }
}
