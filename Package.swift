// swift-tools-version:6.0
// centos6-ami: builds CentOS 6 AMIs from scratch on any modern Linux builder.
// No package dependencies by design: Foundation, Glibc and the host's tools only.
import PackageDescription

let package = Package(
    name: "centos6-ami",
    products: [
        .executable(name: "centos6-ami", targets: ["centos6-ami"])
    ],
    targets: [
        // Host only for `ToolError`, the one shape of the tool's errors.
        .target(name: "Versions", dependencies: ["Host"]),
        .target(name: "Host"),
        .target(name: "Disk", dependencies: ["Host"]),
        .target(name: "Templates", dependencies: ["Versions"]),
        // The download client and the content-addressed cache with its checksums.
        .target(name: "Fetch", dependencies: ["Host"]),
        // The RPM reader: lead, headers, version comparison, the cpio extractor, gzip, host tools streamed from a file.
        .target(name: "RPM", dependencies: ["Host"]),
        // The pinned key, gpgv, remembered verifications, and the only way to unpack a package.
        .target(name: "Signature", dependencies: ["Host", "Fetch", "RPM"]),
        // repomd, primary and comps; the resolver; a release's repository fetched and checked.
        .target(name: "Repository", dependencies: ["Host", "Fetch", "RPM"]),
        // Where a built image boots on EC2 (Xen, Nitro), read from its root and initramfs.
        .target(name: "Verdict", dependencies: ["Host", "Versions", "RPM"]),
        .target(name: "ENA", dependencies: ["Host", "Versions"]),
        .target(name: "AMI", dependencies: ["Host", "Versions", "Fetch"]),
        // SPDX 2.3 and CycloneDX 1.5 of an image (pure renderers), and its rpm database read safely.
        .target(name: "SBOM", dependencies: ["Host"]),
        .target(name: "VM", dependencies: ["Host"]),
        .target(name: "Install", dependencies: ["Host", "Versions", "Disk", "Fetch", "RPM", "Signature", "Repository", "Verdict", "Templates", "ENA", "SBOM"]),
        .target(
            name: "CLI",
            dependencies: [
                "Host", "Versions", "Disk", "Fetch", "RPM", "Signature", "Repository", "Verdict", "Templates", "ENA", "AMI", "Install", "VM", "SBOM",
            ]),
        .executableTarget(name: "centos6-ami", dependencies: ["CLI"]),
        // The IMDSv2 service of VM as a process of its own, for the rc.local tests (not installed).
        .executableTarget(name: "imds-serve", dependencies: ["VM"]),
        // Benchmarks/download/run.sh's driver for Fetch.Fetcher (not installed).
        .executableTarget(name: "fetch-bench", dependencies: ["Fetch", "Host"], path: "Benchmarks/download/fetch-bench"),
        // Benchmarks/spawn/run.sh's driver for Host.ProcessRunner (not installed).
        .executableTarget(name: "spawn-bench", dependencies: ["Host"], path: "Benchmarks/spawn/spawn-bench"),

        // What the test targets share, for test targets only: golden files, a free port, SplitMix64, the rpm fixtures, newc and gzip builders,
        // the recording runner and the test servers started through the runner.
        .target(name: "TestSupport", dependencies: ["Host"], path: "Tests/TestSupport", resources: [.copy("Fixtures")]),
        .testTarget(name: "VersionsTests", dependencies: ["Versions"]),
        .testTarget(name: "HostTests", dependencies: ["Host", "TestSupport"]),
        .testTarget(name: "DiskTests", dependencies: ["Disk", "Host"]),
        .testTarget(name: "TemplatesTests", dependencies: ["Templates", "Versions", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "FetchTests", dependencies: ["Fetch", "Host", "TestSupport"]),
        .testTarget(name: "RPMTests", dependencies: ["RPM", "Signature", "Host", "TestSupport"]),
        .testTarget(name: "SignatureTests", dependencies: ["Signature", "RPM", "Fetch", "Host", "TestSupport"]),
        .testTarget(name: "RepositoryTests", dependencies: ["Repository", "RPM", "Fetch", "Host", "TestSupport"]),
        .testTarget(name: "VerdictTests", dependencies: ["Verdict", "Versions", "TestSupport"]),
        .testTarget(name: "SBOMTests", dependencies: ["SBOM", "Host", "TestSupport"], resources: [.copy("Golden")]),
        // SigV4Vectors: AWS's test-suite files, read from the source tree (SOURCE.md there names where they come from).
        .testTarget(name: "AMITests", dependencies: ["AMI", "Host", "Versions", "VM", "TestSupport"], exclude: ["SigV4Vectors"]),
        .testTarget(
            name: "InstallTests", dependencies: ["Install", "Host", "Versions", "Disk", "Fetch", "RPM", "Repository", "Signature", "SBOM", "TestSupport"],
            exclude: ["Fixtures"], resources: [.copy("Golden")]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "Versions", "Verdict", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "VMTests", dependencies: ["VM", "Host", "TestSupport"]),
        .testTarget(name: "ENATests", dependencies: ["ENA", "Versions", "Host", "TestSupport"], resources: [.copy("Golden")]),
        // Root, loop devices, the test vault, QEMU: enabled by CENTOS6_AMI_INTEGRATION=1 (scripts/test.sh sets it).
        // Depends on the executables so `swift test` builds the binaries the tests drive.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "centos6-ami", "imds-serve", "CLI", "Install", "Fetch", "RPM", "Signature", "Repository", "Verdict", "Disk", "Host", "Versions", "AMI", "ENA",
                "VM", "Templates", "SBOM", "TestSupport",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
