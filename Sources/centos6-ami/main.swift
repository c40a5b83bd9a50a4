import CLI
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

// Modes in an image must not depend on the caller's umask: every file and
// directory the tool or its children (rpm, yum, useradd, dracut, grub) create
// gets the modes CentOS 6 gives them under its default umask.
umask(0o022)
exit(CLI.main(Array(CommandLine.arguments.dropFirst())))
