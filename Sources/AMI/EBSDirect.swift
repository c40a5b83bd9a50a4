// Writing an image file into a new EBS snapshot through the EBS direct APIs
// (StartSnapshot, PutSnapshotBlock, CompleteSnapshot): no builder instance, no
// attached volume. StartSnapshot and CompleteSnapshot are aws CLI calls; the
// blocks go from this process (EBSBlockClient.swift). The pure parts (which
// blocks hold data, the checksums the API wants, the argument lists, the
// progress line) are separate from the functions that do I/O.
import Fetch
import Foundation
import Host
#if canImport(Glibc)
    import Glibc
#endif

/// Which 512 KiB blocks of an image file hold data.
public enum EBSBlocks {
    /// The EBS direct APIs' only block size (PutSnapshotBlock's `--data-length` must be this).
    public static let blockSize: Int64 = 524_288
    public static let gibibyte: Int64 = 1 << 30

    /// The snapshot's volume size: the image's size rounded up to whole GiB (EBS sizes are GiB), at least 1.
    public static func volumeSizeGiB(bytes: Int64) -> Int {
        Int(max(1, (bytes + gibibyte - 1) / gibibyte))
    }

    /// Block indices that overlap any of the data extents (byte ranges, as SEEK_DATA/SEEK_HOLE report them),
    /// ascending, each once; blocks past `fileSize` are never listed.
    public static func candidateBlocks(dataExtents: [Range<Int64>], fileSize: Int64) -> [Int] {
        var blocks: [Int] = []
        var next: Int64 = 0 // first block index not yet listed
        for extent in dataExtents.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            let upper = min(extent.upperBound, fileSize)
            guard extent.lowerBound < upper else { continue }
            let first = max(next, extent.lowerBound / blockSize)
            let last = (upper - 1) / blockSize
            if first <= last {
                for index in first...last { blocks.append(Int(index)) }
                next = last + 1
            }
        }
        return blocks
    }

    /// The data extents of an open file by SEEK_DATA/SEEK_HOLE. A filesystem without
    /// them (EINVAL) is read in full: every byte counts as data, the zero check still skips.
    public static func dataExtents(fd: Int32, size: Int64) throws -> [Range<Int64>] {
        var extents: [Range<Int64>] = []
        var offset: Int64 = 0
        while offset < size {
            let data = lseek(fd, off_t(offset), seekData)
            if data < 0 {
                if errno == ENXIO { break } // only a hole is left
                if errno == EINVAL && extents.isEmpty && offset == 0 { return [0..<size] }
                throw AMIError.imageUnreadable(path: "fd \(fd)", reason: "lseek(SEEK_DATA) at \(offset): \(String(cString: strerror(errno)))")
            }
            var hole = Int64(lseek(fd, off_t(data), seekHole))
            if hole < 0 { hole = size }
            let end = min(hole, size)
            if Int64(data) < end { extents.append(Int64(data)..<end) }
            offset = end
        }
        return extents
    }

    /// Linux's whence values (Glibc exports them only under _GNU_SOURCE).
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    private static let zeros = [UInt8](repeating: 0, count: Int(blockSize))

    /// True when every byte is zero (memcmp against a zero block: C speed even in debug builds).
    public static func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, zeros.count)
            let same = zeros.withUnsafeBytes { memcmp(base + offset, $0.baseAddress!, n) == 0 }
            if !same { return false }
            offset += n
        }
        return true
    }

    /// Reads block `index` of `fd` (a short last block is padded with zeros: EBS blocks are whole).
    static func read(fd: Int32, index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        memset(buffer.baseAddress!, 0, buffer.count)
        var done = 0
        let start = Int64(index) * blockSize
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(start + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                throw AMIError.imageUnreadable(path: "fd \(fd)", reason: "read at \(start + Int64(done)): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            done += n
        }
    }

    /// What an upload sends: the image's size and the indices of its blocks that hold a non-zero byte.
    public struct Scan: Equatable, Sendable {
        public var size: Int64
        public var blocks: [Int]
        /// Blocks inside data extents that were all zeros (not sent).
        public var zeroBlocksSkipped: Int
        public var volumeSizeGiB: Int { EBSBlocks.volumeSizeGiB(bytes: size) }
    }

    /// Finds the blocks to send: the data extents of the sparse file, then drops all-zero blocks.
    public static func scan(path: String) throws -> Scan {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AMIError.imageUnreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw AMIError.imageUnreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw AMIError.imageUnreadable(path: path, reason: "not a regular file") }
        let size = Int64(st.st_size)
        let candidates: [Int]
        do {
            candidates = candidateBlocks(dataExtents: try dataExtents(fd: fd, size: size), fileSize: size)
        } catch AMIError.imageUnreadable(_, let reason) {
            throw AMIError.imageUnreadable(path: path, reason: reason)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(blockSize), alignment: 4096)
        defer { buffer.deallocate() }
        var blocks: [Int] = []
        var skipped = 0
        for index in candidates {
            try Interruption.shared.check()
            do { try read(fd: fd, index: index, into: buffer) } catch AMIError.imageUnreadable(_, let reason) {
                throw AMIError.imageUnreadable(path: path, reason: reason)
            }
            if isAllZero(UnsafeRawBufferPointer(buffer)) { skipped += 1 } else { blocks.append(index) }
        }
        return Scan(size: size, blocks: blocks, zeroBlocksSkipped: skipped)
    }
}

