import Foundation
import Host

/// Everything that can go wrong while snapshotting, registering or cleaning up.
public enum AMIError: ToolError, Equatable {
    /// An aws call failed (its stderr tail is in `detail`).
    case callFailed(call: String, detail: String)
    case unexpectedAnswer(call: String, detail: String, output: String)
    case snapshotFailed(id: String, state: String, message: String)
    case imageFailed(id: String, region: String, state: String, message: String)
    case timedOut(what: String, seconds: Int, last: String)
    case noRegion
    case volumeNotFound(device: String, detail: String)
    /// What register was given is neither a volume id, a device nor an image file.
    case notATarget(String)
    /// A loop device is no EBS volume.
    case loopDevice(String)
    /// A device path the kernel does not list (`missing`: the sysfs entry looked for).
    case unknownBlockDevice(device: String, missing: String)
    /// The instance metadata service answered something that is not an instance id.
    case badInstanceID(String)
    /// No instance id could be had (nothing was given to find it).
    case instanceIDUnknown
    /// `--endpoint-url` for the block upload is not an http(s) URL.
    case badEndpoint(String)
    case noBlockURL(endpoint: String, index: Int)
    /// e2fsck -fn found the image's filesystem not clean (`detail`: its exit and last lines).
    case filesystemNotClean(partition: String, status: Int32, detail: String)
    /// One of the read-only checks of an image file refused it (`reason`: the check's error).
    case imageCheckFailed(image: String, check: String, reason: String)
    /// The image's /boot has no kernel.
    case noKernelInImage
    case targetMounted(device: String, mountPoint: String)
    case volumeTooSmall(requested: Int, snapshot: Int)
    case publicAccessBlocked(region: String, state: String)
    /// `--ena` for an image that cannot boot on Nitro (`reasons`: the verdict's).
    case enaNotInImage(image: String, reasons: [String])
    case nameTaken(name: String, region: String)
    case resultsFile(path: String, reason: String)
    /// An image file to upload cannot be read (or is not a regular file).
    case imageUnreadable(path: String, reason: String)
    /// PutSnapshotBlock of one block failed on every try.
    case blockFailed(index: Int, offset: Int64, attempts: Int, reason: String)
    /// `--volume-size` below what the image file needs.
    case imageTooBig(requested: Int, needed: Int)

    public var failure: String { parts.failure }
    public var reason: String? { parts.reason }
    public var remedy: String? { parts.remedy }

    // EBS direct calls are named `ebs OPERATION`; the rest are EC2's.
    private static func awsLine(_ call: String) -> String { "aws \(call.hasPrefix("ebs ") ? "" : "ec2 ")\(call)" }

    private var parts: (failure: String, reason: String?, remedy: String?) {
        switch self {
        case let .callFailed(call, detail):
            return ("'\(Self.awsLine(call))' failed", detail, nil)
        case let .unexpectedAnswer(call, detail, output):
            return ("unexpected answer from '\(Self.awsLine(call))' (\(detail))", output, nil)
        case let .snapshotFailed(id, state, message):
            return ("snapshot '\(id)' went to state '\(state)'", message.isEmpty ? nil : message, nil)
        case let .imageFailed(id, region, state, message):
            return ("image '\(id)' in '\(region)' went to state '\(state)'", message.isEmpty ? nil : message, nil)
        case let .timedOut(what, seconds, last):
            return ("\(what) did not finish within \(seconds) s (last: \(last))", nil, "raise --timeout or look in the EC2 console")
        case .noRegion:
            return ("no AWS region", "pass '--region', or set AWS_REGION (or a region in the AWS_PROFILE's config)", nil)
        case let .volumeNotFound(device, detail):
            return ("cannot find the EBS volume behind '\(device)'", detail, "pass the volume id instead ('register VERSION vol-...')")
        case let .notATarget(text):
            return ("target '\(text)' is neither a volume id ('vol-' and hex digits), a device under /dev nor an existing image file", nil, nil)
        case let .loopDevice(target):
            return ("'\(target)' is a loop device, not an EBS volume", nil, "'--register' needs an attached EBS volume or the image file itself")
        case let .unknownBlockDevice(device, missing):
            return ("'\(device)' is not a block device this machine knows (no '\(missing)')", nil, nil)
        case let .badInstanceID(id):
            return ("the instance metadata service answered '\(id)' for instance-id", nil, nil)
        case .instanceIDUnknown:
            return ("instance id unknown", nil, nil)
        case let .badEndpoint(text):
            return ("endpoint '\(text)' is not an http(s) URL", nil, "give --endpoint-url as http://HOST:PORT or https://HOST")
        case let .noBlockURL(endpoint, index):
            return ("endpoint '\(endpoint)' gives no URL for block \(index)", nil, nil)
        case let .filesystemNotClean(partition, status, detail):
            return (
                "the filesystem on '\(partition)' is not clean (e2fsck -fn exit \(status): \(detail))", nil, "rebuild the image or repair it with e2fsck -f"
            )
        case let .imageCheckFailed(image, check, reason):
            return ("image '\(image)' failed the '\(check)' check", reason, nil)
        case .noKernelInImage:
            return ("no kernel ('boot/vmlinuz-*') in it", nil, "is it an image built by 'centos6-ami install'?")
        case let .targetMounted(device, mountPoint):
            return ("'\(device)' is mounted on '\(mountPoint)'", nil, "unmount it first (a snapshot of a mounted filesystem is not consistent)")
        case let .volumeTooSmall(requested, snapshot):
            return ("'--volume-size \(requested)' is smaller than the snapshot (\(snapshot) GiB)", nil, "give at least \(snapshot)")
        case let .publicAccessBlocked(region, state):
            return (
                "image block public access is on in '\(region)' (state '\(state)')",
                "EC2 refuses to make any AMI public there. "
                    + "An account administrator can lift it with 'aws ec2 disable-image-block-public-access --region \(region)' "
                    + "(it is account-wide and can take up to 10 minutes), or register without '--public'", nil
            )
        case let .enaNotInImage(image, reasons):
            return ("'\(image)' cannot boot on Nitro, so it is not registered with ENA support", reasons.joined(separator: "; "), "register it without --ena")
        case let .nameTaken(name, region):
            return ("an AMI named '\(name)' already exists in '\(region)'", nil, "pick another '--build-id' or deregister it")
        case let .resultsFile(path, reason):
            return ("results file '\(path)'", reason, nil)
        case let .imageUnreadable(path, reason):
            return ("cannot read image '\(path)'", reason, nil)
        case let .blockFailed(index, offset, attempts, reason):
            return ("block \(index) (offset \(offset)) was not accepted after \(attempts) tries", reason, nil)
        case let .imageTooBig(requested, needed):
            return ("'--volume-size \(requested)' is smaller than the image (\(needed) GiB)", nil, "give at least \(needed)")
        }
    }
}
