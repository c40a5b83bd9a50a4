import Foundation
import Host

/// A usage error: printed as `error: ...` plus the usage line, exit 64.
public struct UsageError: ToolError {
    public var message: String
    public var usage: String
    public init(_ message: String, usage: String) { self.message = message; self.usage = usage }
    public var failure: String { message }
}

/// The result of parsing one command's arguments.
public struct ParsedArguments: Equatable {
    public var positionals: [String] = []
    /// Every value given for an option, in order (`--mirror a --mirror b`).
    public var values: [String: [String]] = [:]
    public var flags: Set<String> = []
    public var wantsHelp = false

    public func value(_ name: String) -> String? { values[name]?.last }
    public func has(_ flag: String) -> Bool { flags.contains(flag) }
}

/// Hand-written parser: `--flag`, `--option VALUE`, `--option=VALUE`, `--`
/// ends options; `-h`/`--help` anywhere asks for help. Unknown options are
/// usage errors naming the option, and so is an option with a value given twice
/// unless it is in `repeatable` (a silent last-wins would hide a typo in a long
/// line); a flag may repeat, it means the same.
public func parseArguments(
    _ arguments: [String], flags: Set<String> = [], options: Set<String> = [], repeatable: Set<String> = [],
    usage: String
) throws -> ParsedArguments {
    var parsed = ParsedArguments()
    var index = 0
    var onlyPositionals = false
    while index < arguments.count {
        let word = arguments[index]
        index += 1
        if onlyPositionals || !word.hasPrefix("-") || word == "-" {
            parsed.positionals.append(word)
            continue
        }
        if word == "--" { onlyPositionals = true; continue }
        if word == "-h" || word == "--help" { parsed.wantsHelp = true; continue }
        var name = word
        var inlineValue: String?
        if let eq = word.firstIndex(of: "="), word.hasPrefix("--") {
            name = String(word[..<eq])
            inlineValue = String(word[word.index(after: eq)...])
        }
        if flags.contains(name) {
            guard inlineValue == nil else { throw UsageError("option '\(name)' takes no value", usage: usage) }
            parsed.flags.insert(name)
        } else if options.contains(name) {
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else { throw UsageError("option '\(name)' needs a value", usage: usage) }
                value = arguments[index]
                index += 1
            }
            if let earlier = parsed.values[name]?.first, !repeatable.contains(name) {
                throw UsageError("option '\(name)' is given twice ('\(earlier)' and '\(value)'); give it once", usage: usage)
            }
            parsed.values[name, default: []].append(value)
        } else {
            throw UsageError("unknown option '\(name)'", usage: usage)
        }
    }
    return parsed
}
