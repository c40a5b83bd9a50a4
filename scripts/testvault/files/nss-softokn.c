/* libsoftokn3.so of the test vault's `nss-softokn` package: a stand-in for
 * NSS's software PKCS #11 module, which CentOS 6's NSS (and through it rpm
 * 4.8) dlopens at run time; see nss-libnss3.c for the whole chain.
 *
 * As the real softokn does, it does no hashing itself: it loads the freebl
 * library by name at run time (NSS's freebl loader: dlopen libfreebl3.so,
 * then FREEBL_GetVector) and fails when that library is absent. Nothing
 * names libfreebl3.so in DT_NEEDED; the package's Requires does. Sources of
 * these facts: scripts/testvault/FIDELITY.md. Built by vault.py (nss_pkgs)
 * with the host gcc; DT_NEEDED libc only. */
#include <dlfcn.h>
#include <stddef.h>

typedef unsigned long CK_RV;
#define CKR_OK 0x0UL
#define CKR_FUNCTION_FAILED 0x6UL
#define CKR_DEVICE_ERROR 0x30UL

/* Shaped like the head of NSS's FREEBLVector: its size and version, then
 * the entry points (here only one). */
typedef struct {
    unsigned short length;
    unsigned short version;
    int (*p_BL_Init)(void);   /* SECSuccess is 0 */
} FREEBLVector;
#define FREEBL_VERSION_MAJOR 0x03

/* The start of a PKCS #11 CK_FUNCTION_LIST: the Cryptoki version 2.20. */
static const struct { unsigned char major, minor; } function_list = {2, 20};

CK_RV NSC_GetFunctionList(void **list)
{
    static const FREEBLVector *vector;
    if (vector == NULL) {
        void *freebl = dlopen("libfreebl3.so", RTLD_NOW | RTLD_LOCAL);
        if (freebl == NULL)
            return CKR_DEVICE_ERROR;
        const FREEBLVector *(*get_vector)(void) =
            (const FREEBLVector *(*)(void))dlsym(freebl, "FREEBL_GetVector");
        if (get_vector == NULL)
            return CKR_DEVICE_ERROR;
        const FREEBLVector *v = get_vector();
        /* the power-up self-test: a vector of the right major version whose
         * BL_Init succeeds */
        if (v == NULL || (v->version >> 8) != FREEBL_VERSION_MAJOR || v->length < sizeof(FREEBLVector)
            || v->p_BL_Init() != 0)
            return CKR_FUNCTION_FAILED;
        vector = v;
    }
    if (list != NULL)
        *list = (void *)&function_list;
    return CKR_OK;
}
