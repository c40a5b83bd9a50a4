import Foundation
import Host
import Install

/// The journal of a command that takes resources (loop devices, mounts, scratch
/// directories, QEMU), so `cleanup --local` undoes a run killed outright: every
/// child the spawner starts is recorded as it starts. nil where it cannot be written
/// (not root): the run goes on.
enum CommandJournal {
    static func start(_ command: String, console: Console) -> RunJournal? {
        let workDirectory = console.tool.workDirectory
        let journal = try? RunJournal(directory: RunJournal.directory(workDirectory: workDirectory), command: command)
        Interruption.shared.childObserver = { pid in journal?.record(.child(pid: pid, start: RunJournal.startTime(pid) ?? 0)) }
        return journal
    }

    /// The run ended and unwound: nothing of it is left to undo.
    static func finish(_ journal: RunJournal?) {
        Interruption.shared.childObserver = nil
        journal?.remove()
    }
}
