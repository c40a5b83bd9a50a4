// swift-tools-version:6.0
// centos6-ami: builds CentOS 6 AMIs from scratch on any modern Linux builder.
// No package dependencies by design: Foundation, Glibc and the host's tools only.
import PackageDescription

let package = Package(
    name: "centos6-ami",
    products: [
        .executable(name: "centos6-ami", targets: ["centos6-ami"]),
    ],
    targets: [
        .target(name: "Versions"),
        .target(name: "Host"),
        .target(name: "Disk", dependencies: ["Host"]),
        .target(name: "Templates", dependencies: ["Versions"]),
        .target(name: "Bootstrap", dependencies: ["Host", "Versions"]),
        .target(name: "ENA", dependencies: ["Host", "Versions", "Bootstrap"]),
        .target(name: "AMI", dependencies: ["Host", "Versions", "Bootstrap"]),
        .target(name: "VM", dependencies: ["Host"]),
        .target(name: "Install", dependencies: ["Host", "Versions", "Disk", "Bootstrap", "Templates", "ENA"]),
        .target(name: "CLI", dependencies: ["Host", "Versions", "Disk", "Bootstrap", "Templates", "ENA", "AMI", "Install", "VM"]),
        .executableTarget(name: "centos6-ami", dependencies: ["CLI"]),
        // The IMDSv2 service of VM as a process of its own, for the rc.local tests (not installed).
        .executableTarget(name: "imds-serve", dependencies: ["VM"]),
        // Benchmarks/download/run.sh's driver for Bootstrap.Fetcher (not installed).
        .executableTarget(name: "fetch-bench", dependencies: ["Bootstrap", "Host"], path: "Benchmarks/download/fetch-bench"),
        // Benchmarks/spawn/run.sh's driver for Host.ProcessRunner (not installed).
        .executableTarget(name: "spawn-bench", dependencies: ["Host"], path: "Benchmarks/spawn/spawn-bench"),

        .testTarget(name: "VersionsTests", dependencies: ["Versions"]),
        .testTarget(name: "HostTests", dependencies: ["Host"]),
        .testTarget(name: "DiskTests", dependencies: ["Disk", "Host"]),
        .testTarget(name: "TemplatesTests", dependencies: ["Templates", "Versions"], resources: [.copy("Golden")]),
        .testTarget(name: "BootstrapTests", dependencies: ["Bootstrap", "Host", "Versions"], resources: [.copy("Fixtures")]),
        .testTarget(name: "AMITests", dependencies: ["AMI", "Host", "Versions"]),
        .testTarget(name: "InstallTests", dependencies: ["Install", "Host", "Versions", "Disk", "Bootstrap"], resources: [.copy("Golden")]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "Versions"], resources: [.copy("Golden")]),
        .testTarget(name: "VMTests", dependencies: ["VM", "Host"]),
        .testTarget(name: "ENATests", dependencies: ["ENA", "Versions", "Host"], resources: [.copy("Golden")]),
        // Root, loop devices, the test vault, QEMU: enabled by CENTOS6_AMI_INTEGRATION=1 (scripts/test.sh sets it).
        // Depends on the executables so `swift test` builds the binaries the tests drive.
        .testTarget(name: "IntegrationTests", dependencies: ["centos6-ami", "imds-serve", "CLI", "Install", "Bootstrap", "Disk", "Host", "Versions", "AMI", "ENA", "VM", "Templates"]),
    ],
    swiftLanguageModes: [.v6]
)
