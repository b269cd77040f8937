// Open MPI loaded on first use (see wconv_mpi.h). Calls go through the library's addresses, looked
// up by name; the predefined handles are the library's globals, looked up the same way.
#define _GNU_SOURCE
#include "wconv_mpi.h"

#define OMPI_SKIP_MPICXX 1
#if __has_include(<openmpi/mpi.h>)  // Debian and Ubuntu's libopenmpi-dev (multiarch include dir)
#include <openmpi/mpi.h>
#else
#include <mpi.h>
#endif

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static void *lib;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    // RTLD_GLOBAL: Open MPI's components (plugins it dlopens itself) resolve libmpi's symbols.
    static const char *const names[] = {"libmpi.so.40", "libmpi.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load Open MPI (%s); install it (Debian: apt-get install libopenmpi3 openmpi-bin, or run tools/install-deps)", dlerror());
    }
}

static int loaded(void) {
    pthread_once(&once, load);
    return lib != NULL;
}

static void *symbol(const char *name) { return loaded() ? dlsym(lib, name) : NULL; }

// A call through the library's address, typed from mpi.h's declaration (typeof does not reference
// the symbol, so nothing links against libmpi).
#define CALL(name, ...) ((__typeof__(&name))symbol(#name))(__VA_ARGS__)
// The handles are addresses of the library's predefined objects.
#define ompi_mpi_comm_world (*(struct ompi_predefined_communicator_t *)symbol("ompi_mpi_comm_world"))
#define ompi_mpi_errors_return (*(struct ompi_predefined_errhandler_t *)symbol("ompi_mpi_errors_return"))
#define ompi_mpi_op_sum (*(struct ompi_predefined_op_t *)symbol("ompi_mpi_op_sum"))
#define ompi_mpi_float (*(struct ompi_predefined_datatype_t *)symbol("ompi_mpi_float"))
#define ompi_mpi_double (*(struct ompi_predefined_datatype_t *)symbol("ompi_mpi_double"))
#define ompi_mpi_byte (*(struct ompi_predefined_datatype_t *)symbol("ompi_mpi_byte"))

int wconv_mpi_init(int *rank, int *size) {
    if (!loaded()) return MPI_ERR_OTHER;
    int provided = 0;
    int rc = CALL(MPI_Init_thread, NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    rc = CALL(MPI_Comm_set_errhandler, MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) return rc;
    rc = CALL(MPI_Comm_rank, MPI_COMM_WORLD, rank);
    if (rc != MPI_SUCCESS) return rc;
    return CALL(MPI_Comm_size, MPI_COMM_WORLD, size);
}

int wconv_mpi_initialized(void) {
    int flag = 0;
    if (lib) CALL(MPI_Initialized, &flag);
    return flag;
}

int wconv_mpi_finalized(void) {
    int flag = 1;
    if (lib) CALL(MPI_Finalized, &flag);
    return flag;
}

int wconv_mpi_finalize(void) { return lib ? CALL(MPI_Finalize) : MPI_SUCCESS; }

int wconv_mpi_abort(int code) { return lib ? CALL(MPI_Abort, MPI_COMM_WORLD, code) : MPI_SUCCESS; }

int wconv_mpi_allreduce_sum_float(float *buf, int count) {
    return CALL(MPI_Allreduce, MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

int wconv_mpi_allreduce_sum_double(double *buf, int count) {
    return CALL(MPI_Allreduce, MPI_IN_PLACE, buf, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

int wconv_mpi_bcast(void *buf, int bytes, int root) { return CALL(MPI_Bcast, buf, bytes, MPI_BYTE, root, MPI_COMM_WORLD); }

int wconv_mpi_barrier(void) { return CALL(MPI_Barrier, MPI_COMM_WORLD); }

void wconv_mpi_error_string(int code, char *out, int capacity) {
    int len = 0;
    if (capacity <= 0) return;
    if (!loaded()) { snprintf(out, (size_t)capacity, "%s", load_error); return; }
    if (CALL(MPI_Error_string, code, out, &len) != MPI_SUCCESS) len = 0;
    out[len < capacity ? len : capacity - 1] = 0;
}

void wconv_mpi_processor_name(char *out, int capacity) {
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (CALL(MPI_Get_processor_name, name, &len) != MPI_SUCCESS) len = 0;
    int n = len < capacity - 1 ? len : capacity - 1;
    for (int i = 0; i < n; i++) out[i] = name[i];
    out[n] = 0;
}
