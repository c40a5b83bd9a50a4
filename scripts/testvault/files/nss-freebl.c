/* libfreebl3.so of the test vault's `nss-softokn-freebl` package: a stand-in
 * for NSS's freebl, the library that holds NSS's actual crypto code and that
 * softokn dlopens at run time, so CentOS 6's rpm 4.8 cannot compute a digest
 * without it; see nss-libnss3.c for the chain.
 * FREEBL_GetVector is the real library's one entry point. Built by vault.py
 * (nss_pkgs) with the host gcc; DT_NEEDED libc only. */

typedef struct {
    unsigned short length;
    unsigned short version;
    int (*p_BL_Init)(void);
} FREEBLVector;

static int BL_Init(void)
{
    return 0; /* SECSuccess */
}

/* 0x0300 | minor, as NSS 3's FREEBL_VERSION */
static const FREEBLVector vector = {sizeof(FREEBLVector), 0x0300 | 0x10, BL_Init};

const FREEBLVector *FREEBL_GetVector(void)
{
    return &vector;
}
