// HDF5 loaded on first use (see wconv_hdf5.h): the library handles, forwarders for the functions wconv
// calls, and the id and error helpers.
#define _GNU_SOURCE
#include "wconv_hdf5.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void *lib, *hl;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *open_first(const char *const *names, size_t count, char *errors, size_t cap) {
    void *h = NULL;
    for (size_t i = 0; i < count && !h; i++) {
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h && i == 0) snprintf(errors, cap, "%s", dlerror());
    }
    return h;
}

static void load(void) {
    // Sonames of the 1.10, 1.12 and 1.14 series (serial builds are named so on Debian), then the
    // development symlinks; the version is checked below against the headers wconv was built with.
    static const char *const base[] = {"libhdf5_serial.so.103", "libhdf5.so.103", "libhdf5_serial.so.200", "libhdf5.so.200",
                                       "libhdf5_serial.so.310", "libhdf5.so.310", "libhdf5_serial.so", "libhdf5.so"};
    static const char *const high[] = {"libhdf5_serial_hl.so.100", "libhdf5_hl.so.100", "libhdf5_serial_hl.so.200", "libhdf5_hl.so.200",
                                       "libhdf5_serial_hl.so.310", "libhdf5_hl.so.310", "libhdf5_serial_hl.so", "libhdf5_hl.so"};
    char errors[256] = "";
    lib = open_first(base, sizeof base / sizeof base[0], errors, sizeof errors);
    if (lib) hl = open_first(high, sizeof high / sizeof high[0], errors, sizeof errors);
    if (!lib || !hl) {
        snprintf(load_error, sizeof load_error,
                 "cannot load HDF5, needed for Keras .h5 files (%s); install it (Debian: apt-get install libhdf5-103-1 libhdf5-hl-100, or run tools/install-deps)", errors);
        lib = hl = NULL;
        return;
    }
    unsigned major = 0, minor = 0, release = 0;
    herr_t (*version)(unsigned *, unsigned *, unsigned *) = (herr_t (*)(unsigned *, unsigned *, unsigned *))dlsym(lib, "H5get_libversion");
    if (!version || version(&major, &minor, &release) < 0 || major != H5_VERS_MAJOR || minor != H5_VERS_MINOR) {
        snprintf(load_error, sizeof load_error, "the HDF5 library found is version %u.%u.%u, but wconv was built with HDF5 %d.%d: install that version",
                 major, minor, release, H5_VERS_MAJOR, H5_VERS_MINOR);
        lib = hl = NULL;
    }
}

const char *wconv_hdf5_load_error(void) {
    pthread_once(&once, load);
    return lib ? NULL : load_error;
}

/// The address of an HDF5 symbol (NULL when HDF5 could not be loaded).
static void *symbol(const char *name) {
    if (wconv_hdf5_load_error()) return NULL;
    void *p = dlsym(lib, name);
    return p ? p : dlsym(hl, name);
}

// One forwarder per function: the library's address looked up once; a failure value (HDF5's own
// error returns) when the library is missing, so callers report it as any HDF5 failure.
#define NAME_OF(f) #f
#define FORWARD(ret, name, params, args, failure)                          \
    ret name params {                                                      \
        static ret (*fn) params;                                           \
        if (!fn) fn = (ret (*) params)symbol(NAME_OF(name));               \
        return fn ? fn args : (ret)(failure);                              \
    }

