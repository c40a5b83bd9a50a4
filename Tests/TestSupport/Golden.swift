import Foundation
import Testing

// Golden files live in a `Golden` directory next to the test file that uses
// them (Tests/<Target>/Golden); `filePath` defaults to the caller's file.
// UPDATE_GOLDEN=1 rewrites them from the actual output; then review the diff.

/// The golden file `name` of the calling test target.
public func goldenURL(_ name: String, filePath: String = #filePath) -> URL {
    URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("Golden").appendingPathComponent(name)
}

/// The text of the golden file `name` of the calling test target.
public func golden(_ name: String, filePath: String = #filePath) throws -> String {
    try String(contentsOf: goldenURL(name, filePath: filePath), encoding: .utf8)
}

/// Expects `actual` to equal the golden file `name`; with UPDATE_GOLDEN=1 it is rewritten first.
public func expectGolden(
    _ actual: String, _ name: String, filePath: String = #filePath,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let url = goldenURL(name, filePath: filePath)
    if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try actual.write(to: url, atomically: true, encoding: .utf8)
    }
    let expected = try String(contentsOf: url, encoding: .utf8)
    #expect(actual == expected, "golden \(name) differs; rerun with UPDATE_GOLDEN=1 and review the diff", sourceLocation: sourceLocation)
}
