import Testing

@Test func HostTestsPlaceholder() { #expect(Bool(true)) }
