/* pickle.h - a restricted reader of the pickles torch.save writes.
 *
 * Owns the interpretation of Python pickles (protocols 2 to 5) as far as a
 * state dict needs, and no further.  It is not a Python virtual machine: it
 * builds plain values (None, booleans, integers, strings, tuples, lists,
 * dicts) and knows a fixed set of globals by name, none of which it calls:
 *   collections.OrderedDict              -> an empty dict
 *   torch._utils._rebuild_tensor_v2      -> a tensor: storage, offset, size, stride
 *   torch._utils._rebuild_parameter      -> the tensor it wraps
 *   torch.{Float,Half,BFloat16,Bool,Byte}Storage, as the type of a storage
 * Storages come from persistent ids ('storage', TYPE, KEY, LOCATION, NUMEL
 * [, VIEW]), which only name them; their bytes are found by the caller.
 * Any other global, opcode or call is refused with a one-line error, so a
 * hostile pickle can never run anything.  BUILD is accepted only on a dict,
 * whose attributes (the _metadata of state_dict()) are read and dropped.
 *
 * Every count is bounded by the pickle's length: each opcode makes at most
 * one value, and memo indices beyond the input's length are refused.
 */
#ifndef GPT2_PICKLE_H
#define GPT2_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"

#define PICKLE_MAX_DIMS CK_MAX_DIMS

typedef struct {
    char *name;        /* the state dict's key, NUL-terminated */
    char *storage_key; /* the persistent id's KEY */
    CkDType dtype;     /* from the storage type */
    const char *dtype_name;
    uint64_t storage_numel; /* elements of the storage, as the persistent id says */
    uint64_t offset;        /* in elements */
    int n_dims;
    uint64_t shape[PICKLE_MAX_DIMS], stride[PICKLE_MAX_DIMS];
} PickleTensor;

typedef struct {
    PickleTensor *tensors;
    size_t n;
} PickleStateDict;

/* Reads one pickle from b[0..n) (up to and including STOP; *used says how
 * far) that must be a dict of string keys to tensors. */
bool gpt2_pickle_state_dict(const uint8_t *b, size_t n, size_t *used, PickleStateDict *out, char *err, size_t errsz);
void gpt2_pickle_state_dict_free(PickleStateDict *sd);

/* The three pickles that open a legacy torch.save file: the magic number,
 * the protocol version 1001 and a dict of system information, which must
 * say little-endian if it says anything. */
bool gpt2_pickle_legacy_header(const uint8_t *b, size_t n, size_t *used, char *err, size_t errsz);

/* One pickle that must be a list of strings: the storage keys of a legacy
 * file, in the order their bytes follow.  *keys is one malloc'd block. */
bool gpt2_pickle_string_list(const uint8_t *b, size_t n, size_t *used, char ***keys, size_t *n_keys, char *err,
                             size_t errsz);

#endif
