import Foundation
import Host

/// The /dev node of a partition, made sure of. Without udev, devtmpfs may
/// create it late, or drop it late when another loop device of the same name
/// went away just before; the kernel's numbers in /sys decide.
public enum PartitionNode {
    /// Waits for the kernel to know `partition` (re-reading `disk`'s table if
    /// needed), then makes its node from /sys when /dev lacks it or has a
    /// stale one. Returns true when it made the node (the caller removes it).
    public static func ensure(partition: String, disk: String, runner: CommandRunner) throws -> Bool {
        let kernelName = (partition as NSString).lastPathComponent
        let udev = FileManager.default.fileExists(atPath: "/run/udev/control")
        for attempt in 0..<30 where BlockDevices.info(kernelName: kernelName) == nil {
            if attempt % 10 == 0 {
                for command in Preparation.rereadPartitions(device: disk, udev: udev) where BlockDevices.info(kernelName: kernelName) == nil {
                    _ = runner.run(command)
                }
            }
            usleep(100_000)
        }
        guard let info = BlockDevices.info(kernelName: kernelName) else { throw DiskError.partitionNodeMissing(partition) }
        if BlockDevices.kernelName(of: partition) == kernelName { return false }
        try? FileManager.default.removeItem(atPath: partition)
        guard let mknod = Preparation.mknodPartition(path: partition, majorMinor: info.majorMinor) else {
            throw DiskError.partitionNodeMissing(partition)
        }
        try runner.checked(mknod)
        return true
    }
}
