import Foundation

/// A problem with one option's value (`--jobs needs a positive number`): a usage error
/// (exit 64) once the command adds its usage line.
struct OptionProblem: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// One option, declared once and in full: its name, value name, section and help (`spec`:
/// the usage line and `--help` are made from it), how the words given for it are parsed,
/// checked and stored into the command's options value, and how that value is written back
/// as words (`batch` starts each install with the options it shares with install, and
/// `install --register` prints the registration it runs).
// Unchecked: key paths and pure closures, fixed when the option is declared.
struct Option<Values>: @unchecked Sendable {
    var spec: OptionSpec
    /// Stores the values given for it, in order (none for a flag), into the options value;
    /// throws `OptionProblem` for a value it cannot take.
    let store: (inout Values, [String]) throws -> Void
    /// A check against the other options, once every option is stored (`--stop-after`'s
    /// step must exist with or without `--ena`): the problem, or nil.
    var check: (Values) -> String? = { _ in nil }
    /// The words that give its setting in `values` (the first) again; none when it is not
    /// set, or where it is a setting with a default (the second: the command's defaults) and
    /// has that value.
    let words: (Values, Values) -> [String]

    var name: String { spec.name }

    /// `--ena`: true when given.
    static func flag(
        _ name: String, _ key: WritableKeyPath<Values, Bool>, needs: String? = nil,
        section: String = OptionSpec.defaultSection, help: String
    ) -> Option {
        Option(
            spec: OptionSpec(name, needs: needs, section: section, help: help),
            store: { values, _ in values[keyPath: key] = true },
            words: { values, _ in values[keyPath: key] ? [name] : [] })
    }

    /// `--log FILE`: the text as given, once `problem` (nil: none) has accepted it.
    static func text(
        _ name: String, _ valueName: String, _ key: WritableKeyPath<Values, String?>, needs: String? = nil,
        section: String = OptionSpec.defaultSection, help: String,
        problem: @escaping (String) -> String? = { _ in nil }
    ) -> Option {
        value(name, valueName, key, needs: needs, section: section, help: help, render: { $0 }) { text in
            if let message = problem(text) { throw OptionProblem(message) }
            return text
        }
    }

    /// A typed value: `parse` turns the text into it (throwing `OptionProblem` when it
    /// cannot), `render` writes it back as text that parses to the same value.
    static func value<T>(
        _ name: String, _ valueName: String, _ key: WritableKeyPath<Values, T?>, needs: String? = nil,
        section: String = OptionSpec.defaultSection, help: String,
        render: @escaping (T) -> String, parse: @escaping (String) throws -> T
    ) -> Option {
        Option(
            spec: OptionSpec(name, valueName, needs: needs, section: section, help: help),
            store: { values, given in values[keyPath: key] = try given.last.map(parse) },
            words: { values, _ in values[keyPath: key].map { [name, render($0)] } ?? [] })
    }

    /// A setting with a default (`--speed-limit BYTES` into `lowSpeedLimit`, 1000): `parse` and
    /// `render` as for `value`; passed on only where it differs from the command's default.
    static func setting<T: Equatable>(
        _ name: String, _ valueName: String, _ key: WritableKeyPath<Values, T>, needs: String? = nil,
        section: String = OptionSpec.defaultSection, help: String,
        render: @escaping (T) -> String, parse: @escaping (String) throws -> T
    ) -> Option {
        Option(
            spec: OptionSpec(name, valueName, needs: needs, section: section, help: help),
            store: { values, given in if let text = given.last { values[keyPath: key] = try parse(text) } },
            words: { values, defaults in values[keyPath: key] == defaults[keyPath: key] ? [] : [name, render(values[keyPath: key])] })
    }

    /// `--mirror URL`, repeatable: every value, in order, each accepted by `problem` first.
    static func list(
        _ name: String, _ valueName: String, _ key: WritableKeyPath<Values, [String]>, needs: String? = nil,
        section: String = OptionSpec.defaultSection, help: String,
        problem: @escaping (String) -> String? = { _ in nil }
    ) -> Option {
        Option(
            spec: OptionSpec(name, valueName, repeatable: true, needs: needs, section: section, help: help),
            store: { values, given in
                for text in given { if let message = problem(text) { throw OptionProblem(message) } }
                values[keyPath: key] = given
            },
            words: { values, _ in values[keyPath: key].flatMap { [name, $0] } })
    }

    /// The same option with `check` run against the other options once all are stored.
    func checked(_ check: @escaping (Values) -> String?) -> Option {
        var copy = self
        copy.check = check
        return copy
    }

    /// The same option with its declaration changed for another command (`listed(under:)`, `passedOn`).
    func declared(_ change: (OptionSpec) -> OptionSpec) -> Option {
        var copy = self
        copy.spec = change(spec)
        return copy
    }

