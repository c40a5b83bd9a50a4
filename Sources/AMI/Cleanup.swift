import Foundation
import Host

/// `cleanup --build-id ID`: removes the leftovers of an interrupted or kept run, found by tag.
public enum AMICleanup {
    public struct Found: Equatable, Sendable {
        public var region: String
        public var images: [String] = []
        public var snapshots: [String] = []
        public var isEmpty: Bool { images.isEmpty && snapshots.isEmpty }
    }

    /// Reads what a build left in `region`: its tagged images, the snapshots behind them, its tagged
    /// snapshots, and untagged images made from those snapshots (a run stopped between
    /// RegisterImage and CreateTags). Reads only.
    public static func find(buildID: String, region: String, client: EC2Client) throws -> Found {
        let filter = [Filter.tag(TagKey.buildID, buildID)]
        var found = Found(region: region)
        let tagged = try client.describeImages(filters: filter)
        let snapshots = try client.describeSnapshots(filters: filter).map(\.SnapshotId)
        var images = tagged
        if !snapshots.isEmpty {
            // DescribeImages' block-device-mapping.snapshot-id filter is not on every endpoint; match here.
            let own = try client.describeImages(filters: [])
            images += own.filter { image in !tagged.contains { $0.ImageId == image.ImageId } && image.snapshotIDs.contains { snapshots.contains($0) } }
        }
        found.images = images.map(\.ImageId)
        var snaps: [String] = []
        for s in images.flatMap(\.snapshotIDs) + snapshots where !snaps.contains(s) { snaps.append(s) }
        found.snapshots = snaps
        return found
    }

    /// Deregisters the images, then deletes the snapshots (a snapshot in use by an AMI cannot go first).
    /// Something already gone counts as done. Returns what failed.
    ///
    /// - Important: deletes the AMIs and snapshots of `found`.
    public static func remove(_ found: Found, client: EC2Client, say: (String) -> Void) -> [String] {
        var failures: [String] = []
        for id in found.images {
            do {
                try client.deregisterImage(id: id)
                say("deregistered image '\(id)' in '\(found.region)'")
            } catch let error as AMIError where error.isNotFound {
            } catch {
                failures.append("image '\(id)' in '\(found.region)': \(error)")
            }
        }
        for id in found.snapshots {
            do {
                try client.deleteSnapshot(id: id)
                say("deleted snapshot '\(id)' in '\(found.region)'")
            } catch let error as AMIError where error.isNotFound {
            } catch {
                failures.append("snapshot '\(id)' in '\(found.region)': \(error)")
            }
        }
        return failures
    }
}
