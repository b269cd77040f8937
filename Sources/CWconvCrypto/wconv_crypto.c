// libcrypto loaded on first use (see wconv_crypto.h): the EVP digest functions wconv calls.
#define _GNU_SOURCE
#include "wconv_crypto.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static void *lib;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *(*md_ctx_new)(void);
static void (*md_ctx_free)(void *);
static int (*md_ctx_copy_ex)(void *, const void *);
static const void *(*evp_sha256)(void);
static int (*digest_init_ex)(void *, const void *, void *);
static int (*digest_update)(void *, const void *, size_t);
static int (*digest_final_ex)(void *, unsigned char *, unsigned int *);

static void load(void) {
    // OpenSSL 3 (Debian 12), then 1.1 (Debian 11), then the development symlink.
    static const char *const names[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"};
    char first[256] = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++) {
        lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib && i == 0) snprintf(first, sizeof first, "%s", dlerror());
    }
    if (lib) {
        md_ctx_new = (void *(*)(void))dlsym(lib, "EVP_MD_CTX_new");
        md_ctx_free = (void (*)(void *))dlsym(lib, "EVP_MD_CTX_free");
        md_ctx_copy_ex = (int (*)(void *, const void *))dlsym(lib, "EVP_MD_CTX_copy_ex");
        evp_sha256 = (const void *(*)(void))dlsym(lib, "EVP_sha256");
        digest_init_ex = (int (*)(void *, const void *, void *))dlsym(lib, "EVP_DigestInit_ex");
        digest_update = (int (*)(void *, const void *, size_t))dlsym(lib, "EVP_DigestUpdate");
        digest_final_ex = (int (*)(void *, unsigned char *, unsigned int *))dlsym(lib, "EVP_DigestFinal_ex");
        if (md_ctx_new && md_ctx_free && md_ctx_copy_ex && evp_sha256 && digest_init_ex && digest_update && digest_final_ex) return;
        snprintf(first, sizeof first, "EVP digest functions missing from the libcrypto found");
        lib = NULL;
    }
    snprintf(load_error, sizeof load_error,
             "cannot load OpenSSL's libcrypto, needed for SHA-256 (%s); install it (Debian: apt-get install libssl3, or run tools/install-deps)", first);
}

const char *wconv_crypto_load_error(void) {
    pthread_once(&once, load);
    return lib ? NULL : load_error;
}

void *wconv_sha256_new(void) {
    if (wconv_crypto_load_error()) return NULL;
    void *ctx = md_ctx_new();
    if (ctx && digest_init_ex(ctx, evp_sha256(), NULL) != 1) { md_ctx_free(ctx); ctx = NULL; }
    return ctx;
}

void *wconv_sha256_copy(const void *ctx) {
    if (wconv_crypto_load_error() || !ctx) return NULL;
    void *c = md_ctx_new();
    if (c && md_ctx_copy_ex(c, ctx) != 1) { md_ctx_free(c); c = NULL; }
    return c;
}

void wconv_sha256_update(void *ctx, const void *data, size_t count) {
    if (ctx && count) digest_update(ctx, data, count);
}

void wconv_sha256_final(void *ctx, unsigned char out[32]) {
    unsigned int n = 0;
    if (!ctx) return;
    digest_final_ex(ctx, out, &n);
    digest_init_ex(ctx, evp_sha256(), NULL);
}

void wconv_sha256_free(void *ctx) {
    if (ctx) md_ctx_free(ctx);
}
