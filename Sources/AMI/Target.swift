import Foundation
import Host

/// What to snapshot: an EBS volume by id, or a local block device whose volume we find.
public enum RegisterTarget: Equatable, Sendable, CustomStringConvertible {
    case volume(String)
    case device(String)
    /// A disk-image file, uploaded into a new snapshot through the EBS direct APIs (no builder in AWS needed).
    case image(String)

    /// `vol-…` is a volume id; a path under /dev is a device; an existing regular file elsewhere is an image.
    public static func parse(_ text: String) throws -> RegisterTarget {
        if isVolumeID(text) { return .volume(text) }
        if text.hasPrefix("/dev/") { return .device(text) }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: text, isDirectory: &isDirectory), !isDirectory.boolValue { return .image(text) }
        throw AMIError.notATarget(text)
    }

    /// The target of `install … --register`: an attached EBS device, or an image file (uploaded
    /// afterwards; it need not exist yet). A loop device is refused: register its image file instead.
    public static func forInstall(target: String) throws -> RegisterTarget {
        guard target.hasPrefix("/dev/") else { return .image(target) }
        guard !VolumeLocator.kernelName(target).hasPrefix("loop") else {
            throw AMIError.loopDevice(target)
        }
        return .device(target)
    }

    public static func isVolumeID(_ text: String) -> Bool {
        guard text.hasPrefix("vol-") else { return false }
        let hex = text.dropFirst(4)
        return !hex.isEmpty && hex.allSatisfy { $0.isHexDigit }
    }

    public var description: String {
        switch self {
        case let .volume(id): return id
        case let .device(path): return path
        case let .image(path): return path
        }
    }
}

/// Finds the EBS volume behind a local device and makes sure it is quiet.
public enum VolumeLocator {
    /// Nitro exposes EBS volumes as NVMe devices whose serial is the volume id without its dash
    /// (`vol0123456789abcdef0` → `vol-0123456789abcdef0`). Nil for anything else (instance store says `AWS…`).
    public static func volumeID(fromNVMeSerial serial: String) -> String? {
        let s = serial.trimmingCharacters(in: .whitespacesAndNewlines)
        if RegisterTarget.isVolumeID(s) { return s }
        guard s.hasPrefix("vol"), s.count > 3 else { return nil }
        let candidate = "vol-" + s.dropFirst(3)
        return RegisterTarget.isVolumeID(candidate) ? candidate : nil
    }

    /// The names EC2 may record for a Xen attachment: `/dev/xvdf` and `/dev/sdf` are the same slot.
    public static func attachmentNames(forDevice device: String) -> [String] {
        let name = (device as NSString).lastPathComponent
        if name.hasPrefix("xvd") { return ["/dev/\(name)", "/dev/sd" + name.dropFirst(3)] }
        if name.hasPrefix("sd") { return ["/dev/\(name)", "/dev/xvd" + name.dropFirst(2)] }
        return ["/dev/\(name)"]
    }

