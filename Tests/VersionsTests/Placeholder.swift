import Testing

@Test func VersionsTestsPlaceholder() { #expect(Bool(true)) }
