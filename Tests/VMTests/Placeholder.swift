import Testing

@Test func VMTestsPlaceholder() { #expect(Bool(true)) }
