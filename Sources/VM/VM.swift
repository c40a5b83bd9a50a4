// The VM module: QEMU boot harness (boot-test).
