import Foundation
import Testing
@testable import Host

/// Parallel.forEach: every item runs, and the reported failure is the lowest index's whatever the scheduling.
@Suite struct ParallelTests {
    struct Failed: Error, Equatable { var index: Int }

    @Test func everyItemRunsOnce() throws {
        let seen = Locked<[Int]>([])
        try Parallel.forEach(100) { index in seen.withLock { $0.append(index) } }
        #expect(seen.value.sorted() == Array(0..<100))
    }

    @Test func theLowestFailedIndexIsReported() {
        let ran = Locked(0)
        #expect(throws: Failed(index: 3)) {
            try Parallel.forEach(50) { index in
                ran.withLock { $0 += 1 }
                if index == 3 || index == 40 || index == 17 { throw Failed(index: index) }
            }
        }
        #expect(ran.value == 50, "a failure does not stop the other items")
    }

    @Test func aBoundedPoolStopsAtTheFirstFailureAndSetsUpEachWorkerOnce() {
        let ran = Locked<[Int]>([]), setups = Locked(0)
        #expect(throws: Failed(index: 5)) {
            try Parallel.forEach(1000, workers: 3) { items in
                setups.withLock { $0 += 1 }
                items.forEach { index in
                    ran.withLock { $0.append(index) }
                    if index == 5 || index == 7 { throw Failed(index: index) }
                }
            }
        }
        #expect(setups.value == 3)
        #expect(ran.value.count < 1000, "no item starts after a failure")
        #expect(Set(ran.value).isSuperset(of: 0...5), "every lower index ran")
    }
}
