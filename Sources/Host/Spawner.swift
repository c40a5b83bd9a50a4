import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// What a child reads on stdin.
enum SpawnInput: Sendable {
    /// /dev/null.
    case null
    /// A pipe: `Spawned.standardInput` is its write end (the caller writes and closes it).
    case pipe
    /// A descriptor of ours, duplicated into the child (its file offset is shared).
    case descriptor(Int32)
}

/// Where a child's stdout or stderr goes.
enum SpawnOutput: Sendable {
    case null
    /// A pipe: the read end is handed back in `Spawned`.
    case pipe
    /// A descriptor of ours, duplicated into the child (e.g. a log file, our own stderr).
    case descriptor(Int32)
}

/// How a child takes part in ^C handling.
public enum SpawnRegistration: Sendable {
    /// `Interruption` stops it (TERM to its group, then KILL); refused once a signal arrived.
    case stopOnSignal
    /// As `.stopOnSignal`, but may start after a signal: commands of the cleanup stack.
    case cleanup
    /// Not registered: the caller forwards signals itself (batch sends SIGINT to its installs so each unwinds).
    case callerHandles
}

public enum SpawnError: ToolError, Equatable, Sendable {
    case notFound(name: String, path: String)
    case cannotStart(executable: String, reason: String)

    public var failure: String {
        switch self {
        case let .notFound(name, _), let .cannotStart(name, _): return "cannot start '\(name)'"
        }
    }
    public var reason: String? {
        switch self {
        case let .notFound(_, path): return "not found in PATH's absolute directories (\(path))"
        case let .cannotStart(_, reason): return reason
        }
    }
    public var remedy: String? {
        switch self {
        case .notFound: return "install the package that provides it"
        case .cannotStart: return nil
        }
    }
}

/// A started child and the parent's ends of its pipes (-1 where not a pipe).
/// The caller owns and closes the descriptors.
struct Spawned: Sendable {
    public let child: ChildProcess
    public let standardInput: Int32
    public let standardOutput: Int32
    public let standardError: Int32
}

/// A running or finished child. A reaper thread blocks in waitid() for exactly
/// this pid, so `wait()` returns as soon as the child exits (Foundation's
/// `Process.waitUntilExit()` polls its run loop on a 50 ms tick, which cost
/// every command ~50 ms). The pid leaves `Interruption`'s set before it is
/// reaped, so a late TERM can never reach a recycled pid.
// Unchecked: `status` and `onExit` are only touched under `condition`.
final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let executable: String
    private let condition = NSCondition()
    private var status: Int32?
    private var onExit: (@Sendable (Int32) -> Void)?

    init(pid: pid_t, executable: String, registered: Bool, onExit: (@Sendable (Int32) -> Void)?) {
        self.pid = pid
        self.executable = executable
        self.onExit = onExit
        let reaper = Thread { [self] in self.reap(registered: registered) }
        reaper.stackSize = 64 * 1024
        reaper.start()
    }

    private func reap(registered: Bool) {
        var info = siginfo_t()
        // Wait without reaping: the pid stays ours (a zombie) until it is out of the set.
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
        if registered { Interruption.shared.unregister(child: pid) }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        // Exit status, or 128 + the signal that ended it (the shell's convention).
        let code: Int32 = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        condition.lock()
        status = code
        let handler = onExit
        onExit = nil
        condition.broadcast()
        condition.unlock()
        handler?(code)
    }

    /// Blocks until the child has exited; its exit status or 128 + signal.
    @discardableResult
    public func wait() -> Int32 {
        condition.lock(); defer { condition.unlock() }
        while status == nil { condition.wait() }
        return status!
    }

    /// The status if the child exits within `seconds`, nil if it still runs.
    public func wait(timeout seconds: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock(); defer { condition.unlock() }
        while status == nil {
            if !condition.wait(until: deadline) { break }
        }
        return status
    }

    public var isRunning: Bool { condition.withLock { status == nil } }
    /// nil while running.
    public var exitStatus: Int32? { condition.withLock { status } }

    /// Sends `sig` to the child's process group (it leads its own) and to the child.
    public func signal(_ sig: Int32) {
        guard isRunning else { return }
        kill(-pid, sig)
        kill(pid, sig)
    }
}

