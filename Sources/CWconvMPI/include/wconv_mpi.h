// The MPI calls wconv makes, on MPI_COMM_WORLD, as plain C functions: Open MPI's handles
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are macros over internal globals that Swift cannot import.
// Every function returns an MPI error code (MPI_SUCCESS = 0): the world communicator is set to
// MPI_ERRORS_RETURN at init, so a failure comes back here instead of aborting the process.
// Open MPI is loaded with dlopen by `wconv_mpi_init` (data-parallel runs only): linked normally, it and
// its dependencies (hwloc, libevent, udev, …) were loaded at the start of every wconv command.
#ifndef WCONV_MPI_H
#define WCONV_MPI_H

/// Loads Open MPI, then MPI_Init_thread (funneled: only the main thread calls MPI) and
/// errors-return on the world; rank and size of the world. Non-zero on failure (see error_string).
int wconv_mpi_init(int *rank, int *size);
/// 1 once MPI_Init ran (0 when Open MPI is not loaded).
int wconv_mpi_initialized(void);
/// 1 once MPI_Finalize ran, or when Open MPI is not loaded (nothing to finalize).
int wconv_mpi_finalized(void);
int wconv_mpi_finalize(void);
int wconv_mpi_abort(int code);
int wconv_mpi_allreduce_sum_float(float *buf, int count);
int wconv_mpi_allreduce_sum_double(double *buf, int count);
int wconv_mpi_bcast(void *buf, int bytes, int root);
int wconv_mpi_barrier(void);
/// The text of an MPI error code (or why Open MPI could not be loaded), NUL-terminated in `out`.
void wconv_mpi_error_string(int code, char *out, int capacity);
void wconv_mpi_processor_name(char *out, int capacity);

#endif
