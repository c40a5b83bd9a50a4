import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A child that must not outlive its supervisor: `batch` names itself in the child's
/// environment; the child (an install) then sends itself SIGTERM, and so unwinds as on
/// any signal, once that parent is gone (a batch killed outright reparents its children).
public enum ParentWatch {
    public static let variable = "CENTOS6_AMI_PARENT_PID"

    /// Starts the watch when the environment names a parent (and takes the name out of
    /// it, so this process's own children do not watch it). Checks twice a second.
    public static func startIfAsked() {
        guard let text = ProcessInfo.processInfo.environment[variable], let parent = pid_t(text), parent > 1 else { return }
        unsetenv(variable)
        if getppid() != parent { kill(getpid(), SIGTERM); return }
        Thread.detachNewThread {
            while getppid() == parent { usleep(500_000) }
            kill(getpid(), SIGTERM)
        }
    }
}
