import Foundation
import Dispatch
#if canImport(Glibc)
    import Glibc
#endif

/// SIGINT, SIGTERM and SIGHUP handling. The first signal marks the run
/// interrupted and stops every running child (TERM to its process group,
/// KILL after a grace period); the pipeline then unwinds its cleanup stack.
/// Later signals only say that cleanup is in progress, so they cannot cut it short.
// Unchecked: the signal state and child set are under `lock`; the hooks are set before `install()`.
public final class Interruption: @unchecked Sendable {
    public static let shared = Interruption()
    private let lock = NSLock()
    private var children: Set<pid_t> = []
    private var sources: [DispatchSourceSignal] = []
    private var _signal: Int32 = 0
    private var _count = 0
    public var gracePeriod: TimeInterval = 3
    /// Called (from the signal queue) on the first signal, e.g. to tell the user.
    public var onFirstSignal: ((Int32) -> Void)?

    public var isInterrupted: Bool { lock.withLock { _signal != 0 } }
    public var signal: Int32 { lock.withLock { _signal } }

    /// Installs the handlers once; safe to call again.
    public func install() {
        lock.lock(); defer { lock.unlock() }
        guard sources.isEmpty else { return }
        // A no-op handler, not SIG_IGN: ignored signals stay ignored across exec,
        // so every child would ignore TERM/INT (and SIGPIPE); handled ones revert
        // to the default in the child. SIGPIPE: writes to a closed pipe get EPIPE.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        sigaction(SIGPIPE, &action, nil)
        // A parent that spawned us from a worker thread may have handed us a
        // mask with these blocked: unblock them, or no signal would ever arrive.
        var wanted = sigset_t()
        sigemptyset(&wanted)
        for sig in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&wanted, sig) }
        pthread_sigmask(SIG_UNBLOCK, &wanted, nil)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            sigaction(sig, &action, nil)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: DispatchQueue.global())
            source.setEventHandler { [weak self] in self?.received(sig) }
            source.resume()
            sources.append(source)
        }
    }

    /// Throws `HostError.interrupted` once a signal arrived: steps call it between commands.
    public func check() throws {
        let sig = signal
        if sig != 0 { throw HostError.interrupted(signal: sig) }
    }

    func received(_ sig: Int32) {
        let first: Bool = lock.withLock {
            _count += 1
            if _signal == 0 { _signal = sig; return true }
            return false
        }
        if first {
            onFirstSignal?(sig)
            stopChildren()
        } else {
            Output.stderr("centos6-ami: cleanup in progress, please wait\n")
        }
    }

    /// Told of every child as it is registered (the run journal records it, so a
    /// run killed outright can still have its children stopped by `cleanup --local`).
    public var childObserver: ((pid_t) -> Void)?

    public func register(child: pid_t) {
        lock.withLock { _ = children.insert(child) }
        childObserver?(child)
    }
    /// `Spawner` starts a child and registers it inside this, so no signal falls between the two.
    /// `body` gets the signal recorded so far (0: none).
    func whileHoldingLock<T>(_ body: (Int32) throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body(_signal)
    }
    /// The pids `stopChildren` would signal now.
    var registeredChildren: Set<pid_t> { lock.withLock { children } }
    /// Only inside `whileHoldingLock`; `Spawner` tells `childObserver` once the lock is released.
    func insertLocked(child: pid_t) { children.insert(child) }
    public func unregister(child: pid_t) { lock.withLock { _ = children.remove(child) } }

    /// TERM to each running child's process group, then KILL to what is left after the grace period.
    public func stopChildren() {
        let running = lock.withLock { children }
        for pid in running { kill(-pid, SIGTERM); kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(gracePeriod)
        while Date() < deadline {
            if lock.withLock({ children.intersection(running).isEmpty }) { return }
            usleep(50_000)
        }
        for pid in lock.withLock({ children.intersection(running) }) { kill(-pid, SIGKILL); kill(pid, SIGKILL) }
    }

    /// Tests only: forget a previous interruption.
    public func reset() {
        lock.withLock {
            _signal = 0; _count = 0
        }
    }
}