    /// The same option for a command whose options value holds this one's (batch's holds
    /// install's, install's holds the registration it passes on).
    func lifted<Outer>(_ key: WritableKeyPath<Outer, Values>) -> Option<Outer> {
        let store = self.store, check = self.check, words = self.words
        return Option<Outer>(
            spec: spec,
            store: { outer, given in try store(&outer[keyPath: key], given) },
            check: { outer in check(outer[keyPath: key]) },
            words: { outer, defaults in words(outer[keyPath: key], defaults[keyPath: key]) })
    }
}

/// What a command was given: its options value and the words that are not options.
struct Parsed<Values> {
    var values: Values
    var positionals: [String]
}

/// A command's options, each declared once: the parser, the usage line and `--help` all
/// come from this list.
struct Options<Values>: @unchecked Sendable {
    var all: [Option<Values>]
    /// The command's options value before any option is given.
    var defaults: Values
    init(_ all: [Option<Values>], defaults: Values) { self.all = all; self.defaults = defaults }

    var specs: [OptionSpec] { all.map(\.spec) }

    /// The declared options of these names, in this order.
    func named(_ names: [String]) -> [Option<Values>] { names.compactMap { name in all.first { $0.name == name } } }

    /// Every declared option but these, `first` in that order, then the others as declared.
    func all(except left: Set<String>, first: [String]) -> [Option<Values>] {
        let rest = all.filter { !left.contains($0.name) }
        return named(first).filter { !left.contains($0.name) } + rest.filter { !first.contains($0.name) }
    }

    /// Parses `arguments` into the defaults (see `parseArguments` for the words): stores every
    /// option given, in declaration order, then the words that are not options (`positionals`:
    /// the command's own, throwing `UsageError` for too few or too many), then runs each
    /// option's `check` and checks its `needs`. Every problem is a `UsageError` with `usage`.
    func parse(
        _ arguments: [String], usage: String,
        positionals: (inout Values, [String]) throws -> Void = { _, _ in }
    ) throws -> Parsed<Values> {
        let specs = self.specs
        let words = try parseArguments(
            arguments, flags: Set(specs.filter(\.isFlag).map(\.name)),
            options: Set(specs.filter { !$0.isFlag }.map(\.name)),
            repeatable: Set(specs.filter(\.repeatable).map(\.name)), usage: usage)
        let given = Set(words.flags).union(words.values.keys)
        var values = defaults
        do {
            for option in all where given.contains(option.name) {
                try option.store(&values, words.flags.contains(option.name) ? [] : words.values[option.name] ?? [])
            }
        } catch let problem as OptionProblem {
            throw UsageError(problem.message, usage: usage)
        }
        try positionals(&values, words.positionals)
        for option in all where given.contains(option.name) {
            if let message = option.check(values) { throw UsageError(message, usage: usage) }
        }
        for option in all where given.contains(option.name) {
            if let needed = option.spec.needs, !given.contains(needed) { throw UsageError("\(option.name) needs \(needed)", usage: usage) }
        }
        return Parsed(values: values, positionals: words.positionals)
    }

    /// The words that give `values`' settings again, in declaration order.
    func words(_ values: Values) -> [String] { all.flatMap { $0.words(values, defaults) } }
}

/// Checks shared by several options' declarations.
enum OptionCheck {
    /// `--gpg-key FILE`, `--versions FILE`: the file must be readable now.
    static func readableFile(_ name: String) -> (String) -> String? {
        { path in FileManager.default.isReadableFile(atPath: path) ? nil : "\(name) '\(path)' is not a readable file" }
    }

    /// A whole number in `range`, else `message`.
    static func integer(_ range: ClosedRange<Int>, _ message: String) -> (String) throws -> Int {
        { text in
            guard let number = Int(text), range.contains(number) else { throw OptionProblem(message) }
            return number
        }
    }

    /// A number in `range`, else `message`.
    static func number(_ range: ClosedRange<Double>, _ message: String) -> (String) throws -> Double {
        { text in
            guard let number = Double(text), number.isFinite, range.contains(number) else { throw OptionProblem(message) }
            return number
        }
    }

    /// A number as it was written, for passing on: `30`, not `30.0`.
    static func render(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}

/// For a command that takes no words but options: any word is a usage error.
func noPositionals<Values>(_ usage: String) -> (inout Values, [String]) throws -> Void {
    { _, positionals in
        if let first = positionals.first { throw UsageError("unexpected argument '\(first)'", usage: usage) }
    }
}

/// For a command that takes one word (`IMAGE`) into `key`: `missing` when there is none, and a
/// second word is a usage error.
func onePositional<Values>(_ key: WritableKeyPath<Values, String>, missing: String, usage: String) -> (inout Values, [String]) throws -> Void {
    { values, positionals in
        guard positionals.count == 1 else {
            throw UsageError(positionals.isEmpty ? missing : "unexpected argument '\(positionals[1])'", usage: usage)
        }
        values[keyPath: key] = positionals[0]
    }
}