FORWARD(herr_t, H5Aclose, (hid_t attr_id), (attr_id), -1)
FORWARD(hid_t, H5Acreate2, (hid_t loc_id, const char *attr_name, hid_t type_id, hid_t space_id, hid_t acpl_id, hid_t aapl_id), (loc_id, attr_name, type_id, space_id, acpl_id, aapl_id), -1)
FORWARD(htri_t, H5Aexists, (hid_t obj_id, const char *attr_name), (obj_id, attr_name), -1)
FORWARD(hid_t, H5Aget_space, (hid_t attr_id), (attr_id), -1)
FORWARD(hid_t, H5Aget_type, (hid_t attr_id), (attr_id), -1)
FORWARD(hid_t, H5Aopen, (hid_t obj_id, const char *attr_name, hid_t aapl_id), (obj_id, attr_name, aapl_id), -1)
FORWARD(herr_t, H5Aread, (hid_t attr_id, hid_t type_id, void *buf), (attr_id, type_id, buf), -1)
FORWARD(herr_t, H5Awrite, (hid_t attr_id, hid_t type_id, const void *buf), (attr_id, type_id, buf), -1)
FORWARD(herr_t, H5Dclose, (hid_t dset_id), (dset_id), -1)
FORWARD(hid_t, H5Dcreate2, (hid_t loc_id, const char *name, hid_t type_id, hid_t space_id, hid_t lcpl_id, hid_t dcpl_id, hid_t dapl_id), (loc_id, name, type_id, space_id, lcpl_id, dcpl_id, dapl_id), -1)
FORWARD(hid_t, H5Dget_space, (hid_t dset_id), (dset_id), -1)
FORWARD(hsize_t, H5Dget_storage_size, (hid_t dset_id), (dset_id), 0)
FORWARD(hid_t, H5Dget_type, (hid_t dset_id), (dset_id), -1)
FORWARD(hid_t, H5Dopen2, (hid_t loc_id, const char *name, hid_t dapl_id), (loc_id, name, dapl_id), -1)
FORWARD(herr_t, H5Dread, (hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id, hid_t dxpl_id, void *buf), (dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf), -1)
FORWARD(herr_t, H5Dvlen_reclaim, (hid_t type_id, hid_t space_id, hid_t dxpl_id, void *buf), (type_id, space_id, dxpl_id, buf), -1)
FORWARD(herr_t, H5Dwrite, (hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id, hid_t dxpl_id, const void *buf), (dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf), -1)
FORWARD(herr_t, H5Eclear2, (hid_t err_stack), (err_stack), -1)
FORWARD(herr_t, H5Eset_auto2, (hid_t estack_id, H5E_auto2_t func, void *client_data), (estack_id, func, client_data), -1)
FORWARD(herr_t, H5Ewalk2, (hid_t err_stack, H5E_direction_t direction, H5E_walk2_t func, void *client_data), (err_stack, direction, func, client_data), -1)
FORWARD(herr_t, H5Fclose, (hid_t file_id), (file_id), -1)
FORWARD(hid_t, H5Fcreate, (const char *filename, unsigned flags, hid_t fcpl_id, hid_t fapl_id), (filename, flags, fcpl_id, fapl_id), -1)
FORWARD(herr_t, H5Fflush, (hid_t object_id, H5F_scope_t scope), (object_id, scope), -1)
FORWARD(hid_t, H5Fopen, (const char *filename, unsigned flags, hid_t fapl_id), (filename, flags, fapl_id), -1)
FORWARD(herr_t, H5Gclose, (hid_t group_id), (group_id), -1)
FORWARD(hid_t, H5Gcreate2, (hid_t loc_id, const char *name, hid_t lcpl_id, hid_t gcpl_id, hid_t gapl_id), (loc_id, name, lcpl_id, gcpl_id, gapl_id), -1)
FORWARD(herr_t, H5Gget_info, (hid_t loc_id, H5G_info_t *ginfo), (loc_id, ginfo), -1)
FORWARD(hid_t, H5Gopen2, (hid_t loc_id, const char *name, hid_t gapl_id), (loc_id, name, gapl_id), -1)
FORWARD(H5I_type_t, H5Iget_type, (hid_t id), (id), H5I_BADID)
FORWARD(hid_t, H5LTopen_file_image, (void *buf_ptr, size_t buf_size, unsigned flags), (buf_ptr, buf_size, flags), -1)
FORWARD(htri_t, H5Lexists, (hid_t loc_id, const char *name, hid_t lapl_id), (loc_id, name, lapl_id), -1)
FORWARD(herr_t, H5Lget_info, (hid_t loc_id, const char *name, H5L_info_t *linfo, hid_t lapl_id), (loc_id, name, linfo, lapl_id), -1)
FORWARD(ssize_t, H5Lget_name_by_idx, (hid_t loc_id, const char *group_name, H5_index_t idx_type, H5_iter_order_t order, hsize_t n, char *name , size_t size, hid_t lapl_id), (loc_id, group_name, idx_type, order, n, name, size, lapl_id), -1)
FORWARD(herr_t, H5Oclose, (hid_t object_id), (object_id), -1)
FORWARD(hid_t, H5Oopen, (hid_t loc_id, const char *name, hid_t lapl_id), (loc_id, name, lapl_id), -1)
FORWARD(herr_t, H5Pclose, (hid_t plist_id), (plist_id), -1)
FORWARD(hid_t, H5Pcreate, (hid_t cls_id), (cls_id), -1)
FORWARD(herr_t, H5Pset_create_intermediate_group, (hid_t plist_id, unsigned crt_intmd), (plist_id, crt_intmd), -1)
FORWARD(herr_t, H5Pset_elink_cb, (hid_t lapl_id, H5L_elink_traverse_t func, void *op_data), (lapl_id, func, op_data), -1)
FORWARD(herr_t, H5Sclose, (hid_t space_id), (space_id), -1)
FORWARD(hid_t, H5Screate, (H5S_class_t type), (type), -1)
FORWARD(hid_t, H5Screate_simple, (int rank, const hsize_t dims[], const hsize_t maxdims[]), (rank, dims, maxdims), -1)
FORWARD(int, H5Sget_simple_extent_dims, (hid_t space_id, hsize_t dims[], hsize_t maxdims[]), (space_id, dims, maxdims), -1)
FORWARD(int, H5Sget_simple_extent_ndims, (hid_t space_id), (space_id), -1)
FORWARD(hssize_t, H5Sget_simple_extent_npoints, (hid_t space_id), (space_id), -1)
FORWARD(H5S_class_t, H5Sget_simple_extent_type, (hid_t space_id), (space_id), H5S_NO_CLASS)
FORWARD(herr_t, H5Tclose, (hid_t type_id), (type_id), -1)
FORWARD(hid_t, H5Tcopy, (hid_t type_id), (type_id), -1)
FORWARD(H5T_class_t, H5Tget_class, (hid_t type_id), (type_id), H5T_NO_CLASS)
FORWARD(H5T_cset_t, H5Tget_cset, (hid_t type_id), (type_id), H5T_CSET_ERROR)
FORWARD(herr_t, H5Tget_fields, (hid_t type_id, size_t *spos , size_t *epos , size_t *esize , size_t *mpos , size_t *msize), (type_id, spos, epos, esize, mpos, msize), -1)
FORWARD(H5T_order_t, H5Tget_order, (hid_t type_id), (type_id), H5T_ORDER_ERROR)
FORWARD(H5T_sign_t, H5Tget_sign, (hid_t type_id), (type_id), H5T_SGN_ERROR)
FORWARD(size_t, H5Tget_size, (hid_t type_id), (type_id), 0)
FORWARD(htri_t, H5Tis_variable_str, (hid_t type_id), (type_id), -1)
FORWARD(herr_t, H5Tset_cset, (hid_t type_id, H5T_cset_t cset), (type_id, cset), -1)
FORWARD(herr_t, H5Tset_order, (hid_t type_id, H5T_order_t order), (type_id, order), -1)
FORWARD(herr_t, H5Tset_size, (hid_t type_id, size_t size), (type_id, size), -1)
FORWARD(herr_t, H5Tset_strpad, (hid_t type_id, H5T_str_t strpad), (type_id, strpad), -1)
FORWARD(herr_t, H5get_libversion, (unsigned *majnum, unsigned *minnum, unsigned *relnum), (majnum, minnum, relnum), -1)
FORWARD(herr_t, H5open, (void), (), -1)


