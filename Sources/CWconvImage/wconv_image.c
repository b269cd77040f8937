// PNG and JPEG codec for the data pipeline. libpng and libjpeg report errors by longjmp, which
// Swift cannot catch, so this file owns every setjmp and turns errors into messages. Every size
// from a header is checked before allocation: at most WCONV_IMAGE_MAX_PIXELS pixels, and no more
// decoded bytes than the compressed size could justify (deflate tops out near 1032:1; JPEG gets a
// generous 2048:1 plus a fixed allowance, and at most 1000 progressive scans).
#include "wconv_image.h"

#include <png.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_error(char *error, size_t error_len, const char *fmt, ...) {
    if (error == NULL || error_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, error_len, fmt, ap);
    va_end(ap);
}

// Decoded bytes a compressed stream of `len` bytes may justify.
static size_t budget(size_t len, size_t ratio) {
    size_t fixed = (size_t)16 << 20;
    if (len > (SIZE_MAX - fixed) / ratio) return SIZE_MAX;
    return len * ratio + fixed;
}

// ---------------------------------------------------------------- PNG decode

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
    char message[256];
    uint8_t *pixels;       // owned until handed to the caller
    png_bytep *rows;
} png_ctx;

static void png_read_mem(png_structp png, png_bytep out, png_size_t count) {
    png_ctx *ctx = (png_ctx *)png_get_io_ptr(png);
    if (count > ctx->len - ctx->pos) {
        snprintf(ctx->message, sizeof ctx->message, "PNG truncated: needs %zu bytes at offset %zu but the file has %zu",
                 (size_t)count, ctx->pos, ctx->len);
        png_longjmp(png, 1);
    }
    memcpy(out, ctx->data + ctx->pos, count);
    ctx->pos += count;
}

static void png_error_fn(png_structp png, png_const_charp msg) {
    png_ctx *ctx = (png_ctx *)png_get_error_ptr(png);
    if (ctx->message[0] == 0) snprintf(ctx->message, sizeof ctx->message, "PNG: %s", msg);
    png_longjmp(png, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static int decode_png(const uint8_t *bytes, size_t len, wconv_image *out, char *error, size_t error_len) {
    // Heap context: nothing the longjmp path reads lives in a non-volatile local modified after setjmp.
    png_ctx *ctx = (png_ctx *)calloc(1, sizeof(png_ctx));
    if (!ctx) { set_error(error, error_len, "PNG: out of memory"); return 1; }
    ctx->data = bytes;
    ctx->len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_error_fn, png_warning_fn);
    if (!png) { free(ctx); set_error(error, error_len, "PNG: out of memory"); return 1; }
    png_infop info = png_create_info_struct(png);
    if (!info) { png_destroy_read_struct(&png, NULL, NULL); free(ctx); set_error(error, error_len, "PNG: out of memory"); return 1; }
    if (setjmp(png_jmpbuf(png))) {
        set_error(error, error_len, "%s", ctx->message[0] ? ctx->message : "PNG: decode failed");
        free(ctx->pixels);
        free(ctx->rows);
        png_destroy_read_struct(&png, &info, NULL);
        free(ctx);
        return 1;
    }
    png_set_read_fn(png, ctx, png_read_mem);
    png_set_user_limits(png, 1u << 20, 1u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int bit_depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
    int channels = png_get_channels(png, info);
    if (w == 0 || h == 0 || (uint64_t)w * h > WCONV_IMAGE_MAX_PIXELS) {
        snprintf(ctx->message, sizeof ctx->message, "PNG: image size %ux%u refused (limit %u pixels)", w, h, WCONV_IMAGE_MAX_PIXELS);
        png_longjmp(png, 1);
    }
    uint64_t raw = ((uint64_t)w * (uint64_t)channels * (uint64_t)bit_depth + 7) / 8 * h;
    if (raw > budget(len, 1100)) {
        snprintf(ctx->message, sizeof ctx->message,
                 "PNG: header claims %ux%u (%llu raw bytes) but the file has only %zu bytes: refused as a decompression bomb",
                 w, h, (unsigned long long)raw, len);
        png_longjmp(png, 1);
    }
    // Everything to 8-bit RGB: expand palette and low-bit gray, fold tRNS into alpha, then drop alpha.
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8) {
        snprintf(ctx->message, sizeof ctx->message, "PNG: unsupported colour type %d / bit depth %d", color, bit_depth);
        png_longjmp(png, 1);
    }
    size_t stride = (size_t)w * 3;
    ctx->pixels = (uint8_t *)malloc(stride * h);
    ctx->rows = (png_bytep *)malloc(sizeof(png_bytep) * h);
    if (!ctx->pixels || !ctx->rows) {
        snprintf(ctx->message, sizeof ctx->message, "PNG: out of memory for %ux%u pixels", w, h);
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) ctx->rows[y] = ctx->pixels + (size_t)y * stride;
    png_read_image(png, ctx->rows);
    png_read_end(png, NULL);
    free(ctx->rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)w;
    out->height = (int)h;
    out->channels = 3;
    out->pixels = ctx->pixels;
    free(ctx);
    return 0;
}

// ---------------------------------------------------------------- JPEG decode

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 16];
} jpeg_err;

