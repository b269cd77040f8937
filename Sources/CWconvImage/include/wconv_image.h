#ifndef WCONV_IMAGE_H
#define WCONV_IMAGE_H
#include <stddef.h>
#include <stdint.h>

/// Decoded 8-bit image, interleaved RGB (channels == 3). Free with wconv_image_free.
typedef struct {
    int width;
    int height;
    int channels;
    uint8_t *pixels;
} wconv_image;

/// Largest image the decoder accepts, in pixels (width × height). Bigger headers are refused
/// before any pixel buffer is allocated.
#define WCONV_IMAGE_MAX_PIXELS (1u << 28)

/// Decodes a PNG or JPEG held in memory into RGB8 (palette, gray, 16-bit and alpha PNGs; gray,
/// YCbCr, CMYK and YCCK JPEGs). Alpha is dropped as PIL's convert('RGB') does. Returns 0 on
/// success; on failure (corrupt, truncated, unsupported or too large) returns nonzero, leaves
/// `out->pixels` NULL and writes a message to `error` (at most error_len bytes, NUL-terminated).
/// Never aborts the process: libpng/libjpeg errors come back through setjmp/longjmp.
int wconv_image_decode(const uint8_t *bytes, size_t len, wconv_image *out, char *error, size_t error_len);
void wconv_image_free(wconv_image *img);
/// Encodes RGB8 as PNG into a malloc'd buffer (caller frees with free()). Returns 0 on success.
int wconv_png_encode(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *out_len, char *error, size_t error_len);
#endif