// The ids behind HDF5's type and property-list macros are globals of the library, set by H5open
// (which the macros call first, here through its forwarder).
static hid_t global_id(const char *name) {
    hid_t *p = (hid_t *)symbol(name);
    return p ? *p : -1;
}
#define ID(g) global_id(#g)
#undef H5OPEN
#define H5OPEN H5open(),
// H5check_version aborts the process on any release mismatch; `load` compares major and minor
// (releases within a minor series keep the ABI) and refuses with a message instead.
#undef H5CHECK
#define H5CHECK
#define H5T_NATIVE_FLOAT_g ID(H5T_NATIVE_FLOAT_g)
#define H5T_NATIVE_DOUBLE_g ID(H5T_NATIVE_DOUBLE_g)
#define H5T_NATIVE_INT64_g ID(H5T_NATIVE_INT64_g)
#define H5T_NATIVE_INT32_g ID(H5T_NATIVE_INT32_g)
#define H5T_NATIVE_INT8_g ID(H5T_NATIVE_INT8_g)
#define H5T_NATIVE_UINT8_g ID(H5T_NATIVE_UINT8_g)
#define H5T_NATIVE_INT16_g ID(H5T_NATIVE_INT16_g)
#define H5T_NATIVE_UINT16_g ID(H5T_NATIVE_UINT16_g)
#define H5T_NATIVE_UINT32_g ID(H5T_NATIVE_UINT32_g)
#define H5T_NATIVE_UINT64_g ID(H5T_NATIVE_UINT64_g)
#define H5T_C_S1_g ID(H5T_C_S1_g)
#define H5T_IEEE_F32LE_g ID(H5T_IEEE_F32LE_g)
#define H5T_IEEE_F64LE_g ID(H5T_IEEE_F64LE_g)
#define H5T_STD_I64LE_g ID(H5T_STD_I64LE_g)
#define H5T_STD_I32LE_g ID(H5T_STD_I32LE_g)
#define H5P_CLS_FILE_ACCESS_ID_g ID(H5P_CLS_FILE_ACCESS_ID_g)
#define H5P_CLS_DATASET_CREATE_ID_g ID(H5P_CLS_DATASET_CREATE_ID_g)
#define H5P_CLS_LINK_CREATE_ID_g ID(H5P_CLS_LINK_CREATE_ID_g)
#define H5P_CLS_LINK_ACCESS_ID_g ID(H5P_CLS_LINK_ACCESS_ID_g)
#define H5P_CLS_GROUP_ACCESS_ID_g ID(H5P_CLS_GROUP_ACCESS_ID_g)
#define H5P_CLS_DATASET_ACCESS_ID_g ID(H5P_CLS_DATASET_ACCESS_ID_g)

