// The Bootstrap module: repo metadata, RPM reader, download cache, verification, chroot yum.
