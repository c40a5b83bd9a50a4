import Foundation
import Testing
@testable import CLI

/// What the CLI prints for an error that escaped: a message and the file, never a Foundation dump.
@Suite struct ErrorMessageTests {
    @Test func aFoundationErrorIsItsMessageAndFile() {
        let error = CocoaError(.fileWriteVolumeReadOnly, userInfo: [NSFilePathErrorKey: "/var/cache/x"])
        let text = CLI.describe(error)
        #expect(!text.contains("NSCocoaErrorDomain") && !text.contains("UserInfo"), "\(text)")
        #expect(text.contains("/var/cache/x"), "\(text)")
        struct Ours: Error, CustomStringConvertible { var description: String { "ours, as written" } }
        #expect(CLI.describe(Ours()) == "ours, as written")
    }
}
