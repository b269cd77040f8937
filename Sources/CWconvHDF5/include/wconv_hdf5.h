// HDF5 (the Keras .h5 reader and writer), loaded with dlopen on first use. Linked normally, libhdf5
// and its dependencies (libcurl, TLS, Kerberos, LDAP: ~30 libraries) were loaded and relocated at
// the start of every wconv command, ~4.5 ms of `wconv convert`'s ~20 ms start-up (issue 9). The HDF5
// functions wconv calls are defined in wconv_hdf5.c as forwarders to the library's, so Swift calls
// them under their own names and types from these headers.
#ifndef WCONV_HDF5_H
#define WCONV_HDF5_H

#if __has_include(<hdf5/serial/hdf5.h>)  // Debian and Ubuntu's libhdf5-dev
#include <hdf5/serial/hdf5.h>
#include <hdf5/serial/H5LTpublic.h>
#else
#include <hdf5.h>
#include <H5LTpublic.h>
#endif
#include <stddef.h>

/// Loads HDF5 if needed; NULL when it is usable, else why not (missing library, other version).
const char *wconv_hdf5_load_error(void);

// HDF5's type and property-list ids (H5T_NATIVE_FLOAT, H5P_DEFAULT, ...) are macros that expand to
// function calls or globals Swift cannot import; these functions expose them.
hid_t wconv_h5t_native_float(void);
hid_t wconv_h5t_native_double(void);
hid_t wconv_h5t_native_int64(void);
hid_t wconv_h5t_native_int32(void);
hid_t wconv_h5t_c_s1(void);
hid_t wconv_h5p_default(void);
hid_t wconv_h5s_all(void);
hid_t wconv_h5p_file_access(void);
hid_t wconv_h5p_dataset_create(void);
hid_t wconv_h5t_native_int8(void);
hid_t wconv_h5t_native_uint8(void);
hid_t wconv_h5t_native_int16(void);
hid_t wconv_h5t_native_uint16(void);
hid_t wconv_h5t_native_uint32(void);
hid_t wconv_h5t_native_uint64(void);
hid_t wconv_h5t_ieee_f32le(void);
hid_t wconv_h5t_ieee_f64le(void);
hid_t wconv_h5t_std_i64le(void);
hid_t wconv_h5t_std_i32le(void);
size_t wconv_h5t_variable(void);
unsigned wconv_h5f_acc_rdonly(void);
unsigned wconv_h5f_acc_excl(void);
unsigned wconv_h5f_acc_trunc(void);
hid_t wconv_h5p_link_create(void);
hid_t wconv_h5e_default(void);

/// Copies the current thread's HDF5 error stack (innermost last) into buf and clears it.
size_t wconv_h5e_take_text(char *buf, size_t cap);
/// Turns off HDF5's printing of error stacks to stderr; wconv reports them in its own messages.
void wconv_h5e_silence(void);
/// A link (kind 0), group (1) or dataset (2) access property list whose external-link callback fails
/// the traversal: external links make HDF5 open other files named inside an untrusted file.
hid_t wconv_h5p_no_external_links(int kind);
/// Opens a read-only HDF5 file image in place: HDF5 reads the caller's buffer without copying it
/// and never frees it (the caller keeps it alive until the file and all its objects are closed).
hid_t wconv_h5_open_image_in_place(const void *buf, size_t size);

#endif
