// The MPI calls wconv makes, on MPI_COMM_WORLD, as plain C functions: Open MPI's handles
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are macros over internal globals that Swift cannot import.
// Every function returns an MPI error code (MPI_SUCCESS = 0): the world communicator is set to
// MPI_ERRORS_RETURN at init, so a failure comes back here instead of aborting the process.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

static inline int wconv_mpi_initialized(void) {
    int flag = 0;
    MPI_Initialized(&flag);
    return flag;
}

static inline int wconv_mpi_finalized(void) {
    int flag = 0;
    MPI_Finalized(&flag);
    return flag;
}

/// MPI_Init_thread (funneled: only the main thread calls MPI) and errors-return on the world.
static inline int wconv_mpi_init(int *rank, int *size) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS) return rc;
    rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (rc != MPI_SUCCESS) return rc;
    return MPI_Comm_size(MPI_COMM_WORLD, size);
}

static inline int wconv_mpi_finalize(void) { return MPI_Finalize(); }

static inline int wconv_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }

static inline int wconv_mpi_allreduce_sum_float(float *buf, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static inline int wconv_mpi_allreduce_sum_double(double *buf, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static inline int wconv_mpi_bcast(void *buf, int bytes, int root) {
    return MPI_Bcast(buf, bytes, MPI_BYTE, root, MPI_COMM_WORLD);
}

static inline int wconv_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

static inline void wconv_mpi_error_string(int code, char *out, int capacity) {
    int len = 0;
    if (capacity <= 0) return;
    if (MPI_Error_string(code, out, &len) != MPI_SUCCESS) len = 0;
    out[len < capacity ? len : capacity - 1] = 0;
}

static inline void wconv_mpi_processor_name(char *out, int capacity) {
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (MPI_Get_processor_name(name, &len) != MPI_SUCCESS) len = 0;
    int n = len < capacity - 1 ? len : capacity - 1;
    for (int i = 0; i < n; i++) out[i] = name[i];
    out[n] = 0;
}
