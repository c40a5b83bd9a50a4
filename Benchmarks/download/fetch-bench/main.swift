// fetch-bench: drives Fetch.Fetcher for Benchmarks/download/run.sh.
//
//   fetch-bench --base URL --list FILE --cache DIR [--connections N]
//
// FILE has one "relative/path size sha256hex" line per file. Fetches them all
// into the cache at DIR and prints one JSON object: wall seconds and the
// fetcher's counters (downloaded vs cached bytes, connections, retries).
// Exit 0, 1 on a fetch error, 130 on SIGINT/SIGTERM (partial files stay in
// the cache and are resumed by the next run). The integration tests drive it too.
import Fetch
import Foundation
import Host

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("fetch-bench: \(message)\n".utf8))
    exit(1)
}

var base: String?, list: String?, cacheDir: String?, connections = 8
var args = Array(CommandLine.arguments.dropFirst())
while !args.isEmpty {
    let flag = args.removeFirst()
    guard let value = args.first else { fail("\(flag) needs a value") }
    args.removeFirst()
    switch flag {
    case "--base": base = value.hasSuffix("/") ? value : value + "/"
    case "--list": list = value
    case "--cache": cacheDir = value
    case "--connections": connections = Int(value) ?? connections
    default: fail("unknown option \(flag)")
    }
}
guard let base, let list, let cacheDir, let baseURL = URL(string: base) else {
    fail("usage: fetch-bench --base URL --list FILE --cache DIR [--connections N]")
}

Interruption.shared.install()
let lines = (try? String(contentsOfFile: list, encoding: .utf8))?.split(separator: "\n") ?? []
let files: [RemoteFile] = lines.compactMap { line in
    let f = line.split(separator: " ")
    guard f.count == 3, let size = Int64(f[1]), let sum = try? Checksum(.sha256, hex: String(f[2])),
        let url = URL(string: String(f[0]), relativeTo: baseURL)?.absoluteURL
    else { return nil }
    return RemoteFile(url: url, size: size, checksum: sum)
}
guard !files.isEmpty else { fail("no files in \(list)") }

let isTerminal = isatty(2) == 1
do {
    let cache = try DownloadCache(root: URL(fileURLWithPath: cacheDir))
    let fetcher = Fetcher(
        cache: cache, maxConnections: connections,
        progress: isTerminal
            ? { p in
                FileHandle.standardError.write(Data(("\r\u{1B}[Kdownload: " + p.line + (p.filesDone == p.filesTotal ? "\n" : "")).utf8))
            } : nil)
    let start = Date()
    let paths = try fetcher.fetch(files)
    let wall = Date().timeIntervalSince(start)
    let s = fetcher.stats
    print(
        String(
            format:
                #"{"files": %d, "wall_seconds": %.3f, "downloaded_bytes": %lld, "cached_bytes": %lld, "downloaded_files": %d, "cached_files": %d, "connections": %d, "retries": %d}"#,
            paths.count, wall, s.downloadedBytes, s.cachedBytes, s.downloadedFiles, s.cachedFiles, s.connections, s.retries))
} catch HostError.interrupted(let signal) {
    FileHandle.standardError.write(Data("fetch-bench: interrupted by signal \(signal)\n".utf8))
    exit(130)
} catch {
    fail("\(error)")
}
