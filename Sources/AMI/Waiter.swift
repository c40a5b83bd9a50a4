import Foundation
import Host

/// Time as the waiters see it: injectable so unit tests run instantly.
public struct AMIClock: Sendable {
    public var now: @Sendable () -> Date
    public var sleep: @Sendable (TimeInterval) -> Void
    public init(now: @escaping @Sendable () -> Date, sleep: @escaping @Sendable (TimeInterval) -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// Real time; sleeps in short slices so a ^C is noticed within a fraction of a second.
    public static let system = AMIClock(
        now: { Date() },
        sleep: { seconds in
            let end = Date().addingTimeInterval(seconds)
            while Date() < end, !Interruption.shared.isInterrupted {
                Thread.sleep(forTimeInterval: min(0.2, max(0, end.timeIntervalSinceNow)))
            }
        })
}

/// Our own deadline and progress instead of the aws CLI's fixed waiters
/// (`aws ec2 wait snapshot-completed` gives up after 10 minutes and says nothing meanwhile).
public struct WaitPolicy: Equatable, Sendable {
    public var timeout: TimeInterval
    public var interval: TimeInterval
    public init(timeout: TimeInterval, interval: TimeInterval) {
        self.timeout = timeout
        self.interval = interval
    }
}

public enum Waiter {
    /// What one look at a resource found.
    enum Look<T> {
        case done(T)
        case pending(String)
    }

    /// The loop both waiters share: look, report a changed state, give up at
    /// the deadline, sleep. A "not found" right after creation counts as
    /// pending (eventual consistency); `look` throws for a failed state.
    static func poll<T>(
        _ what: String, policy: WaitPolicy, clock: AMIClock, progress: (String) -> Void,
        look: () throws -> Look<T>
    ) throws -> T {
        let start = clock.now()
        var last = "not yet listed"
        var reported = ""
        while true {
            try Interruption.shared.check()
            do {
                switch try look() {
                case let .done(value): return value
                case let .pending(state): last = state
                }
            } catch let error as AMIError where error.isNotFound {
                last = "not yet listed"
            }
            let elapsed = clock.now().timeIntervalSince(start)
            if last != reported {
                progress("\(what): \(last) (\(Int(elapsed)) s)")
                reported = last
            }
            guard elapsed + policy.interval <= policy.timeout else {
                throw AMIError.timedOut(what: what, seconds: Int(policy.timeout), last: last)
            }
            clock.sleep(policy.interval)
        }
    }

    /// Polls DescribeSnapshots until `completed`; fails at once on `error`.
    public static func snapshotCompleted(
        _ id: String, client: EC2Client, policy: WaitPolicy, clock: AMIClock,
        progress: (String) -> Void
    ) throws -> Snapshot {
        try poll("snapshot '\(id)'", policy: policy, clock: clock, progress: progress) {
            let snapshot = try client.describeSnapshot(id: id)
            switch snapshot.State {
            case "completed":
                progress("snapshot '\(id)' completed")
                return .done(snapshot)
            case "error":
                throw AMIError.snapshotFailed(id: id, state: snapshot.State, message: snapshot.StateMessage ?? "")
            default:
                return .pending("\(snapshot.State) \(snapshot.Progress ?? "")".trimmingCharacters(in: .whitespaces))
            }
        }
    }

    /// Polls DescribeImages until `available`; fails at once on `failed`, `error`, `invalid`, `deregistered`.
    public static func imageAvailable(
        _ id: String, client: EC2Client, region: String, policy: WaitPolicy, clock: AMIClock,
        progress: (String) -> Void
    ) throws -> Image {
        try poll("image '\(id)' in '\(region)'", policy: policy, clock: clock, progress: progress) {
            let image = try client.describeImage(id: id)
            let state = image.State ?? "unknown"
            switch state {
            case "available":
                progress("image '\(id)' in '\(region)' available")
                return .done(image)
            case "failed", "error", "invalid", "deregistered":
                throw AMIError.imageFailed(id: id, region: region, state: state, message: image.StateReason?.Message ?? "")
            default:
                return .pending(state)
            }
        }
    }
}
