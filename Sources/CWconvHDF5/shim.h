#include <hdf5.h>
#include <H5LTpublic.h>
#include <string.h>
// HDF5's type and property-list ids (H5T_NATIVE_FLOAT, H5P_DEFAULT, ...) are macros that
// expand to function calls or globals Swift cannot import; these inline functions expose them.
static inline hid_t wconv_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t wconv_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t wconv_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t wconv_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t wconv_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t wconv_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t wconv_h5s_all(void) { return H5S_ALL; }
static inline hid_t wconv_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t wconv_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }

// Added for the Keras/HDF5 reader and writer.
static inline hid_t wconv_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t wconv_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t wconv_h5t_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t wconv_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t wconv_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t wconv_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t wconv_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t wconv_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
static inline hid_t wconv_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t wconv_h5t_std_i32le(void) { return H5T_STD_I32LE; }
static inline size_t wconv_h5t_variable(void) { return H5T_VARIABLE; }
static inline unsigned wconv_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned wconv_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned wconv_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline hid_t wconv_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t wconv_h5e_default(void) { return H5E_DEFAULT; }

// The error stack is walked by a C callback that appends each record's function and
// description to a caller buffer, so Swift needs no @convention(c) closure with context.
typedef struct { char *buf; size_t cap; size_t len; } wconv_h5_errtext;
static herr_t wconv_h5e_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    wconv_h5_errtext *t = (wconv_h5_errtext *)data;
    const char *parts[4] = { t->len ? "; " : "", e->func_name ? e->func_name : "?", ": ", e->desc ? e->desc : "" };
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(parts[i]);
        if (t->len + l + 1 > t->cap) l = t->cap > t->len + 1 ? t->cap - t->len - 1 : 0;
        memcpy(t->buf + t->len, parts[i], l);
        t->len += l;
        t->buf[t->len] = 0;
    }
    (void)n;
    return 0;
}
/// Copies the current thread's HDF5 error stack (innermost last) into buf and clears it.
static inline size_t wconv_h5e_take_text(char *buf, size_t cap) {
    wconv_h5_errtext t = { buf, cap, 0 };
    if (cap) buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, wconv_h5e_walk_cb, &t);
    H5Eclear2(H5E_DEFAULT);
    return t.len;
}
/// Turns off HDF5's printing of error stacks to stderr; wconv reports them in its own messages.
static inline void wconv_h5e_silence(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// External links make HDF5 open other files named inside an untrusted file; wconv refuses to
// follow them. Property lists (link, group and dataset access all derive from link access) whose
// external-link callback fails the traversal.
static herr_t wconv_h5_deny_elink(const char *parent_file, const char *parent_group, const char *child_file,
                                  const char *child_object, unsigned *acc_flags, hid_t fapl, void *data) {
    (void)parent_file; (void)parent_group; (void)child_file; (void)child_object; (void)acc_flags; (void)fapl; (void)data;
    return -1;
}
static inline hid_t wconv_h5p_no_external_links(int kind) {
    hid_t cls = kind == 0 ? H5P_LINK_ACCESS : kind == 1 ? H5P_GROUP_ACCESS : H5P_DATASET_ACCESS;
    hid_t p = H5Pcreate(cls);
    if (p >= 0 && H5Pset_elink_cb(p, wconv_h5_deny_elink, NULL) < 0) { H5Pclose(p); return -1; }
    return p;
}

// Opens a read-only HDF5 file image in place: HDF5 reads the caller's buffer without copying it
// and never frees it (the caller keeps it alive until the file and all its objects are closed).
static inline hid_t wconv_h5_open_image_in_place(const void *buf, size_t size) {
    return H5LTopen_file_image((void *)buf, size, H5LT_FILE_IMAGE_DONT_COPY | H5LT_FILE_IMAGE_DONT_RELEASE);
}