typedef struct {
    struct jpeg_progress_mgr pub;
    jpeg_err *err;
} jpeg_progress;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_err *err = (jpeg_err *)cinfo->err;
    if (err->message[0] == 0) {
        char buf[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, buf);
        snprintf(err->message, sizeof err->message, "JPEG: %s", buf);
    }
    longjmp(err->jump, 1);
}

static void jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

// Progressive JPEGs can hold thousands of tiny scans that each cost a full pass: cap them.
static void jpeg_progress_monitor(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > 1000) {
        jpeg_progress *p = (jpeg_progress *)cinfo->progress;
        snprintf(p->err->message, sizeof p->err->message, "JPEG: more than 1000 progressive scans: refused as a decompression bomb");
        longjmp(p->err->jump, 1);
    }
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    jpeg_progress progress;
    uint8_t *pixels;
    uint8_t *row;
} jpeg_ctx;

static int decode_jpeg(const uint8_t *bytes, size_t len, wconv_image *out, char *error, size_t error_len) {
    // Heap context: nothing the longjmp path touches lives in a non-volatile local.
    jpeg_ctx *ctx = (jpeg_ctx *)calloc(1, sizeof(jpeg_ctx));
    if (!ctx) { set_error(error, error_len, "JPEG: out of memory"); return 1; }
    ctx->cinfo.err = jpeg_std_error(&ctx->err.pub);
    ctx->err.pub.error_exit = jpeg_error_exit;
    ctx->err.pub.output_message = jpeg_output_message;
    if (setjmp(ctx->err.jump)) {
        set_error(error, error_len, "%s", ctx->err.message[0] ? ctx->err.message : "JPEG: decode failed");
        jpeg_destroy_decompress(&ctx->cinfo);
        free(ctx->pixels);
        free(ctx->row);
        free(ctx);
        return 1;
    }
    jpeg_create_decompress(&ctx->cinfo);
    ctx->progress.pub.progress_monitor = jpeg_progress_monitor;
    ctx->progress.err = &ctx->err;
    ctx->cinfo.progress = &ctx->progress.pub;
    ctx->cinfo.mem->max_memory_to_use = (long)1 << 30;
    jpeg_mem_src(&ctx->cinfo, (const unsigned char *)bytes, (unsigned long)len);
    jpeg_read_header(&ctx->cinfo, TRUE);
    struct jpeg_decompress_struct *ci = &ctx->cinfo;
    uint64_t w = ci->image_width, h = ci->image_height;
    if (w == 0 || h == 0 || w * h > WCONV_IMAGE_MAX_PIXELS) {
        snprintf(ctx->err.message, sizeof ctx->err.message, "JPEG: image size %llux%llu refused (limit %u pixels)",
                 (unsigned long long)w, (unsigned long long)h, WCONV_IMAGE_MAX_PIXELS);
        longjmp(ctx->err.jump, 1);
    }
    if (w * h * 3 > budget(len, 2048)) {
        snprintf(ctx->err.message, sizeof ctx->err.message,
                 "JPEG: header claims %llux%llu but the file has only %zu bytes: refused as a decompression bomb",
                 (unsigned long long)w, (unsigned long long)h, len);
        longjmp(ctx->err.jump, 1);
    }
    int cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    // libjpeg-turbo converts gray and YCbCr to RGB itself; CMYK/YCCK come out as CMYK and are
    // converted below the way PIL does.
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    // PIL's default IDCT is the slow-integer one too; keep libjpeg's default (JDCT_ISLOW) and fancy upsampling.
    jpeg_start_decompress(ci);
    int comps = ci->output_components;
    if ((cmyk && comps != 4) || (!cmyk && comps != 3)) {
        snprintf(ctx->err.message, sizeof ctx->err.message, "JPEG: unexpected %d output components", comps);
        longjmp(ctx->err.jump, 1);
    }
    size_t W = ci->output_width, H = ci->output_height;
    ctx->pixels = (uint8_t *)malloc(W * H * 3);
    ctx->row = (uint8_t *)malloc(W * (size_t)comps);
    if (!ctx->pixels || !ctx->row) {
        snprintf(ctx->err.message, sizeof ctx->err.message, "JPEG: out of memory for %zux%zu pixels", W, H);
        longjmp(ctx->err.jump, 1);
    }
    // Photoshop writes Adobe CMYK inverted (saw_Adobe_marker); PIL reads it as "CMYK;I".
    int inverted = ci->saw_Adobe_marker;
    while (ci->output_scanline < H) {
        size_t y = ci->output_scanline;
        JSAMPROW rowp = ctx->row;
        if (jpeg_read_scanlines(ci, &rowp, 1) != 1) {
            snprintf(ctx->err.message, sizeof ctx->err.message, "JPEG: truncated at scanline %zu of %zu", y, H);
            longjmp(ctx->err.jump, 1);
        }
        uint8_t *dst = ctx->pixels + y * W * 3;
        if (!cmyk) {
            memcpy(dst, ctx->row, W * 3);
        } else {
            for (size_t x = 0; x < W; x++) {
                unsigned c = ctx->row[4 * x], m = ctx->row[4 * x + 1], yy = ctx->row[4 * x + 2], k = ctx->row[4 * x + 3];
                if (!inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
                // Now c,m,y,k hold 255 - ink; rgb = (255-ink)(255-k)/255, rounded.
                dst[3 * x] = (uint8_t)((c * k + 127) / 255);
                dst[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                dst[3 * x + 2] = (uint8_t)((yy * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(ci);
    jpeg_destroy_decompress(ci);
    out->width = (int)W;
    out->height = (int)H;
    out->channels = 3;
    out->pixels = ctx->pixels;
    free(ctx->row);
    free(ctx);
    return 0;
}

int wconv_image_decode(const uint8_t *bytes, size_t len, wconv_image *out, char *error, size_t error_len) {
    if (out == NULL) return 1;
    memset(out, 0, sizeof *out);
    if (error && error_len) error[0] = 0;
    if (bytes == NULL || len < 8) {
        set_error(error, error_len, "too short to be a PNG or JPEG (%zu bytes)", len);
        return 1;
    }
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (memcmp(bytes, png_sig, 8) == 0) return decode_png(bytes, len, out, error, error_len);
    if (bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return decode_jpeg(bytes, len, out, error, error_len);
    set_error(error, error_len, "not a PNG or JPEG (first bytes %02x %02x %02x %02x)", bytes[0], bytes[1], bytes[2], bytes[3]);
    return 1;
}

void wconv_image_free(wconv_image *img) {
    if (img == NULL) return;
    free(img->pixels);
    img->pixels = NULL;
}

// ---------------------------------------------------------------- PNG encode

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed;
    char message[256];
} png_wbuf;

static void png_write_mem(png_structp png, png_bytep data, png_size_t count) {
    png_wbuf *b = (png_wbuf *)png_get_io_ptr(png);
    if (b->len + count > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + count) cap *= 2;
        uint8_t *p = (uint8_t *)realloc(b->data, cap);
        if (!p) {
            snprintf(b->message, sizeof b->message, "PNG encode: out of memory");
            png_longjmp(png, 1);
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, count);
    b->len += count;
}

static void png_flush_mem(png_structp png) { (void)png; }

static void png_werror_fn(png_structp png, png_const_charp msg) {
    png_wbuf *b = (png_wbuf *)png_get_error_ptr(png);
    if (b->message[0] == 0) snprintf(b->message, sizeof b->message, "PNG encode: %s", msg);
    png_longjmp(png, 1);
}

int wconv_png_encode(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *out_len, char *error, size_t error_len) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!rgb || !out || !out_len || width <= 0 || height <= 0 || (uint64_t)width * height > WCONV_IMAGE_MAX_PIXELS) {
        set_error(error, error_len, "PNG encode: invalid image %dx%d", width, height);
        return 1;
    }
    png_wbuf *b = (png_wbuf *)calloc(1, sizeof(png_wbuf));
    if (!b) { set_error(error, error_len, "PNG encode: out of memory"); return 1; }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, b, png_werror_fn, png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        if (png) png_destroy_write_struct(&png, NULL);
        free(b);
        set_error(error, error_len, "PNG encode: out of memory");
        return 1;
    }
    if (setjmp(png_jmpbuf(png))) {
        set_error(error, error_len, "%s", b->message[0] ? b->message : "PNG encode failed");
        png_destroy_write_struct(&png, &info);
        free(b->data);
        free(b);
        return 1;
    }
    png_set_write_fn(png, b, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = b->data;
    *out_len = b->len;
    free(b);
    return 0;
}
