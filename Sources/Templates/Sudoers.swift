// sudo for ec2-user, through a drop-in file.

public enum Sudoers {
    public static let path = "/etc/sudoers"
    /// sudo refuses a sudoers file writable by anyone but root.
    public static let mode: UInt16 = 0o440
    public static let directory = "/etc/sudoers.d"
    public static let directoryMode: UInt16 = 0o750
    public static let ec2UserPath = "/etc/sudoers.d/ec2-user"
    public static let ec2UserMode: UInt16 = 0o440
    /// /etc/sudoers.d/ec2-user.
    public static let ec2UserRule = "ec2-user ALL=(ALL) NOPASSWD:ALL\n"

    static let includeDir = "#includedir /etc/sudoers.d"

    /// Appends `#includedir /etc/sudoers.d` (the `#` is sudo syntax, not a
    /// comment) unless sudoers already includes that directory (later CentOS 6
    /// sudo packages ship the line, early ones do not). Idempotent.
    public static func addIncludeDir(_ original: String) -> String {
        let present = Lines(original).items.contains { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return words.count == 2 && (words[0] == "#includedir" || words[0] == "@includedir")
                && (words[1] == "/etc/sudoers.d" || words[1] == "/etc/sudoers.d/")
        }
        if present { return original.isEmpty || original.hasSuffix("\n") ? original : original + "\n" }
        var lines = Lines(original)
        lines.append(includeDir)
        return lines.text
    }
}
