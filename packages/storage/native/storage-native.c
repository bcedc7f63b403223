/*
 * The few Linux file calls Node does not offer and images need: open file
 * description byte locks (QEMU's image locking), SEEK_DATA/SEEK_HOLE (holes in
 * raw files), fallocate (punching holes, preallocation), and zstd compression
 * (qcow2 compressed clusters). Every call is synchronous and returns a number:
 * a result, or a negative errno. Arguments are checked; nothing here throws
 * except on arguments of the wrong type.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#ifdef __linux__
#include <linux/falloc.h>
#endif

#define MAX_ARGUMENTS 4

/* Reads `count` arguments; false (with a TypeError pending) if fewer were passed. */
static int get_arguments(napi_env env, napi_callback_info info, size_t count, napi_value *values) {
  size_t given = MAX_ARGUMENTS;
  napi_value all[MAX_ARGUMENTS];
  if (napi_get_cb_info(env, info, &given, all, NULL, NULL) != napi_ok) return 0;
  if (given < count) {
    napi_throw_type_error(env, NULL, "too few arguments");
    return 0;
  }
  memcpy(values, all, count * sizeof(napi_value));
  return 1;
}

/* An integer argument within [minimum, maximum]; false (with a TypeError pending) otherwise. */
static int get_integer(napi_env env, napi_value value, int64_t minimum, int64_t maximum, int64_t *out) {
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok || number != number || number < (double)minimum ||
      number > (double)maximum || number != (double)(int64_t)number) {
    napi_throw_type_error(env, NULL, "expected an integer in range");
    return 0;
  }
  *out = (int64_t)number;
  return 1;
}

/* The bytes of a Uint8Array argument. */
static int get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  size_t offset;
  napi_value buffer;
  void *base;
  if (napi_get_typedarray_info(env, value, &type, length, &base, &buffer, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "expected a Uint8Array");
    return 0;
  }
  *data = base;
  return 1;
}

static napi_value number_result(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

#define FILE_OFFSET_MAX ((int64_t)1 << 53)

/*
 * The common head of the file calls: (fd, then `ranges` offsets or lengths
 * up to 2^53, then one integer in [0, last_maximum]). False, with a TypeError
 * pending, on a bad argument.
 */
static int get_file_arguments(napi_env env, napi_callback_info info, int64_t last_maximum, int64_t *fd, int64_t *first,
                              int64_t *second, int64_t *last) {
  napi_value argv[4];
  return get_arguments(env, info, 4, argv) && get_integer(env, argv[0], 0, INT_MAX, fd) &&
         get_integer(env, argv[1], 0, FILE_OFFSET_MAX, first) && get_integer(env, argv[2], 0, FILE_OFFSET_MAX, second) &&
         get_integer(env, argv[3], 0, last_maximum, last);
}

/* An OFD lock description of `length` bytes at `start`. */
static struct flock lock_range(int64_t start, int64_t length, short type) {
  struct flock lock;
  memset(&lock, 0, sizeof lock);
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = length;
  lock.l_type = type;
  return lock;
}

/* ofdLock(fd, start, length, mode): mode 0 unlocks, 1 takes a shared lock, 2 an exclusive one. Never waits. */
static napi_value ofd_lock(napi_env env, napi_callback_info info) {
  int64_t fd, start, length, mode;
  if (!get_file_arguments(env, info, 2, &fd, &start, &length, &mode)) return NULL;
#ifdef F_OFD_SETLK
  struct flock lock = lock_range(start, length, mode == 0 ? F_UNLCK : mode == 1 ? F_RDLCK : F_WRLCK);
  return number_result(env, fcntl((int)fd, F_OFD_SETLK, &lock) == -1 ? -errno : 0);
#else
  return number_result(env, -ENOSYS);
#endif
}

/*
 * ofdTest(fd, start, length, exclusive): 0 if this file description could
 * take the lock, -EAGAIN if another holds a conflicting one, -errno if the
 * question cannot be asked.
 */
static napi_value ofd_test(napi_env env, napi_callback_info info) {
  int64_t fd, start, length, exclusive;
  if (!get_file_arguments(env, info, 1, &fd, &start, &length, &exclusive)) return NULL;
#ifdef F_OFD_GETLK
  struct flock lock = lock_range(start, length, exclusive ? F_WRLCK : F_RDLCK);
  if (fcntl((int)fd, F_OFD_GETLK, &lock) == -1) return number_result(env, -errno);
  return number_result(env, lock.l_type == F_UNLCK ? 0 : -EAGAIN);
#else
  return number_result(env, -ENOSYS);
#endif
}

/* seek(fd, offset, whence): whence 3 is SEEK_DATA, 4 SEEK_HOLE; the new offset or -errno (-ENXIO past the data). */
static napi_value seek(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, offset, whence;
  if (!get_arguments(env, info, 3, argv) || !get_integer(env, argv[0], 0, INT_MAX, &fd) ||
      !get_integer(env, argv[1], 0, FILE_OFFSET_MAX, &offset) || !get_integer(env, argv[2], 3, 4, &whence)) {
    return NULL;
  }
#if defined(SEEK_DATA) && defined(SEEK_HOLE)
  off_t found = lseek((int)fd, (off_t)offset, whence == 3 ? SEEK_DATA : SEEK_HOLE);
  return number_result(env, found == (off_t)-1 ? -errno : (double)found);
#else
  return number_result(env, -ENOSYS);
#endif
}

/* fallocate(fd, offset, length, mode): 0 or -errno (-EOPNOTSUPP where the file system cannot). */
static napi_value file_allocate(napi_env env, napi_callback_info info) {
  int64_t fd, offset, length, mode;
  if (!get_file_arguments(env, info, INT_MAX, &fd, &offset, &length, &mode)) return NULL;
  if (length == 0) return number_result(env, -EINVAL);
#ifdef __linux__
  int result;
  do {
    result = fallocate((int)fd, (int)mode, (off_t)offset, (off_t)length);
  } while (result == -1 && errno == EINTR);
  return number_result(env, result == -1 ? -errno : 0);
#else
  return number_result(env, -EOPNOTSUPP);
#endif
}

/*
 * zstdCompress(source, destination): one zstd frame of the source at zstd's
 * default level, as QEMU writes a compressed cluster; its length, -ENOSPC if
 * it does not fit in the destination, -EIO on any other failure.
 */
static napi_value zstd_compress(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint8_t *source, *destination;
  size_t source_length, destination_length;
  if (!get_arguments(env, info, 2, argv) || !get_bytes(env, argv[0], &source, &source_length) ||
      !get_bytes(env, argv[1], &destination, &destination_length)) {
    return NULL;
  }
  size_t written = ZSTD_compress(destination, destination_length, source, source_length, ZSTD_CLEVEL_DEFAULT);
  if (ZSTD_isError(written)) {
    return number_result(env, ZSTD_getErrorCode(written) == ZSTD_error_dstSize_tooSmall ? -ENOSPC : -EIO);
  }
  return number_result(env, (double)written);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
    {"ofdLock", NULL, ofd_lock, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ofdTest", NULL, ofd_test, NULL, NULL, NULL, napi_enumerable, NULL},
    {"seek", NULL, seek, NULL, NULL, NULL, napi_enumerable, NULL},
    {"fallocate", NULL, file_allocate, NULL, NULL, NULL, napi_enumerable, NULL},
    {"zstdCompress", NULL, zstd_compress, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
