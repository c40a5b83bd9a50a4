import Testing

@Test func BootstrapTestsPlaceholder() { #expect(Bool(true)) }
