import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Process {
    /// For the tests' helper processes: the tool itself starts every child
    /// through `Spawner`, which resets the mask in the child instead.
    /// Starts the process with no signal blocked. A child inherits the spawning
    /// thread's signal mask, and Dispatch (and swift-testing) worker threads
    /// block SIGTERM/SIGINT: the child would then never see the TERM that
    /// `Interruption` sends (seen: every stop ended in SIGKILL). The mask is
    /// per thread, so only this thread is touched, and only for the spawn.
    public func runWithSignalsUnblocked() throws {
        var all = sigset_t(), saved = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_UNBLOCK, &all, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try run()
    }
}
