import AMI

/// Reads a `register` results file into table entries: every AMI it records, in file order
/// (the table sorts releases and groups regions itself).
func tableEntries(fromResults path: String) throws -> [AMIEntry] {
    try ResultsFile.load(path: path).amis.map(\.tableEntry)
}