    /// The kernel's name of a device path (`/dev/disk/by-id/…` symlinks resolved).
    public static func kernelName(_ device: String) -> String {
        let resolved =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: device)).map { link -> String in
                link.hasPrefix("/") ? link : ((device as NSString).deletingLastPathComponent as NSString).appendingPathComponent(link)
            } ?? device
        return ((resolved as NSString).standardizingPath as NSString).lastPathComponent
    }

    /// What the platform says of `device` being volume `id`.
    public enum DeviceCheck: Equatable, Sendable {
        case same
        case other(String)
        /// No EBS NVMe serial (Xen attaches EBS as xvd*/sd*, which name no volume).
        case unknown
    }

    /// Whether `device` is the EBS volume `id`, by its NVMe serial (Nitro: `vol…`).
    public static func check(device: String, isVolume id: String, sysfsRoot: String = "/sys") -> DeviceCheck {
        let name = kernelName(device)
        guard let serial = try? String(contentsOfFile: "\(sysfsRoot)/block/\(name)/device/serial", encoding: .utf8),
            let found = volumeID(fromNVMeSerial: serial)
        else { return .unknown }
        return found == id ? .same : .other(found)
    }

    /// The volume id of `device`: from its NVMe serial, else DescribeVolumes by this instance's
    /// attachment name. `instanceID` is injected: unit tests must never reach the instance metadata service.
    public static func locate(device: String, sysfsRoot: String = "/sys", instanceID: () throws -> String, client: EC2Client) throws -> String {
        let name = kernelName(device)
        if let serial = try? String(contentsOfFile: "\(sysfsRoot)/block/\(name)/device/serial", encoding: .utf8),
            let id = volumeID(fromNVMeSerial: serial)
        {
            return id
        }
        if name.hasPrefix("loop") {
            throw AMIError.volumeNotFound(device: device, detail: "a loop device is not an EBS volume (copy the image onto an attached volume first)")
        }
        if name.hasPrefix("nvme") {
            throw AMIError.volumeNotFound(device: device, detail: "its NVMe serial is not an EBS volume id (instance store?)")
        }
        let instance: String
        do { instance = try instanceID() } catch {
            throw AMIError.volumeNotFound(device: device, detail: "cannot learn this instance's id (\(error))")
        }
        let volumes = try client.describeVolumes(instanceID: instance, devices: attachmentNames(forDevice: device))
        guard volumes.count == 1 else {
            throw AMIError.volumeNotFound(
                device: device, detail: "\(volumes.count) volumes attached to '\(instance)' as \(attachmentNames(forDevice: device).joined(separator: " or "))")
        }
        return volumes[0].VolumeId
    }

    /// `major:minor` of the device and each of its partitions, from sysfs.
    public static func deviceNumbers(name: String, sysfsRoot: String = "/sys") -> Set<String> {
        var numbers: Set<String> = []
        let dir = "\(sysfsRoot)/class/block/\(name)"
        if let dev = try? String(contentsOfFile: dir + "/dev", encoding: .utf8) { numbers.insert(dev.trimmingCharacters(in: .whitespacesAndNewlines)) }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where entry.hasPrefix(name) {
            if let dev = try? String(contentsOfFile: "\(dir)/\(entry)/dev", encoding: .utf8) {
                numbers.insert(dev.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        return numbers
    }

    /// The first mount point in `mountinfo` text whose source is one of `numbers` (`major:minor`), if any.
    public static func mountPoint(of numbers: Set<String>, mountinfo: String) -> String? {
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { continue }
            if numbers.contains(String(fields[2])) { return String(fields[4]) }
        }
        return nil
    }

    /// Refuses a mounted device, then flushes its buffers so the snapshot sees every written block.
    public static func quiesce(device: String, sysfsRoot: String = "/sys", mountinfoPath: String = "/proc/self/mountinfo", runner: any CommandRunner) throws {
        let name = kernelName(device)
        let numbers = deviceNumbers(name: name, sysfsRoot: sysfsRoot)
        guard !numbers.isEmpty else { throw AMIError.unknownBlockDevice(device: device, missing: "\(sysfsRoot)/class/block/\(name)") }
        let mountinfo = (try? String(contentsOfFile: mountinfoPath, encoding: .utf8)) ?? ""
        if let point = mountPoint(of: numbers, mountinfo: mountinfo) {
            throw AMIError.targetMounted(device: device, mountPoint: point)
        }
        // coreutils `sync FILE` fsyncs the file: for a block device, its buffer cache.
        try runner.checked(Command("sync", [device]))
    }
}

/// This instance's id, for finding an attached volume by its device name.
public enum InstanceIdentity {
    /// On Nitro the DMI board asset tag is the instance id: no network needed. Otherwise IMDSv2
    /// (token, then `instance-id`) through curl with short timeouts. Never called by unit tests.
    public static func current(runner: any CommandRunner, dmiPath: String = "/sys/devices/virtual/dmi/id/board_asset_tag") throws -> String {
        if let tag = try? String(contentsOfFile: dmiPath, encoding: .utf8) {
            let id = tag.trimmingCharacters(in: .whitespacesAndNewlines)
            if id.hasPrefix("i-") { return id }
        }
        let imds = "http://169.254.169.254/latest"
        let token = try runner.checked(
            Command("curl", ["-sSf", "--max-time", "3", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", "\(imds)/api/token"])
        ).stdoutText
        let id = try runner.checked(Command("curl", ["-sSf", "--max-time", "3", "-H", "X-aws-ec2-metadata-token: \(token)", "\(imds)/meta-data/instance-id"]))
            .stdoutText
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard id.hasPrefix("i-") else { throw AMIError.badInstanceID(id) }
        return id
    }
}
