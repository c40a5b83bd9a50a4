import Testing

@Test func AMITestsPlaceholder() { #expect(Bool(true)) }
