import Foundation
import Host

/// Runs the EC2 calls of `EC2Args` through a CommandRunner and decodes their JSON.
/// One client per region (`client.inRegion(_:)` for copies).
public struct EC2Client: Sendable {
    public var context: AWSContext
    public var runner: any CommandRunner

    public init(context: AWSContext, runner: any CommandRunner) {
        self.context = context
        self.runner = runner
    }

    public func inRegion(_ region: String) -> EC2Client { EC2Client(context: context.inRegion(region), runner: runner) }

    /// Runs one call; a non-zero exit becomes `AMIError.callFailed` with the tail of the CLI's stderr.
    @discardableResult
    public func call(_ operation: String, _ arguments: [String]) throws -> Data {
        let command = context.ec2(operation, arguments)
        let result = runner.run(command)
        guard result.status == 0 else {
            let tail = result.stderrText.split(separator: "\n", omittingEmptySubsequences: true).suffix(4).joined(separator: " / ")
            throw AMIError.callFailed(call: operation, detail: tail.isEmpty ? "exit status \(result.status)" : tail)
        }
        return result.standardOutput
    }

    public func createSnapshot(volumeID: String, description: String, tags: [Tag]) throws -> Snapshot {
        let data = try call("create-snapshot", EC2Args.createSnapshot(volumeID: volumeID, description: description, tags: tags))
        return try decodeAWS(Snapshot.self, from: data, call: "create-snapshot")
    }

    public func describeSnapshot(id: String) throws -> Snapshot {
        let data = try call("describe-snapshots", EC2Args.describeSnapshots(ids: [id]))
        let out = try decodeAWS(DescribeSnapshotsOutput.self, from: data, call: "describe-snapshots")
        guard let snapshot = out.Snapshots.first(where: { $0.SnapshotId == id }) else {
            throw AMIError.callFailed(call: "describe-snapshots", detail: "snapshot '\(id)' is not listed (InvalidSnapshot.NotFound)")
        }
        return snapshot
    }

    public func describeSnapshots(filters: [Filter]) throws -> [Snapshot] {
        let data = try call("describe-snapshots", EC2Args.describeSnapshots(filters: filters))
        return try decodeAWS(DescribeSnapshotsOutput.self, from: data, call: "describe-snapshots").Snapshots
    }

    public func deleteSnapshot(id: String) throws {
        try call("delete-snapshot", EC2Args.deleteSnapshot(id: id))
    }

    public func describeVolume(id: String) throws -> Volume {
        let data = try call("describe-volumes", EC2Args.describeVolumes(ids: [id]))
        let out = try decodeAWS(DescribeVolumesOutput.self, from: data, call: "describe-volumes")
        guard let volume = out.Volumes.first(where: { $0.VolumeId == id }) else {
            throw AMIError.callFailed(call: "describe-volumes", detail: "volume '\(id)' is not listed")
        }
        return volume
    }

    public func describeVolumes(instanceID: String, devices: [String]) throws -> [Volume] {
        let data = try call("describe-volumes", EC2Args.describeVolumes(instanceID: instanceID, devices: devices))
        return try decodeAWS(DescribeVolumesOutput.self, from: data, call: "describe-volumes").Volumes
    }

    public func registerImage(_ request: EC2Args.RegisterImage) throws -> String {
        let data = try call("register-image", EC2Args.registerImage(request))
        return try decodeAWS(ImageIDOutput.self, from: data, call: "register-image").ImageId
    }

    public func createTags(resources: [String], tags: [Tag]) throws {
        try call("create-tags", EC2Args.createTags(resources: resources, tags: tags))
    }

    public func describeImage(id: String) throws -> Image {
        let data = try call("describe-images", EC2Args.describeImages(ids: [id]))
        let out = try decodeAWS(DescribeImagesOutput.self, from: data, call: "describe-images")
        guard let image = out.Images.first(where: { $0.ImageId == id }) else {
            throw AMIError.callFailed(call: "describe-images", detail: "image '\(id)' is not listed (InvalidAMIID.NotFound)")
        }
        return image
    }

    public func describeImages(filters: [Filter]) throws -> [Image] {
        let data = try call("describe-images", EC2Args.describeImages(filters: filters))
        return try decodeAWS(DescribeImagesOutput.self, from: data, call: "describe-images").Images
    }

    public func deregisterImage(id: String) throws {
        try call("deregister-image", EC2Args.deregisterImage(id: id))
    }

    public func imageBlockPublicAccessState() throws -> String {
        let data = try call("get-image-block-public-access-state", EC2Args.getImageBlockPublicAccessState())
        return try decodeAWS(ImageBlockPublicAccessStateOutput.self, from: data, call: "get-image-block-public-access-state").ImageBlockPublicAccessState
    }

    public func makePublic(imageID: String) throws {
        try call("modify-image-attribute", EC2Args.makePublic(imageID: imageID))
    }

    /// CopyImage into this client's region.
    public func copyImage(sourceImageID: String, sourceRegion: String, name: String, description: String) throws -> String {
        let data = try call("copy-image", EC2Args.copyImage(sourceImageID: sourceImageID, sourceRegion: sourceRegion, name: name, description: description))
        return try decodeAWS(ImageIDOutput.self, from: data, call: "copy-image").ImageId
    }

    /// The region the calls go to: `--region`, else the environment's, else the aws CLI's configuration.
    public func resolvedRegion(environment: [String: String]) throws -> String {
        if let region = context.region, !region.isEmpty { return region }
        for key in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let region = environment[key], !region.isEmpty { return region }
        }
        let result = runner.run(Command(context.executable, ["configure", "get", "region"] + (context.profile.map { ["--profile", $0] } ?? [])))
        let region = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0, !region.isEmpty else { throw AMIError.noRegion }
        return region
    }
}

extension AMIError {
    /// EC2 is eventually consistent: a resource just created may be "not found" for a few seconds.
    var isNotFound: Bool {
        if case let .callFailed(_, detail) = self { return detail.contains(".NotFound") }
        return false
    }
}
