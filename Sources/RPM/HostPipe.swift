import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// Runs a host tool (xz, gzip, gpgv, sha256sum) with its stdin read straight
/// from a file at an offset and its stdout streamed to a consumer, so a 30 MB
/// payload is never held in memory: the runner's `stream` (`ProcessRunner`),
/// with this module's errors. The command is still a value (`Command`) and is
/// logged the same way.
public enum HostPipe {
    public struct Outcome: Sendable {
        public var status: Int32
        public var standardError: String
    }

    /// Runs `command` with stdin = `inputFile` from byte `offset` (or `inputData`, or /dev/null), calling `consume`
    /// with the read end of its stdout. If `consume` throws, the child is stopped and the error rethrown.
    /// - Parameter log: where the command line and its status go (nil: nowhere).
    public static func run(
        _ command: Command, inputFile: String?, offset: Int = 0, inputData: Data? = nil, log: Log? = nil,
        consume: (Int32) throws -> Void
    ) throws -> Outcome {
        try Interruption.shared.check()
        var command = command
        if inputFile == nil, let inputData { command.standardInput = inputData }
        var input = ChildInput.null
        var inputFD: Int32 = -1
        if let inputFile {
            inputFD = open(inputFile, O_RDONLY | O_CLOEXEC)
            guard inputFD >= 0 else {
                throw RPMError.tool(name: command.executable, reason: "cannot open '\(inputFile)' for its input")
            }
            // The child inherits this open file description, so it starts reading at `offset`.
            guard lseek(inputFD, off_t(offset), SEEK_SET) == off_t(offset) else {
                close(inputFD)
                throw RPMError.tool(name: command.executable, reason: "cannot seek '\(inputFile)' to \(offset)")
            }
            input = .file(descriptor: inputFD, path: inputFile, offset: offset)
        }
        defer { if inputFD >= 0 { close(inputFD) } }
        let result: CommandResult
        do {
            result = try ProcessRunner(log: log).stream(command, input: input, consume: consume)
        } catch SpawnError.notFound {
            let package = [
                "xz": "xz-utils", "gzip": "gzip", "bzip2": "bzip2", "zstd": "zstd", "cat": "coreutils", "sha256sum": "coreutils", "sha1sum": "coreutils",
            ][command.executable]
            throw RPMError.tool(
                name: command.executable, reason: "not found in PATH (install \(package.map { "package '\($0)'" } ?? "the package that provides it"))")
        } catch let error as SpawnError {
            throw RPMError.tool(name: command.executable, reason: "\(error)")
        }
        try Interruption.shared.check()
        return Outcome(status: result.status, standardError: result.stderrText)
    }

    /// Runs `command` with file input and collects all of stdout (small outputs: digests, gpgv status).
    /// `chunk` sees every block as it arrives (e.g. to hash while the child still works).
    public static func collect(
        _ command: Command, inputFile: String?, offset: Int = 0, inputData: Data? = nil, log: Log? = nil,
        chunk: ((UnsafeRawBufferPointer) -> Void)? = nil
    ) throws -> (Outcome, Data) {
        var data = Data()
        let outcome = try run(command, inputFile: inputFile, offset: offset, inputData: inputData, log: log) { fd in
            let size = 1 << 20
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let r = Glibc.read(fd, buffer, size)
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { break }
                let block = UnsafeRawBufferPointer(start: buffer, count: r)
                chunk?(block)
                data.append(contentsOf: block)
            }
        }
        return (outcome, data)
    }

    /// Hex digest of a file from `offset` to its end with a host tool (`sha256sum`, `sha1sum`, `md5sum`).
    public static func digest(_ tool: String, file: String, offset: Int, log: Log? = nil) throws -> String {
        let (outcome, data) = try collect(Command(tool, ["-"]), inputFile: file, offset: offset, log: log)
        guard outcome.status == 0 else { throw RPMError.tool(name: tool, reason: "exit \(outcome.status): \(outcome.standardError)") }
        let text = String(decoding: data, as: UTF8.self)
        guard let word = text.split(separator: " ").first, word.count >= 32 else {
            throw RPMError.tool(name: tool, reason: "unexpected output '\(text)'")
        }
        return String(word).lowercased()
    }
}
