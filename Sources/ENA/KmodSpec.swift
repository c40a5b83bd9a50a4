import Foundation

/// Our own spec for the `kmod-ena` package (not Amazon's rpm/ directory): one
/// module under `/lib/modules/<kver>/extra/ena/`, a depmod.d override so our
/// module wins over an in-tree `ena`, and scriptlets that run depmod and, when
/// the target has it, `weak-modules` so compatible kernel updates keep it.
/// As kmodtool's kABI-tracking kmod packages, it provides
/// `kernel-modules = <kver>` (the kernel it was built for); weak-modules links
/// the module into a later kernel's weak-updates/ by its symbol versions.
/// Readable by CentOS 6's rpm 4.8: gzip payload, no debuginfo, no build-id links.
public struct KmodSpec: Equatable, Sendable {
    /// ENA version (versions.json `ena.version`).
    public var version: String
    public var release: String
    /// The kernel's modules directory name (`2.6.32-696.el6.x86_64`).
    public var kernelRelease: String
    /// The kernel package's version-release (`2.6.32-696.el6`), for Requires.
    public var kernelVersion: String
    /// The built `ena.ko`, as a path inside the build root.
    public var builtModule: String

    public init(version: String, release: String = "1", kernelRelease: String, kernelVersion: String, builtModule: String) {
        self.version = version
        self.release = release
        self.kernelRelease = kernelRelease
        self.kernelVersion = kernelVersion
        self.builtModule = builtModule
    }

    public var moduleDirectory: String { "/lib/modules/\(kernelRelease)/extra/ena" }
    public var modulePath: String { moduleDirectory + "/ena.ko" }
    public static let depmodConfig = "/etc/depmod.d/kmod-ena.conf"
    /// `override` lines: ours for the kernel it was built for, the weak-updates link for compatible kernels.
    public static let depmodConfigText = "override ena * extra/ena\noverride ena * weak-updates/ena\n"

    public func render() -> String {
        """
        # Written by centos6-ami: ENA \(version) for kernel \(kernelRelease), built in a scratch build root.
        %global debug_package %{nil}
        %global __os_install_post %{nil}
        %global _build_id_links none
        %global _binary_payload w9.gzdio

        Name:           kmod-ena
        Version:        \(version)
        Release:        \(release)
        Summary:        Amazon Elastic Network Adapter (ENA) driver \(version) for kernel \(kernelRelease)
        License:        GPLv2
        Vendor:         centos6-ami
        Group:          System Environment/Kernel
        URL:            https://github.com/amzn/amzn-drivers
        ExclusiveArch:  x86_64
        AutoReqProv:    no
        Requires:       kernel >= \(kernelVersion)
        Provides:       ena-kmod = \(version)
        Provides:       kernel-modules = \(kernelRelease)

        %description
        The ena.ko module of Amazon's ENA Linux driver \(version), compiled against
        kernel-devel-\(kernelVersion) and installed under \(moduleDirectory);
        depmod prefers it to any in-tree ena, and weak-modules (when present)
        links it into compatible kernels.

        %prep

        %build

        %install
        mkdir -p %{buildroot}\(moduleDirectory) %{buildroot}/etc/depmod.d
        install -m 0644 \(builtModule) %{buildroot}\(modulePath)
        printf '\(Self.depmodConfigText.replacingOccurrences(of: "\n", with: "\\n"))' > %{buildroot}\(Self.depmodConfig)

        %post
        /sbin/depmod -a \(kernelRelease) || :
        if [ -x /sbin/weak-modules ]; then
            echo \(modulePath) | /sbin/weak-modules --add-modules || :
        fi

        %preun
        if [ "$1" = 0 ] && [ -x /sbin/weak-modules ]; then
            echo \(modulePath) > /var/run/kmod-ena-modules || :
        fi

        %postun
        if [ "$1" = 0 ] && [ -s /var/run/kmod-ena-modules ]; then
            /sbin/weak-modules --remove-modules < /var/run/kmod-ena-modules || :
            rm -f /var/run/kmod-ena-modules
        fi
        /sbin/depmod -a \(kernelRelease) || :

        %files
        %defattr(644,root,root,755)
        %dir \(moduleDirectory)
        \(modulePath)
        %config(noreplace) \(Self.depmodConfig)

        """
    }
}