/// The checksums the EBS direct APIs define: SHA-256 of each block, Base64;
/// CompleteSnapshot's aggregate with method LINEAR is the SHA-256 of the blocks'
/// raw digests concatenated in ascending block index order, Base64
/// (AWS's CompleteSnapshot reference; awslabs/coldsnap computes it the same way).
public enum EBSChecksum {
    public static let algorithm = "SHA256"
    public static let aggregationMethod = "LINEAR"

    /// Raw digest bytes from lower-case hex.
    public static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            out.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return out
    }

    public static func base64(_ digest: [UInt8]) -> String { Data(digest).base64EncodedString() }

    /// The SHA-256 of bytes in memory, raw.
    public static func digest(_ data: Data) -> [UInt8] {
        FastSHA256.digest(data)
    }

    /// The aggregate checksum of the written blocks (`digests` by block index; any order in, sorted here).
    public static func aggregate(_ digests: [Int: [UInt8]]) -> String {
        var all = Data()
        for index in digests.keys.sorted() { all.append(contentsOf: digests[index]!) }
        return base64(digest(all))
    }
}

extension AWSContext {
    /// `aws ebs OPERATION ARGS... --output json [--region R] [--endpoint-url U]`.
    public func ebs(_ operation: String, _ arguments: [String] = []) -> Command {
        var args = ["ebs", operation] + arguments + ["--output", "json"]
        if let region { args += ["--region", region] }
        if let endpointURL { args += ["--endpoint-url", endpointURL] }
        if let profile { args += ["--profile", profile] }
        return Command(executable, args)
    }
}

/// Argument lists of the EBS direct API calls (pure).
public enum EBSArgs {
    /// StartSnapshot, tagged in the same call so an interrupted run's snapshot is found by build id.
    /// `timeout` (minutes): AWS cancels a snapshot nobody writes to or completes for that long.
    public static func startSnapshot(volumeSizeGiB: Int, description: String, tags: [Tag], timeoutMinutes: Int = 60) -> [String] {
        [
            "--volume-size", String(volumeSizeGiB), "--description", description, "--tags", EC2Args.json(tags),
            "--timeout", String(timeoutMinutes),
        ]
    }

