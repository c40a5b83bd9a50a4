import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The least of QMP (QEMU's JSON control protocol) the harness needs: connect
/// to the `-qmp unix:...` socket, leave capabilities negotiation, run one
/// command. Blocking with short timeouts; used only after boot to ask for an
/// ACPI power-off.
enum QMP {
    /// Runs `command` (e.g. `system_powerdown`); returns QEMU's reply lines, or throws.
    static func execute(socketPath: String, command: String, timeout: TimeInterval = 3) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw VMError.qmp(socket: socketPath, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw VMError.qmp(socket: socketPath, reason: "socket path too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw VMError.qmp(socket: socketPath, reason: String(cString: strerror(errno))) }
        var reader = LineReader(fd: fd)
        _ = try reader.line(socketPath) // greeting {"QMP": ...}
        try send(fd, "{\"execute\":\"qmp_capabilities\"}\n", socketPath)
        _ = try reader.reply(socketPath)
        try send(fd, "{\"execute\":\"\(command)\"}\n", socketPath)
        return try reader.reply(socketPath)
    }

    private static func send(_ fd: Int32, _ text: String, _ path: String) throws {
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw VMError.qmp(socket: path, reason: "short write") }
    }

    private struct LineReader {
        let fd: Int32
        var buffer: [UInt8] = []
        init(fd: Int32) { self.fd = fd }

        mutating func line(_ path: String) throws -> String {
            while true {
                if let nl = buffer.firstIndex(of: 10) {
                    let line = String(decoding: buffer[..<nl], as: UTF8.self)
                    buffer.removeSubrange(...nl)
                    return line
                }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw VMError.qmp(socket: path, reason: n == 0 ? "closed by qemu" : String(cString: strerror(errno))) }
                buffer.append(contentsOf: chunk[..<n])
            }
        }

        /// The next line that is a reply (`return` or `error`), skipping asynchronous events.
        mutating func reply(_ path: String) throws -> String {
            while true {
                let text = try line(path)
                if text.contains("\"return\"") { return text }
                if text.contains("\"error\"") { throw VMError.qmp(socket: path, reason: text) }
            }
        }
    }
}
