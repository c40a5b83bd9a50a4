import AMI

/// Reads a `register` results file into table entries (filled in by the register issue).
func tableEntries(fromResults path: String) throws -> [AMIEntry] {
    throw UsageError("'--from' needs the register command, which is not built yet", usage: TableCommand.usage)
}
