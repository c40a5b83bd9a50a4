import Testing

@Test func InstallTestsPlaceholder() { #expect(Bool(true)) }
