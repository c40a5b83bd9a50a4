import Foundation
import Host

/// The run's log: the file `--log` names (it must be writable), else the default
/// under /var/log/centos6-ami, which only warns when it cannot be written: a full or
/// read-only /var/log never stops a run (README, troubleshooting).
enum DefaultLog {
    /// The log and the path it writes (nil: no log file, after the warning).
    static func open(explicit: String?, defaultPath: () throws -> String, console: Console) throws -> (log: Log, path: String?) {
        if let explicit { return (try Log(path: explicit, progress: console.err), explicit) }
        do {
            let path = try defaultPath()
            return (try Log(path: path, progress: console.err), path)
        } catch {
            console.err("warning: cannot write the default log (\(error)); carrying on without a log file (name one with --log)")
            return (try Log(path: nil, progress: console.err), nil)
        }
    }
}