    public static func completeSnapshot(snapshotID: String, changedBlocks: Int, checksum: String) -> [String] {
        [
            "--snapshot-id", snapshotID, "--changed-blocks-count", String(changedBlocks), "--checksum", checksum,
            "--checksum-algorithm", EBSChecksum.algorithm, "--checksum-aggregation-method", EBSChecksum.aggregationMethod,
        ]
    }
}

/// StartSnapshot's answer (the fields we use).
public struct StartSnapshotOutput: Codable, Equatable, Sendable {
    public var SnapshotId: String
    public var Status: String?
    public var VolumeSize: Int?
}

extension EC2Client {
    /// Runs one `aws ebs` call; a failure is `AMIError.callFailed` named `ebs OPERATION`.
    @discardableResult
    func ebsCall(_ operation: String, _ arguments: [String]) throws -> Data {
        let result = runner.run(context.ebs(operation, arguments))
        guard result.status == 0 else {
            let tail = result.stderrText.split(separator: "\n", omittingEmptySubsequences: true).suffix(4).joined(separator: " / ")
            throw AMIError.callFailed(call: "ebs " + operation, detail: tail.isEmpty ? "exit status \(result.status)" : tail)
        }
        return result.standardOutput
    }

    public func startSnapshot(volumeSizeGiB: Int, description: String, tags: [Tag]) throws -> StartSnapshotOutput {
        let data = try ebsCall("start-snapshot", EBSArgs.startSnapshot(volumeSizeGiB: volumeSizeGiB, description: description, tags: tags))
        return try decodeAWS(StartSnapshotOutput.self, from: data, call: "ebs start-snapshot")
    }

    public func completeSnapshot(snapshotID: String, changedBlocks: Int, checksum: String) throws {
        try ebsCall("complete-snapshot", EBSArgs.completeSnapshot(snapshotID: snapshotID, changedBlocks: changedBlocks, checksum: checksum))
    }
}

/// Where an upload stands, for the progress line.
public struct UploadProgress: Equatable, Sendable {
    public var blocksDone: Int
    public var blocksTotal: Int
    public var seconds: Double

    public init(blocksDone: Int, blocksTotal: Int, seconds: Double) {
        self.blocksDone = blocksDone
        self.blocksTotal = blocksTotal
        self.seconds = seconds
    }

    public var megabytesDone: Double { Double(blocksDone) * Double(EBSBlocks.blockSize) / 1_000_000 }
    public var megabytesTotal: Double { Double(blocksTotal) * Double(EBSBlocks.blockSize) / 1_000_000 }
    /// MB/s so far; 0 before anything was sent.
    public var rate: Double { seconds > 0 ? megabytesDone / seconds : 0 }

    /// `upload: 120/700 blocks, 62.9/367.0 MB, 5.2 MB/s, ETA 58 s` (ETA `?` until a block is done).
    public var line: String {
        let eta: String
        if blocksDone == 0 || seconds <= 0 {
            eta = "?"
        } else {
            let remaining = Double(blocksTotal - blocksDone) * seconds / Double(blocksDone)
            eta = "\(Int(remaining.rounded())) s"
        }
        return String(format: "upload: %d/%d blocks, %.1f/%.1f MB, %.1f MB/s, ETA %@", blocksDone, blocksTotal, megabytesDone, megabytesTotal, rate, eta)
    }
}

/// Writes an image file into a new snapshot, block by block, in parallel, through one
/// `SnapshotBlockSender` (EBSBlockClient: keep-alive HTTPS from this process).
public enum EBSUploader {
    public struct Settings: Sendable {
        /// Blocks in flight at once (one worker thread and one kept-alive connection each).
        public var jobs: Int
        /// Tries per block (5xx, throttling and lost connections are expected now and then; AWS says to retry).
        public var attempts: Int = 4
        /// Seconds before the second try; doubled for each further one.
        public var backoff: TimeInterval = 1
        /// How often the progress line is printed.
        public var progressInterval: TimeInterval = 5
        // 16 in flight: what the boto3 anchor of Benchmarks/upload uses; the time of a block is mostly the round trip.
        public init(jobs: Int = 16) { self.jobs = jobs }
    }

