// spawn-bench: runs one command N times through Host.ProcessRunner (with a log,
// as an install does) for Benchmarks/spawn/run.sh and prints the wall seconds.
//
//   spawn-bench COUNT LOG EXECUTABLE [ARG...]
//
// Exit 1 when any run fails (a benchmark of failing commands measures nothing).
import Foundation
import Host

let args = Array(CommandLine.arguments.dropFirst())
guard args.count >= 3, let count = Int(args[0]), count > 0 else {
    FileHandle.standardError.write(Data("usage: spawn-bench COUNT LOG EXECUTABLE [ARG...]\n".utf8))
    exit(64)
}
let log = try Log(path: args[1], progress: { _ in })
let runner = ProcessRunner(log: log)
let command = Command(args[2], Array(args.dropFirst(3)))
let start = Date()
for _ in 0..<count {
    let result = runner.run(command)
    if result.status != 0 {
        FileHandle.standardError.write(Data("spawn-bench: \(command.shellLine): exit \(result.status): \(result.stderrText)\n".utf8))
        exit(1)
    }
}
print(String(format: "%.6f", Date().timeIntervalSince(start)))
