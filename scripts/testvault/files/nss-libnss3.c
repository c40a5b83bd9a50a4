/* libnss3.so of the test vault's `nss` package: a stand-in for the part of
 * NSS that CentOS 6's rpm depends on at run time.
 *
 * Why: CentOS 6's rpm 4.8 does every digest and signature check through NSS
 * (its librpmio.so.1 links libnss3.so; its digest context is an NSS hash
 * context). NSS itself has no crypto: it loads its PKCS #11 module
 * libsoftokn3.so (package nss-softokn) at run time with dlopen and calls its
 * NSC_GetFunctionList; softokn in turn dlopens libfreebl3.so (package
 * nss-softokn-freebl) and calls FREEBL_GetVector. No ELF file rpm loads
 * names either library in DT_NEEDED; the packages' Requires do (EL6's nss
 * Requires libsoftokn3.so()(64bit) and libfreebl3.so()(64bit)). Without them genuine
 * rpm 4.8 reports `SHA1 MD5 NOT OK` for every package and refuses to install
 * (`Header V3 RSA/SHA1 Signature, key ID c105b9de: BAD`). The genuine EL6
 * packages in Tests/Fixtures/el6-rpm-runtime show this shape; the sources
 * are in scripts/testvault/FIDELITY.md.
 *
 * The vault's rpm is Debian's rpm 4.18, which links libgcrypt directly, so
 * vault.py makes its /usr/bin/rpm (and rpmkeys, which `rpm -K` runs, and the
 * other executables linking librpmio) load this library through a DT_NEEDED
 * entry placed before librpm.so.9 and librpmio.so.9. Being earlier in the
 * global lookup scope, rpmDigestFinal here interposes librpmio's for every
 * caller (rpm, librpm and librpmio itself call it through the PLT). At the
 * first digest it loads the module chain by name, as NSS does; when that
 * works the digest is passed through unchanged, when it does not the first
 * byte (or hex digit) of every digest is changed, so rpm 4.18 reports
 * digests NOT OK and signatures BAD and refuses to install, as rpm 4.8 does
 * without softokn. (Only the first byte: a V4 key's ID is the last 8 bytes
 * of its SHA-1 fingerprint, so keys still match and signatures say BAD, not
 * NOKEY.)
 *
 * Built by vault.py (nss_pkgs) with the host gcc; its only DT_NEEDED is libc. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>

typedef unsigned long CK_RV;      /* PKCS #11: CKR_OK is 0 */
typedef struct DIGEST_CTX_s *DIGEST_CTX;

/* rpm 4.18's rpmio/rpmcrypto.h */
typedef int (*rpmDigestFinal_fn)(DIGEST_CTX ctx, void **datap, size_t *lenp, int asAscii);

/* 0: not tried yet, 1: the module chain loaded and passed its self-test, -1: it did not. */
static int module_state;

static int crypto_module_ready(void)
{
    int state = __atomic_load_n(&module_state, __ATOMIC_ACQUIRE);
    if (state != 0)
        return state > 0;
    /* NSS loads its internal module by file name through the loader's search path. */
    void *softokn = dlopen("libsoftokn3.so", RTLD_NOW | RTLD_LOCAL);
    if (softokn == NULL) {
        fprintf(stderr, "libnss3.so: cannot load the NSS crypto module: %s\n", dlerror());
        state = -1;
    } else {
        CK_RV (*get_function_list)(void **) = (CK_RV (*)(void **))dlsym(softokn, "NSC_GetFunctionList");
        void *list = NULL;
        CK_RV rv = get_function_list ? get_function_list(&list) : 0x5 /* CKR_GENERAL_ERROR */;
        if (rv != 0 || list == NULL) {
            fprintf(stderr, "libnss3.so: libsoftokn3.so's NSC_GetFunctionList failed (CKR 0x%lx%s)\n", rv,
                    rv == 0x30 ? ": libfreebl3.so cannot be loaded" : "");
            state = -1;
        } else {
            state = 1;
        }
    }
    __atomic_store_n(&module_state, state, __ATOMIC_RELEASE);
    return state > 0;
}

int rpmDigestFinal(DIGEST_CTX ctx, void **datap, size_t *lenp, int asAscii)
{
    static rpmDigestFinal_fn next;
    if (next == NULL)
        next = (rpmDigestFinal_fn)dlsym(RTLD_NEXT, "rpmDigestFinal");
    if (next == NULL)
        return -1;
    int rc = next(ctx, datap, lenp, asAscii);
    if (rc == 0 && datap != NULL && *datap != NULL && !crypto_module_ready()) {
        unsigned char *d = *datap;
        if (asAscii)
            d[0] = d[0] == '0' ? '1' : '0';
        else
            d[0] ^= 0xff;
    }
    return rc;
}