    public struct Result: Equatable, Sendable {
        public var snapshotID: String
        public var blocksSent: Int
        public var seconds: Double
        public var aggregateChecksum: String
    }

    /// Sends every block of `scan` to the pending snapshot `snapshotID`, then completes it (aws CLI) with the
    /// changed-blocks count and the LINEAR aggregate checksum. Throws `AMIError.blockFailed` naming the
    /// block when one still fails after `settings.attempts` (or at once when retrying cannot help); the caller deletes the snapshot.
    public static func send(
        image path: String, scan: EBSBlocks.Scan, snapshotID: String, client: EC2Client, sender: any SnapshotBlockSender,
        settings: Settings, clock: AMIClock, progress: (UploadProgress) -> Void
    ) throws -> Result {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AMIError.imageUnreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let start = clock.now()
        let total = scan.blocks.count
        let sent = Locked<[Int: [UInt8]]>([:])
        // The calling thread reports progress until the workers are done.
        var lastReport = clock.now()
        try Parallel.forEach(
            total, workers: settings.jobs, interval: 0.2,
            whileWaiting: {
                if clock.now().timeIntervalSince(lastReport) >= settings.progressInterval {
                    progress(UploadProgress(blocksDone: sent.value.count, blocksTotal: total, seconds: clock.now().timeIntervalSince(start)))
                    lastReport = clock.now()
                }
            }
        ) { items in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(EBSBlocks.blockSize), alignment: 4096)
            defer { buffer.deallocate() }
            items.forEach { position in
                let index = scan.blocks[position]
                let digest = try sendBlock(
                    index: index, fd: fd, buffer: buffer, snapshotID: snapshotID, sender: sender,
                    settings: settings, clock: clock, stop: { items.isStopping })
                sent.withLock { $0[index] = digest }
            }
        }
        let digests = sent.value
        let aggregate = EBSChecksum.aggregate(digests)
        let seconds = clock.now().timeIntervalSince(start)
        progress(UploadProgress(blocksDone: digests.count, blocksTotal: total, seconds: seconds))
        try client.completeSnapshot(snapshotID: snapshotID, changedBlocks: digests.count, checksum: aggregate)
        return Result(snapshotID: snapshotID, blocksSent: digests.count, seconds: seconds, aggregateChecksum: aggregate)
    }

    /// The pause before try `attempt + 1`: `backoff` doubled per try already made.
    public static func delay(afterAttempt attempt: Int, settings: Settings) -> TimeInterval {
        settings.backoff * pow(2, Double(attempt - 1))
    }

    /// Reads, hashes (libcrypto's SHA-256: C speed in debug builds too) and sends one block, retrying what may pass next time.
    static func sendBlock(
        index: Int, fd: Int32, buffer: UnsafeMutableRawBufferPointer, snapshotID: String, sender: any SnapshotBlockSender,
        settings: Settings, clock: AMIClock, stop: () -> Bool
    ) throws -> [UInt8] {
        try EBSBlocks.read(fd: fd, index: index, into: buffer)
        let digest = FastSHA256.digest(UnsafeRawBufferPointer(buffer))
        let checksum = EBSChecksum.base64(digest)
        let block = Data(UnsafeRawBufferPointer(buffer))
        var attempt = 1
        while true {
            try Interruption.shared.check()
            do {
                try sender.putBlock(snapshotID: snapshotID, index: index, block: block, checksum: checksum)
                return digest
            } catch let failure as BlockPutFailure {
                guard failure.retryable, attempt < settings.attempts, !stop() else {
                    throw AMIError.blockFailed(index: index, offset: Int64(index) * EBSBlocks.blockSize, attempts: attempt, reason: "\(failure)")
                }
                clock.sleep(delay(afterAttempt: attempt, settings: settings))
                attempt += 1
            }
        }
    }
}
