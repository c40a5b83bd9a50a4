/// One option of a command, declared once: the parser's flag and option sets,
/// the usage line and the options part of `--help` are all made from it.
public struct OptionSpec: Sendable, Equatable {
    /// `--mirror`
    public var name: String
    /// What the value is called in the usage line and in `--help` (`URL`); nil for a flag.
    public var valueName: String?
    /// May be given more than once; every value is kept (`--region a --region b`).
    public var repeatable: Bool
    /// Another option this one only makes sense with: the usage line nests it inside
    /// that option's brackets (`[--ena [--ena-source S]]`). Checking it stays with the command.
    public var needs: String?
    /// Its description in `--help`; may run over several lines.
    public var help: String
    /// The heading it is listed under in `--help`.
    public var section: String

    public static let defaultSection = "options:"

    public init(
        _ name: String, _ valueName: String? = nil, repeatable: Bool = false, needs: String? = nil,
        section: String = OptionSpec.defaultSection, help: String
    ) {
        self.name = name; self.valueName = valueName; self.repeatable = repeatable
        self.needs = needs; self.help = help; self.section = section
    }

    public var isFlag: Bool { valueName == nil }

    /// `--mirror URL` or `--dry-run`: how it is written in the usage line and `--help`.
    public var label: String { valueName.map { "\(name) \($0)" } ?? name }

    /// The same option declared for another command that passes it on (register's
    /// `--region` in install): it needs `needs` there, and its help says so first.
    public func passedOn(needs: String?, helpPrefix: String) -> OptionSpec {
        var copy = self
        copy.needs = needs
        copy.help = helpPrefix + help
        return copy
    }

    /// The same option listed under another heading (install's `--mirror` in batch).
    public func listed(under section: String) -> OptionSpec {
        var copy = self
        copy.section = section
        return copy
    }
}

/// One line of the usage: the words before the options (`VERSION TARGET`, `info FILE`)
/// and which options follow them (nil: every option not already named in the words).
public struct UsageForm: Sendable, Equatable {
    public var words: String
    public var options: [String]?
    public init(_ words: String, options: [String]? = nil) { self.words = words; self.options = options }
}

/// A command declared once: its name, what it takes and every option it accepts.
public struct CommandSpec: Sendable {
    public var name: String
    /// One line for the command list.
    public var summary: String
    public var forms: [UsageForm]
    public var options: [OptionSpec]
    /// `--help` before the options: what the positionals are, what the command does.
    public var about: String
    /// `--help` after the options: notes, examples, the exit status.
    public var notes: String

    public init(name: String, summary: String, forms: [UsageForm], options: [OptionSpec], about: String = "", notes: String = "") {
        self.name = name; self.summary = summary; self.forms = forms; self.options = options
        self.about = about; self.notes = notes
    }

    public var flags: Set<String> { Set(options.filter(\.isFlag).map(\.name)) }
    public var valueOptions: Set<String> { Set(options.filter { !$0.isFlag }.map(\.name)) }
    public var repeatable: Set<String> { Set(options.filter { !$0.isFlag && $0.repeatable }.map(\.name)) }

    public func option(_ name: String) -> OptionSpec? { options.first { $0.name == name } }

    /// The declared options of these names, in this order.
    public func options(named names: [String]) -> [OptionSpec] { names.compactMap(option) }

    /// Parses this command's arguments (see `parseArguments`).
    public func parse(_ arguments: [String]) throws -> ParsedArguments {
        try parseArguments(arguments, flags: flags, options: valueOptions, repeatable: repeatable, usage: usage)
    }

    /// `usage: centos6-ami NAME WORDS [--opt VALUE]...`, one line per form, wrapped.
    public var usage: String {
        forms.enumerated().map { index, form in
            let lead = (index == 0 ? "usage: " : "       ") + "centos6-ami \(name) "
            return UsageText.wrap([form.words] + usageGroups(form), indent: lead)
        }.joined(separator: "\n")
    }

