// OpenSSL's libcrypto (Debian's libssl-dev), for SHA-256 only: its EVP digest picks the CPU's SHA
// extensions or vector code at run time.
#include <openssl/evp.h>