/// The one way this tool starts a process: posix_spawn with the child in its own
/// process group (a terminal ^C reaches only us; `Interruption` stops the child),
/// no signal blocked and INT/TERM/HUP/PIPE/QUIT at their defaults in the child
/// (Dispatch and test worker threads block TERM, and a mask is inherited across
/// exec), no descriptor of ours leaked beyond 0-2, and the executable resolved to
/// an absolute path on PATH, never the current directory.
public enum Spawner {
    /// Writing to a child that exited must give EPIPE, not kill us: a no-op handler
    /// (as `Interruption.install` sets), unless someone chose a disposition already.
    /// Not SIG_IGN, which children would inherit; a handled signal reverts on exec.
    private static let pipeWritesReturnEPIPE: Void = {
        var current = sigaction()
        sigaction(SIGPIPE, nil, &current)
        if current.__sigaction_handler.sa_handler == nil { // SIG_DFL
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in }
            sigemptyset(&action.sa_mask)
            sigaction(SIGPIPE, &action, nil)
        }
    }()

    /// The directories searched when the environment has no PATH.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The one environment policy for every child: the caller's environment with
    /// LC_ALL=C (tool output is parsed: it must not follow the user's locale) and the
    /// PATH of `toolSearchPath`. `spawn` applies it to what it is given.
    public static func toolEnvironment(_ base: [String: String]) -> [String: String] {
        var environment = base
        environment["LC_ALL"] = "C"
        environment["PATH"] = toolSearchPath(base)
        return environment
    }

    /// The one PATH policy: the caller's directories followed by the standard ones
    /// it lacks (sbin included). What every child runs with, where the preflight
    /// looks for host tools and where the boot test looks for QEMU, so a tool the
    /// preflight finds is the tool that runs.
    public static func toolSearchPath(_ environment: [String: String]) -> String {
        let given = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let standard = defaultPath.split(separator: ":").map(String.init)
        return (given + standard.filter { !given.contains($0) }).joined(separator: ":")
    }

    /// `name` as an absolute path: itself when absolute, else the first executable
    /// `DIR/name` for an absolute DIR on `path` (relative and empty PATH entries mean
    /// the current directory and are skipped). nil when there is none.
    public static func resolve(_ name: String, path: String) -> String? {
        // An absolute name is taken as given: a missing one fails at spawn, naming it.
        if name.hasPrefix("/") { return name }
        // A relative name with a slash would run from the current directory.
        if name.isEmpty || name.contains("/") { return nil }
        for dir in path.split(separator: ":", omittingEmptySubsequences: true) where dir.hasPrefix("/") {
            let candidate = (dir.hasSuffix("/") ? String(dir) : dir + "/") + name
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Starts `executable` (resolved on the environment's PATH). The returned pid is
    /// registered with `Interruption` (per `registration`) before anyone can signal.
    /// - Parameter onExit: called once, on the reaper thread, with the exit status.
    static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String],
        stdin: SpawnInput = .null, stdout: SpawnOutput = .null, stderr: SpawnOutput = .null,
        registration: SpawnRegistration = .stopOnSignal,
        onExit: (@Sendable (Int32) -> Void)? = nil
    ) throws -> Spawned {
        _ = pipeWritesReturnEPIPE
        let environment = toolEnvironment(environment)
        // The standard directories are on it too: a stripped PATH finds the same tools as the preflight.
        let searchPath = environment["PATH"] ?? defaultPath
        guard let path = resolve(executable, path: searchPath) else {
            throw SpawnError.notFound(name: executable, path: searchPath)
        }
        // Our ends get O_CLOEXEC so a child spawned by another thread meanwhile cannot hold them open.
        var opened: [Int32] = []
        func makePipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard LibC.pipe2(&fds, O_CLOEXEC) == 0 else {
                throw SpawnError.cannotStart(executable: path, reason: "pipe: " + String(cString: strerror(errno)))
            }
            opened += fds
            return (fds[0], fds[1])
        }
        func closeAll() { for fd in opened { close(fd) } }
        var parentIn: Int32 = -1, parentOut: Int32 = -1, parentErr: Int32 = -1
        var childFDs: [Int32] = [-1, -1, -1]
        do {
            switch stdin {
            case .null: break
            case .pipe: let p = try makePipe(); childFDs[0] = p.read; parentIn = p.write
            case .descriptor(let fd): childFDs[0] = fd
            }
            for (index, output) in [(1, stdout), (2, stderr)] {
                switch output {
                case .null: break
                case .pipe:
                    let p = try makePipe(); childFDs[index] = p.write
                    if index == 1 { parentOut = p.read } else { parentErr = p.read }
                case .descriptor(let fd): childFDs[index] = fd
                }
            }
        } catch { closeAll(); throw error }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for target in 0..<3 {
            if childFDs[target] >= 0 {
                // dup2 clears O_CLOEXEC on the copy (also when source == target).
                posix_spawn_file_actions_adddup2(&actions, childFDs[target], Int32(target))
            } else {
                posix_spawn_file_actions_addopen(&actions, Int32(target), "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            }
        }
        // Descriptors of ours opened without O_CLOEXEC (Foundation's) stay out of the child.
        if let closefrom = LibC.closefrom { _ = closefrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = CStringArray([path] + arguments)
        let envp = CStringArray(environment.keys.sorted().map { "\($0)=\(environment[$0]!)" })
        defer { argv.free(); envp.free() }

        var pid: pid_t = 0
        var spawnError: Int32 = 0
        let register = registration != .callerHandles
        // Spawn and registration happen under Interruption's lock: a signal either
        // finds the pid in the set or has already been recorded (and we refuse).
        let refused = Interruption.shared.whileHoldingLock { signal -> Bool in
            if signal != 0 && registration == .stopOnSignal { return true }
            spawnError = posix_spawn(&pid, path, &actions, &attributes, argv.pointers, envp.pointers)
            if spawnError == 0 && register { Interruption.shared.insertLocked(child: pid) }
            return false
        }
        // The child's ends belong to the child now.
        for index in 0..<3 where childFDs[index] >= 0 {
            let isOurs = (index == 0 && parentIn >= 0) || (index == 1 && parentOut >= 0) || (index == 2 && parentErr >= 0)
            if isOurs { close(childFDs[index]) }
        }
        if refused || spawnError != 0 {
            for fd in [parentIn, parentOut, parentErr] where fd >= 0 { close(fd) }
            if refused { throw HostError.interrupted(signal: Interruption.shared.signal) }
            throw SpawnError.cannotStart(executable: path, reason: String(cString: strerror(spawnError)))
        }
        // The single place a spawned pid is known: the run journal hears of it here.
        if register { Interruption.shared.childObserver?(pid) }
        let child = ChildProcess(pid: pid, executable: path, registered: register, onExit: onExit)
        return Spawned(child: child, standardInput: parentIn, standardOutput: parentOut, standardError: parentErr)
    }
}

/// GNU functions Swift's Glibc module does not declare (it is built without _GNU_SOURCE).
private enum LibC {
    typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// The running program's own symbols (libc's included); a function, not a stored
    /// raw pointer, so nothing non-Sendable is global.
    static func symbol(_ name: String) -> UnsafeMutableRawPointer? { dlsym(dlopen(nil, RTLD_NOW), name) }
    static let pipe2Pointer: Pipe2 = unsafeBitCast(symbol("pipe2")!, to: Pipe2.self)
    static func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32 { pipe2Pointer(fds, flags) }
    /// glibc 2.34+; older glibc: our own pipes are O_CLOEXEC anyway.
    static let closefrom: CloseFrom? = symbol("posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: CloseFrom.self) }
}

extension Spawner {
    /// Writes `input` to the child's stdin pipe (then closes it) while reading its
    /// stdout and stderr pipes to the end, on the calling thread with poll(): no
    /// helper threads, and a child that fills one pipe never blocks on the other.
    /// Closes every parent descriptor of `spawned`.
    static func communicate(_ spawned: Spawned, input: Data?) -> (standardOutput: Data, standardError: Data) {
        var out = Data(), err = Data()
        communicate(
            input: spawned.standardInput, bytes: input,
            outputs: [
                (spawned.standardOutput, { out.append($0.bindMemory(to: UInt8.self)) }),
                (spawned.standardError, { err.append($0.bindMemory(to: UInt8.self)) }),
            ])
        return (out, err)
    }

    /// The one way a child's pipes are read: writes `bytes` to `input` (then closes
    /// it) while handing every block read from each output descriptor to its sink,
    /// until each is at its end (then closed). Descriptors of -1 are skipped.
    static func communicate(input: Int32, bytes data: Data?, outputs: [(fd: Int32, sink: (UnsafeRawBufferPointer) -> Void)]) {
        var inFD = input
        var open = outputs.filter { $0.fd >= 0 }
        let bytes = data ?? Data()
        var written = 0
        if inFD >= 0 {
            if bytes.isEmpty { close(inFD); inFD = -1 } else { _ = fcntl(inFD, F_SETFL, fcntl(inFD, F_GETFL) | O_NONBLOCK) }
        }
        let size = 65536
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while inFD >= 0 || !open.isEmpty {
            var fds: [pollfd] = []
            if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
            for output in open { fds.append(pollfd(fd: output.fd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 { if errno == EINTR { continue }; break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == inFD {
                    let n = bytes.withUnsafeBytes { write(inFD, $0.baseAddress! + written, min(size, bytes.count - written)) }
                    if n > 0 { written += n }
                    // A child that exits early closes its end: EPIPE (SIGPIPE is handled, not fatal).
                    if (n < 0 && errno != EAGAIN && errno != EINTR) || written == bytes.count { close(inFD); inFD = -1 }
                } else if let index = open.firstIndex(where: { $0.fd == entry.fd }) {
                    let n = read(entry.fd, buffer, size)
                    if n > 0 {
                        open[index].sink(UnsafeRawBufferPointer(start: buffer, count: n))
                    } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(entry.fd)
                        open.remove(at: index)
                    }
                }
            }
        }
    }
}

/// A NULL-terminated `char *[]` for posix_spawn.
private struct CStringArray {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    let count: Int
    init(_ strings: [String]) {
        count = strings.count
        pointers = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { pointers[index] = strdup(string) }
        pointers[strings.count] = nil
    }
    func free() {
        for index in 0..<count { Glibc.free(pointers[index]) }
        pointers.deallocate()
    }
}
