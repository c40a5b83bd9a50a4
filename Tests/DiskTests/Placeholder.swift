import Testing

@Test func DiskTestsPlaceholder() { #expect(Bool(true)) }