    /// The bracketed option groups of one form, each option's dependents nested inside it,
    /// as words the usage line may wrap between.
    func usageGroups(_ form: UsageForm) -> [String] {
        let mentioned = Set(UsageText.optionNames(in: form.words))
        let listed = (form.options.map { options(named: $0) } ?? options).filter { !mentioned.contains($0.name) }
        let listedNames = Set(listed.map(\.name))
        func group(_ option: OptionSpec) -> [String] {
            let inner = listed.filter { $0.needs == option.name }.flatMap(group)
            // The opening word keeps its first dependent: no line ends in a bare `[--ena`.
            var words = ["[" + ([option.label] + inner.prefix(1)).joined(separator: " ")] + inner.dropFirst()
            words[words.count - 1] += "]" + (option.repeatable ? "..." : "")
            return words
        }
        return listed.filter { $0.needs.map { !listedNames.contains($0) } ?? true }.flatMap(group)
    }

    /// The text `--help` prints after the usage line and the summary.
    public var help: String {
        var headings: [String] = []
        for option in options where !headings.contains(option.section) { headings.append(option.section) }
        // One description column for every section of the command.
        let labelWidth = UsageText.labelWidth(options)
        let sections = headings.map { heading in
            ([heading] + UsageText.optionLines(options.filter { $0.section == heading }, labelWidth: labelWidth)).joined(separator: "\n")
        }
        return ([about] + sections + [notes]).filter { !$0.isEmpty }.joined(separator: "\n\n")
    }
}

/// Layout of usage lines and option lists.
enum UsageText {
    static let width = 100
    /// Labels up to this long share their line with the description; longer ones stand alone.
    static let maximumLabelColumn = 20

    /// Words joined with spaces, wrapped before `width`, continuation lines indented under the first word.
    static func wrap(_ words: [String], indent: String) -> String {
        var lines: [String] = []
        var line = indent
        let pad = String(repeating: " ", count: indent.count)
        for word in words where !word.isEmpty {
            if line != indent && line != pad && line.count + 1 + word.count > width {
                lines.append(line)
                line = pad
            }
            line += (line == indent || line == pad ? "" : " ") + word
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }

    /// The widest label that still shares its line with the description.
    static func labelWidth(_ options: [OptionSpec]) -> Int {
        options.map(\.label.count).filter { $0 <= maximumLabelColumn }.max() ?? maximumLabelColumn
    }

    /// `  --label        description`, descriptions aligned in one column and
    /// wrapped at `width`; a label wider than `labelWidth` stands on its own line.
    static func optionLines(_ options: [OptionSpec], labelWidth: Int) -> [String] {
        let column = String(repeating: " ", count: 2 + labelWidth + 2)
        var lines: [String] = []
        for option in options {
            let text = option.help.split(separator: "\n", omittingEmptySubsequences: false)
                .flatMap { wrap($0.split(separator: " ").map(String.init), indent: column).split(separator: "\n").map(String.init) }
            if option.label.count > labelWidth {
                lines.append("  " + option.label)
                lines += text
            } else {
                let first = text.first.map { String($0.dropFirst(column.count)) } ?? ""
                lines.append("  " + option.label.padding(toLength: labelWidth + 2, withPad: " ", startingAt: 0) + first)
                lines += text.dropFirst()
            }
        }
        return lines
    }

    /// Every `--name` in a text (`--opt=value` and `[--opt` count; a lone `--` does not).
    static func optionNames(in text: String) -> [String] {
        var names: [String] = []
        var current = ""
        var inName = false
        var previous: Character = " "
        for character in text + " " {
            if inName {
                if character.isLetter || character.isNumber || character == "-" { current.append(character); continue }
                if current.count > 2 { names.append(current) }
                inName = false
            } else if character == "-", !(previous.isLetter || previous.isNumber || previous == "-") {
                current = "-"
                inName = true
            }
            previous = character
        }
        return names.filter { $0.hasPrefix("--") && $0.count > 2 && $0.dropFirst(2).first?.isLetter == true }
    }
}

/// Options several commands declare alike.
enum CommonOptions {
    static let versions = OptionSpec("--versions", "FILE", help: "read this versions.json instead of the embedded one")
}
