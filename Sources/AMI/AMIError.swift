import Foundation

/// Everything that can go wrong while snapshotting, registering or cleaning up.
public enum AMIError: Error, CustomStringConvertible, Equatable {
    /// An aws call failed (its stderr tail is in `detail`).
    case callFailed(call: String, detail: String)
    case unexpectedAnswer(call: String, detail: String, output: String)
    case snapshotFailed(id: String, state: String, message: String)
    case imageFailed(id: String, region: String, state: String, message: String)
    case timedOut(what: String, seconds: Int, last: String)
    case noRegion
    case volumeNotFound(device: String, detail: String)
    case badTarget(String)
    case targetMounted(device: String, mountPoint: String)
    case volumeTooSmall(requested: Int, snapshot: Int)
    case publicAccessBlocked(region: String, state: String)
    case enaNotInImage(String)
    case nameTaken(name: String, region: String)
    case resultsFile(path: String, reason: String)
    /// An image file to upload cannot be read (or is not a regular file).
    case imageUnreadable(path: String, reason: String)
    /// PutSnapshotBlock of one block failed on every try.
    case blockFailed(index: Int, offset: Int64, attempts: Int, reason: String)
    /// `--volume-size` below what the image file needs.
    case imageTooBig(requested: Int, needed: Int)

    public var description: String {
        switch self {
        case let .callFailed(call, detail):
            // EBS direct calls are named `ebs OPERATION`; the rest are EC2's.
            return "'aws \(call.hasPrefix("ebs ") ? "" : "ec2 ")\(call)' failed: \(detail)"
        case let .unexpectedAnswer(call, detail, output):
            return "unexpected answer from 'aws \(call.hasPrefix("ebs ") ? "" : "ec2 ")\(call)' (\(detail)): \(output)"
        case let .snapshotFailed(id, state, message):
            return "snapshot '\(id)' went to state '\(state)'\(message.isEmpty ? "" : ": \(message)")"
        case let .imageFailed(id, region, state, message):
            return "image '\(id)' in '\(region)' went to state '\(state)'\(message.isEmpty ? "" : ": \(message)")"
        case let .timedOut(what, seconds, last):
            return "\(what) did not finish within \(seconds) s (last: \(last)); raise --timeout or look in the EC2 console"
        case .noRegion:
            return "no AWS region: pass '--region', or set AWS_REGION (or a region in the AWS_PROFILE's config)"
        case let .volumeNotFound(device, detail):
            return "cannot find the EBS volume behind '\(device)': \(detail); pass the volume id instead ('register VERSION vol-...')"
        case let .badTarget(text):
            return text
        case let .targetMounted(device, mountPoint):
            return "'\(device)' is mounted on '\(mountPoint)'; unmount it first (a snapshot of a mounted filesystem is not consistent)"
        case let .volumeTooSmall(requested, snapshot):
            return "'--volume-size \(requested)' is smaller than the snapshot (\(snapshot) GiB); give at least \(snapshot)"
        case let .publicAccessBlocked(region, state):
            return "image block public access is on in '\(region)' (state '\(state)'): EC2 refuses to make any AMI public there. "
                + "An account administrator can lift it with 'aws ec2 disable-image-block-public-access --region \(region)' "
                + "(it is account-wide and can take up to 10 minutes), or register without '--public'"
        case let .enaNotInImage(text):
            return text
        case let .nameTaken(name, region):
            return "an AMI named '\(name)' already exists in '\(region)'; pick another '--build-id' or deregister it"
        case let .resultsFile(path, reason):
            return "results file '\(path)': \(reason)"
        case let .imageUnreadable(path, reason):
            return "cannot read image '\(path)': \(reason)"
        case let .blockFailed(index, offset, attempts, reason):
            return "block \(index) (offset \(offset)) was not accepted after \(attempts) tries: \(reason)"
        case let .imageTooBig(requested, needed):
            return "'--volume-size \(requested)' is smaller than the image (\(needed) GiB); give at least \(needed)"
        }
    }
}