hid_t wconv_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t wconv_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t wconv_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t wconv_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
hid_t wconv_h5t_c_s1(void) { return H5T_C_S1; }
hid_t wconv_h5p_default(void) { return H5P_DEFAULT; }
hid_t wconv_h5s_all(void) { return H5S_ALL; }
hid_t wconv_h5p_file_access(void) { return H5P_FILE_ACCESS; }
hid_t wconv_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
hid_t wconv_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
hid_t wconv_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
hid_t wconv_h5t_native_int16(void) { return H5T_NATIVE_INT16; }
hid_t wconv_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
hid_t wconv_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
hid_t wconv_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
hid_t wconv_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
hid_t wconv_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
hid_t wconv_h5t_std_i64le(void) { return H5T_STD_I64LE; }
hid_t wconv_h5t_std_i32le(void) { return H5T_STD_I32LE; }
size_t wconv_h5t_variable(void) { return H5T_VARIABLE; }
unsigned wconv_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned wconv_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
unsigned wconv_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
hid_t wconv_h5p_link_create(void) { return H5P_LINK_CREATE; }
hid_t wconv_h5e_default(void) { return H5E_DEFAULT; }

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
size_t wconv_h5e_take_text(char *buf, size_t cap) {
    wconv_h5_errtext t = { buf, cap, 0 };
    if (cap) buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, wconv_h5e_walk_cb, &t);
    H5Eclear2(H5E_DEFAULT);
    return t.len;
}
/// Turns off HDF5's printing of error stacks to stderr; wconv reports them in its own messages.
void wconv_h5e_silence(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// External links make HDF5 open other files named inside an untrusted file; wconv refuses to
// follow them. Property lists (link, group and dataset access all derive from link access) whose
// external-link callback fails the traversal.
static herr_t wconv_h5_deny_elink(const char *parent_file, const char *parent_group, const char *child_file,
                                  const char *child_object, unsigned *acc_flags, hid_t fapl, void *data) {
    (void)parent_file; (void)parent_group; (void)child_file; (void)child_object; (void)acc_flags; (void)fapl; (void)data;
    return -1;
}
hid_t wconv_h5p_no_external_links(int kind) {
    hid_t cls = kind == 0 ? H5P_LINK_ACCESS : kind == 1 ? H5P_GROUP_ACCESS : H5P_DATASET_ACCESS;
    hid_t p = H5Pcreate(cls);
    if (p >= 0 && H5Pset_elink_cb(p, wconv_h5_deny_elink, NULL) < 0) { H5Pclose(p); return -1; }
    return p;
}

// Opens a read-only HDF5 file image in place: HDF5 reads the caller's buffer without copying it
// and never frees it (the caller keeps it alive until the file and all its objects are closed).
hid_t wconv_h5_open_image_in_place(const void *buf, size_t size) {
    return H5LTopen_file_image((void *)buf, size, H5LT_FILE_IMAGE_DONT_COPY | H5LT_FILE_IMAGE_DONT_RELEASE);
}
