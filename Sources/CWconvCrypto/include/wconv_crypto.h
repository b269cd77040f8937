// SHA-256 by OpenSSL's libcrypto (Debian's libssl3 / libssl-dev), loaded with dlopen on first use:
// linked, its load and constructors cost every wconv process ≈ 1 ms of start-up (measured on
// `wconv convert`), and only commands that write a model's provenance hash anything.
#ifndef WCONV_CRYPTO_H
#define WCONV_CRYPTO_H
#include <stddef.h>

/// NULL when libcrypto is loaded, else why it could not be (with what to install).
const char *wconv_crypto_load_error(void);

/// A SHA-256 context (OpenSSL's EVP_MD_CTX), or NULL when libcrypto is missing.
void *wconv_sha256_new(void);
/// A copy of `ctx` mid-stream, or NULL.
void *wconv_sha256_copy(const void *ctx);
void wconv_sha256_update(void *ctx, const void *data, size_t count);
/// Writes the 32-byte digest; `ctx` starts over.
void wconv_sha256_final(void *ctx, unsigned char out[32]);
void wconv_sha256_free(void *ctx);

#endif
