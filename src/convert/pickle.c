/* pickle.c - see pickle.h. */
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

typedef enum { V_NONE, V_BOOL, V_INT, V_BIGINT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } VKind;
typedef enum { G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE } Global;

static const char *const kind_names[] = {"None",   "a boolean", "an integer", "an integer", "a string", "a tuple",
                                         "a list", "a dict",    "a global",   "a storage",  "a tensor"};

/* One Python object.  Containers hold indices of other values, so that a
 * dict reached through the memo is the same dict, as in Python. */
typedef struct {
    VKind kind;
    Global global;          /* V_GLOBAL */
    CkDType dtype;          /* V_GLOBAL G_STORAGE, V_STORAGE */
    const char *dtype_name; /* likewise */
    int64_t i;              /* V_BOOL, V_INT; V_STORAGE: numel; V_TENSOR: index into Vm.tensors */
    const uint8_t *s;       /* V_STR, V_BIGINT: bytes in the input; V_STORAGE: its key */
    size_t len;
    uint32_t *items; /* V_TUPLE, V_LIST: [n]; V_DICT: [2 n] keys and values */
    size_t n, cap;
} Val;

typedef struct {
    uint32_t storage; /* a V_STORAGE value */
    uint64_t offset;
    int n_dims;
    uint64_t shape[PICKLE_MAX_DIMS], stride[PICKLE_MAX_DIMS];
} TensorVal;

typedef struct {
    const uint8_t *b;
    size_t n, pos;
    Val *vals;
    size_t n_vals, cap_vals;
    uint32_t *stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    uint32_t *memo; /* UINT32_MAX: unset */
    size_t cap_memo, memo_count;
    TensorVal *tensors;
    size_t n_tensors, cap_tensors;
    char *err;
    size_t errsz;
} Vm;

#define NO_VALUE UINT32_MAX

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size) return false;
        n *= 2;
    }
    void *q = realloc(*p, n * size);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

static bool fail(Vm *vm, const char *msg) {
    snprintf(vm->err, vm->errsz, "pickle, byte %zu: %s", vm->pos, msg);
    return false;
}

static bool oom(Vm *vm) { return fail(vm, "out of memory"); }

/* A new value of kind k; its index in *out. */
static bool new_val(Vm *vm, VKind k, uint32_t *out) {
    if (vm->n_vals >= NO_VALUE - 1) return fail(vm, "too many values");
    if (!grow((void **)&vm->vals, &vm->cap_vals, vm->n_vals + 1, sizeof *vm->vals)) return oom(vm);
    memset(&vm->vals[vm->n_vals], 0, sizeof *vm->vals);
    vm->vals[vm->n_vals].kind = k;
    *out = (uint32_t)vm->n_vals++;
    return true;
}

static bool push(Vm *vm, uint32_t v) {
    if (!grow((void **)&vm->stack, &vm->cap_stack, vm->sp + 1, sizeof *vm->stack)) return oom(vm);
    vm->stack[vm->sp++] = v;
    return true;
}

static bool push_new(Vm *vm, VKind k, uint32_t *out) {
    uint32_t v;
    if (!new_val(vm, k, &v) || !push(vm, v)) return false;
    if (out) *out = v;
    return true;
}

/* The stack above the innermost mark must hold at least `need` values. */
static size_t floor_of(const Vm *vm) { return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0; }

static bool pop(Vm *vm, uint32_t *v) {
    if (vm->sp <= floor_of(vm)) return fail(vm, "stack underflow");
    *v = vm->stack[--vm->sp];
    return true;
}

static bool top(Vm *vm, uint32_t *v) {
    if (vm->sp <= floor_of(vm)) return fail(vm, "stack underflow");
    *v = vm->stack[vm->sp - 1];
    return true;
}

static bool pop_mark(Vm *vm, size_t *mark) {
    if (vm->n_marks == 0) return fail(vm, "no MARK to pop");
    *mark = vm->marks[--vm->n_marks];
    return true;
}

static bool append_item(Vm *vm, Val *c, uint32_t item) {
    if (!grow((void **)&c->items, &c->cap, c->n + 1, sizeof *c->items)) return oom(vm);
    c->items[c->n++] = item;
    return true;
}

/* Reads k bytes of operand; false at the end of the input. */
static bool operand(Vm *vm, size_t k, const uint8_t **p) {
    if (vm->n - vm->pos < k) return fail(vm, "cut short (truncated file?)");
    *p = vm->b + vm->pos;
    vm->pos += k;
    return true;
}

static uint64_t le(const uint8_t *p, size_t k) {
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = v << 8 | p[i];
    return v;
}

/* ---- the globals a state dict needs ----------------------------------------- */

static const struct {
    const char *module, *name;
    Global global;
    CkDType dtype;
} known_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, CK_OTHER},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, CK_OTHER},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, CK_OTHER},
    {"torch", "FloatStorage", G_STORAGE, CK_F32},
    {"torch", "HalfStorage", G_STORAGE, CK_F16},
    {"torch", "BFloat16Storage", G_STORAGE, CK_BF16},
    {"torch", "BoolStorage", G_STORAGE, CK_BOOL},
    {"torch", "ByteStorage", G_STORAGE, CK_U8},
};

static bool same(const uint8_t *s, size_t len, const char *lit) { return strlen(lit) == len && !memcmp(s, lit, len); }

static bool make_global(Vm *vm, const uint8_t *mod, size_t mod_len, const uint8_t *name, size_t name_len) {
    for (size_t i = 0; i < sizeof known_globals / sizeof *known_globals; i++) {
        if (same(mod, mod_len, known_globals[i].module) && same(name, name_len, known_globals[i].name)) {
            uint32_t v;
            if (!push_new(vm, V_GLOBAL, &v)) return false;
            vm->vals[v].global = known_globals[i].global;
            vm->vals[v].dtype = known_globals[i].dtype;
            vm->vals[v].dtype_name = known_globals[i].name;
            return true;
        }
    }
    char m[UTF8_SHOWN], n[UTF8_SHOWN];
    snprintf(vm->err, vm->errsz,
             "pickle, byte %zu: refused the global %s.%s, which a GPT-2 state dict does not use (nothing was run)",
             vm->pos, gpt2_utf8_shown(mod, mod_len, m, sizeof m), gpt2_utf8_shown(name, name_len, n, sizeof n));
    return false;
}

/* GLOBAL's operand: "module\nname\n". */
static bool op_global(Vm *vm) {
    const uint8_t *start = vm->b + vm->pos, *end = vm->b + vm->n;
    const uint8_t *nl1 = memchr(start, '\n', (size_t)(end - start));
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl2) return fail(vm, "GLOBAL cut short (truncated file?)");
    vm->pos = (size_t)(nl2 + 1 - vm->b);
    return make_global(vm, start, (size_t)(nl1 - start), nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static bool op_stack_global(Vm *vm) {
    uint32_t name, mod;
    if (!pop(vm, &name) || !pop(vm, &mod)) return false;
    if (vm->vals[name].kind != V_STR || vm->vals[mod].kind != V_STR) return fail(vm, "STACK_GLOBAL needs two strings");
    return make_global(vm, vm->vals[mod].s, vm->vals[mod].len, vm->vals[name].s, vm->vals[name].len);
}

/* ---- calls ----------------------------------------------------------------- */

static bool int_of(const Vm *vm, uint32_t v, int64_t lo, int64_t *out) {
    if (vm->vals[v].kind != V_INT || vm->vals[v].i < lo) return false;
    *out = vm->vals[v].i;
    return true;
}

/* A tuple of at most PICKLE_MAX_DIMS non-negative integers. */
static bool dims_of(const Vm *vm, uint32_t v, int *n_dims, uint64_t *out) {
    const Val *t = &vm->vals[v];
    if (t->kind != V_TUPLE || t->n > PICKLE_MAX_DIMS) return false;
    for (size_t i = 0; i < t->n; i++) {
        int64_t x;
        if (!int_of(vm, t->items[i], 0, &x)) return false;
        out[i] = (uint64_t)x;
    }
    *n_dims = (int)t->n;
    return true;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static bool rebuild_tensor(Vm *vm, const Val *args) {
    if (args->n != 6 && args->n != 7) return fail(vm, "_rebuild_tensor_v2 needs 6 or 7 arguments");
    TensorVal t = {0};
    int64_t offset;
    int n_stride;
    if (vm->vals[args->items[0]].kind != V_STORAGE) return fail(vm, "_rebuild_tensor_v2 needs a storage");
    if (!int_of(vm, args->items[1], 0, &offset)) return fail(vm, "_rebuild_tensor_v2 needs a non-negative offset");
    if (!dims_of(vm, args->items[2], &t.n_dims, t.shape) || !dims_of(vm, args->items[3], &n_stride, t.stride) ||
        n_stride != t.n_dims)
        return fail(vm, "_rebuild_tensor_v2 needs a size and a stride of the same length, at most 8 integers");
    t.storage = args->items[0];
    t.offset = (uint64_t)offset;
    if (!grow((void **)&vm->tensors, &vm->cap_tensors, vm->n_tensors + 1, sizeof *vm->tensors)) return oom(vm);
    vm->tensors[vm->n_tensors] = t;
    uint32_t v;
    if (!push_new(vm, V_TENSOR, &v)) return false;
    vm->vals[v].i = (int64_t)vm->n_tensors++;
    return true;
}

static bool op_reduce(Vm *vm) {
    uint32_t args_v, fn_v;
    if (!pop(vm, &args_v) || !pop(vm, &fn_v)) return false;
    const Val *fn = &vm->vals[fn_v], *args = &vm->vals[args_v];
    if (fn->kind != V_GLOBAL) return fail(vm, "REDUCE calls something that is not a known global");
    if (args->kind != V_TUPLE) return fail(vm, "REDUCE needs a tuple of arguments");
    switch (fn->global) {
    case G_ORDERED_DICT:
        if (args->n != 0) return fail(vm, "OrderedDict is only built empty here");
        return push_new(vm, V_DICT, NULL);
    case G_REBUILD_TENSOR: return rebuild_tensor(vm, args);
    case G_REBUILD_PARAMETER:
        if (args->n < 1 || vm->vals[args->items[0]].kind != V_TENSOR)
            return fail(vm, "_rebuild_parameter needs a tensor");
        return push(vm, args->items[0]);
    default: return fail(vm, "a storage type is not called in a state dict");
    }
}

/* ('storage', TYPE, KEY, LOCATION, NUMEL[, None]) */
static bool op_persid(Vm *vm) {
    uint32_t pid_v;
    if (!pop(vm, &pid_v)) return false;
    const Val *pid = &vm->vals[pid_v];
    if (pid->kind != V_TUPLE || (pid->n != 5 && pid->n != 6))
        return fail(vm, "a persistent id must be ('storage', type, key, location, numel)");
    const Val *tag = &vm->vals[pid->items[0]], *type = &vm->vals[pid->items[1]], *key = &vm->vals[pid->items[2]];
    int64_t numel;
    if (tag->kind != V_STR || !same(tag->s, tag->len, "storage"))
        return fail(vm, "a persistent id names something other than a storage");
    if (type->kind != V_GLOBAL || type->global != G_STORAGE) return fail(vm, "a persistent id has no storage type");
    if (key->kind != V_STR || key->len == 0 || memchr(key->s, 0, key->len) || !gpt2_utf8_valid(key->s, key->len))
        return fail(vm, "a persistent id's storage key is not a string");
    if (!int_of(vm, pid->items[4], 0, &numel)) return fail(vm, "a persistent id's storage size is not an integer");
    if (pid->n == 6 && vm->vals[pid->items[5]].kind != V_NONE)
        return fail(vm, "views of storages (torch before 1.0) are not supported");
    CkDType dtype = type->dtype;
    const char *dtype_name = type->dtype_name;
    const uint8_t *s = key->s;
    size_t len = key->len;
    uint32_t v;
    if (!push_new(vm, V_STORAGE, &v)) return false;
    vm->vals[v].dtype = dtype, vm->vals[v].dtype_name = dtype_name;
    vm->vals[v].s = s, vm->vals[v].len = len, vm->vals[v].i = numel;
    return true;
}

/* ---- containers ------------------------------------------------------------ */

/* A new tuple or list of the values above the innermost mark (or the top k). */
static bool collect(Vm *vm, VKind kind, size_t from) {
    uint32_t v;
    if (!new_val(vm, kind, &v)) return false;
    for (size_t i = from; i < vm->sp; i++)
        if (!append_item(vm, &vm->vals[v], vm->stack[i])) return false;
    vm->sp = from;
    return push(vm, v);
}

static bool op_tuple_n(Vm *vm, size_t k) {
    if (vm->sp - floor_of(vm) < k) return fail(vm, "stack underflow");
    return collect(vm, V_TUPLE, vm->sp - k);
}

static bool op_from_mark(Vm *vm, VKind kind) {
    size_t mark;
    if (!pop_mark(vm, &mark)) return false;
    if (kind != V_DICT) return collect(vm, kind, mark);
    if ((vm->sp - mark) % 2) return fail(vm, "DICT needs pairs");
    uint32_t v;
    if (!new_val(vm, V_DICT, &v)) return false;
    for (size_t i = mark; i < vm->sp; i++)
        if (!append_item(vm, &vm->vals[v], vm->stack[i])) return false;
    vm->sp = mark;
    return push(vm, v);
}

/* SETITEM(S) and APPEND(S): the values above `from` go into the container
 * just below it. */
static bool fill(Vm *vm, size_t from, VKind want) {
    if (from == 0 || from - 1 < floor_of(vm)) return fail(vm, "stack underflow");
    Val *c = &vm->vals[vm->stack[from - 1]];
    if (c->kind != want) return fail(vm, want == V_DICT ? "SETITEM on something not a dict" : "APPEND on not a list");
    if (want == V_DICT && (vm->sp - from) % 2) return fail(vm, "SETITEMS needs pairs");
    for (size_t i = from; i < vm->sp; i++)
        if (!append_item(vm, c, vm->stack[i])) return false;
    vm->sp = from;
    return true;
}

static bool op_fill_mark(Vm *vm, VKind want) {
    size_t mark;
    if (!pop_mark(vm, &mark)) return false;
    return fill(vm, mark, want);
}

static bool op_fill_n(Vm *vm, size_t k, VKind want) {
    if (vm->sp - floor_of(vm) < k + 1) return fail(vm, "stack underflow");
    return fill(vm, vm->sp - k, want);
}

static bool op_build(Vm *vm) {
    uint32_t state, obj;
    if (!pop(vm, &state) || !top(vm, &obj)) return false;
    if (vm->vals[obj].kind != V_DICT) return fail(vm, "BUILD is only accepted on a dict (its _metadata)");
    return true; /* the attributes are dropped */
}

/* ---- the memo ----------------------------------------------------------------- */

static bool memo_put(Vm *vm, uint64_t idx) {
    uint32_t v;
    if (!top(vm, &v)) return false;
    if (idx > vm->n) return fail(vm, "memo index beyond the pickle's length");
    size_t old = vm->cap_memo;
    if (!grow((void **)&vm->memo, &vm->cap_memo, (size_t)idx + 1, sizeof *vm->memo)) return oom(vm);
    for (size_t i = old; i < vm->cap_memo; i++) vm->memo[i] = NO_VALUE;
    if (vm->memo[idx] == NO_VALUE) vm->memo_count++;
    vm->memo[idx] = v;
    return true;
}

static bool memo_get(Vm *vm, uint64_t idx) {
    if (idx >= vm->cap_memo || vm->memo[idx] == NO_VALUE) return fail(vm, "memo entry read before it was written");
    return push(vm, vm->memo[idx]);
}

/* ---- the loop ----------------------------------------------------------------- */

static bool push_int(Vm *vm, int64_t x) {
    uint32_t v;
    if (!push_new(vm, V_INT, &v)) return false;
    vm->vals[v].i = x;
    return true;
}

static bool push_str(Vm *vm, size_t len_bytes, bool text) {
    const uint8_t *p, *s;
    if (!operand(vm, len_bytes, &p)) return false;
    uint64_t len = le(p, len_bytes);
    if (len_bytes == 4 && !text && (p[3] & 0x80)) return fail(vm, "negative string length");
    if (len > vm->n - vm->pos) return fail(vm, "string cut short (truncated file?)");
    if (!operand(vm, (size_t)len, &s)) return false;
    if (text && !gpt2_utf8_valid(s, (size_t)len)) return fail(vm, "a string is not valid UTF-8");
    uint32_t v;
    if (!push_new(vm, V_STR, &v)) return false;
    vm->vals[v].s = s, vm->vals[v].len = (size_t)len;
    return true;
}

/* LONG1: n bytes of little-endian two's complement. */
static bool op_long1(Vm *vm) {
    const uint8_t *p, *d;
    if (!operand(vm, 1, &p) || !operand(vm, *p, &d)) return false;
    size_t k = *p;
    if (k > 8) {
        uint32_t v;
        if (!push_new(vm, V_BIGINT, &v)) return false;
        vm->vals[v].s = d, vm->vals[v].len = k;
        return true;
    }
    uint64_t u = le(d, k);
    if (k > 0 && k < 8 && (d[k - 1] & 0x80)) u |= UINT64_MAX << (8 * k); /* sign extension */
    int64_t x;
    memcpy(&x, &u, sizeof x);
    return push_int(vm, x);
}

static bool step(Vm *vm, bool *stop) {
    const uint8_t *p;
    size_t at = vm->pos;
    if (!operand(vm, 1, &p)) return false;
    switch (*p) {
    case 0x80: /* PROTO */
        if (!operand(vm, 1, &p)) return false;
        if (*p < 2 || *p > 5) return fail(vm, "unsupported pickle protocol");
        return true;
    case 0x95: return operand(vm, 8, &p); /* FRAME: a hint only */
    case '.': *stop = true; return true;  /* STOP */
    case '(':                             /* MARK */
        if (!grow((void **)&vm->marks, &vm->cap_marks, vm->n_marks + 1, sizeof *vm->marks)) return oom(vm);
        vm->marks[vm->n_marks++] = vm->sp;
        return true;
    case ')': return push_new(vm, V_TUPLE, NULL); /* EMPTY_TUPLE */
    case 't': return op_from_mark(vm, V_TUPLE);   /* TUPLE */
    case 0x85: return op_tuple_n(vm, 1);
    case 0x86: return op_tuple_n(vm, 2);
    case 0x87: return op_tuple_n(vm, 3);
    case ']': return push_new(vm, V_LIST, NULL); /* EMPTY_LIST */
    case 'l': return op_from_mark(vm, V_LIST);   /* LIST */
    case 'a': return op_fill_n(vm, 1, V_LIST);   /* APPEND */
    case 'e': return op_fill_mark(vm, V_LIST);   /* APPENDS */
    case '}': return push_new(vm, V_DICT, NULL); /* EMPTY_DICT */
    case 'd': return op_from_mark(vm, V_DICT);   /* DICT */
    case 's': return op_fill_n(vm, 2, V_DICT);   /* SETITEM */
    case 'u': return op_fill_mark(vm, V_DICT);   /* SETITEMS */
    case 'N': return push_new(vm, V_NONE, NULL);
    case 0x88:
    case 0x89: { /* NEWTRUE, NEWFALSE */
        uint32_t v;
        if (!push_new(vm, V_BOOL, &v)) return false;
        vm->vals[v].i = *p == 0x88;
        return true;
    }
    case 'J': { /* BININT */
        if (!operand(vm, 4, &p)) return false;
        int32_t x;
        uint32_t u = (uint32_t)le(p, 4);
        memcpy(&x, &u, sizeof x);
        return push_int(vm, x);
    }
    case 'K': return operand(vm, 1, &p) && push_int(vm, p[0]);              /* BININT1 */
    case 'M': return operand(vm, 2, &p) && push_int(vm, (int64_t)le(p, 2)); /* BININT2 */
    case 0x8a: return op_long1(vm);
    case 'X': return push_str(vm, 4, true);                        /* BINUNICODE */
    case 0x8c: return push_str(vm, 1, true);                       /* SHORT_BINUNICODE */
    case 0x8d: return push_str(vm, 8, true);                       /* BINUNICODE8 */
    case 'T': return push_str(vm, 4, false);                       /* BINSTRING */
    case 'U': return push_str(vm, 1, false);                       /* SHORT_BINSTRING */
    case 'q': return operand(vm, 1, &p) && memo_put(vm, p[0]);     /* BINPUT */
    case 'r': return operand(vm, 4, &p) && memo_put(vm, le(p, 4)); /* LONG_BINPUT */
    case 0x94: return memo_put(vm, vm->memo_count);                /* MEMOIZE */
    case 'h': return operand(vm, 1, &p) && memo_get(vm, p[0]);     /* BINGET */
    case 'j': return operand(vm, 4, &p) && memo_get(vm, le(p, 4)); /* LONG_BINGET */
    case '0': { /* POP */ uint32_t v; return pop(vm, &v);
    }
    case 'c': return op_global(vm);
    case 0x93: return op_stack_global(vm);
    case 'R': return op_reduce(vm);
    case 'Q': return op_persid(vm); /* BINPERSID */
    case 'b': return op_build(vm);
    default: {
        char msg[96];
        snprintf(msg, sizeof msg, "opcode 0x%02x is not one a state dict uses; refused", *p);
        vm->pos = at;
        return fail(vm, msg);
    }
    }
}

static void vm_free(Vm *vm) {
    for (size_t i = 0; i < vm->n_vals; i++) free(vm->vals[i].items);
    free(vm->vals);
    free(vm->stack);
    free(vm->marks);
    free(vm->memo);
    free(vm->tensors);
}

/* Runs one pickle from b[0..n) to its STOP; the result in *root. */
static bool vm_run(Vm *vm, const uint8_t *b, size_t n, char *err, size_t errsz, uint32_t *root) {
    memset(vm, 0, sizeof *vm);
    vm->b = b, vm->n = n, vm->err = err, vm->errsz = errsz;
    bool stop = false;
    while (!stop)
        if (!step(vm, &stop)) return false;
    if (vm->sp != 1 || vm->n_marks) return fail(vm, "STOP with other than one value on the stack");
    *root = vm->stack[0];
    return true;
}

static char *copy_str(const Val *v) {
    char *s = malloc(v->len + 1);
    if (!s) return NULL;
    memcpy(s, v->s, v->len);
    s[v->len] = '\0';
    return s;
}

bool gpt2_pickle_state_dict(const uint8_t *b, size_t n, size_t *used, PickleStateDict *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    Vm vm;
    uint32_t root;
    bool ok = vm_run(&vm, b, n, err, errsz, &root);
    *used = vm.pos;
    const Val *d = ok ? &vm.vals[root] : NULL;
    if (ok && d->kind != V_DICT) {
        snprintf(err, errsz, "the pickle holds %s, not a state dict", kind_names[d->kind]);
        ok = false;
    }
    if (ok) {
        out->tensors = calloc(d->n / 2 + 1, sizeof *out->tensors);
        if (!out->tensors) snprintf(err, errsz, "out of memory");
        ok = out->tensors != NULL;
    }
    for (size_t i = 0; ok && i < d->n / 2; i++) {
        const Val *k = &vm.vals[d->items[2 * i]], *v = &vm.vals[d->items[2 * i + 1]];
        if (k->kind != V_STR || memchr(k->s, 0, k->len) || !gpt2_utf8_valid(k->s, k->len)) {
            snprintf(err, errsz, "the state dict has a key that is not a text string");
            ok = false;
            break;
        }
        if (v->kind != V_TENSOR) {
            char shown[UTF8_SHOWN];
            snprintf(err, errsz, "state dict entry \"%s\" is %s, not a tensor",
                     gpt2_utf8_shown(k->s, k->len, shown, sizeof shown), kind_names[v->kind]);
            ok = false;
            break;
        }
        const TensorVal *tv = &vm.tensors[v->i];
        const Val *st = &vm.vals[tv->storage];
        PickleTensor *t = &out->tensors[out->n++];
        t->name = copy_str(k);
        t->storage_key = copy_str(st);
        if (!t->name || !t->storage_key) {
            snprintf(err, errsz, "out of memory");
            ok = false;
            break;
        }
        t->dtype = st->dtype;
        t->dtype_name = st->dtype_name;
        t->storage_numel = (uint64_t)st->i;
        t->offset = tv->offset;
        t->n_dims = tv->n_dims;
        memcpy(t->shape, tv->shape, sizeof t->shape);
        memcpy(t->stride, tv->stride, sizeof t->stride);
    }
    vm_free(&vm);
    if (!ok) gpt2_pickle_state_dict_free(out);
    return ok;
}

void gpt2_pickle_state_dict_free(PickleStateDict *sd) {
    for (size_t i = 0; i < sd->n; i++) free(sd->tensors[i].name), free(sd->tensors[i].storage_key);
    free(sd->tensors);
    memset(sd, 0, sizeof *sd);
}

/* 0x1950a86a20f9469cfc6c, as LONG1 writes it. */
static const uint8_t legacy_magic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

bool gpt2_pickle_legacy_header(const uint8_t *b, size_t n, size_t *used, char *err, size_t errsz) {
    size_t at = 0;
    for (int part = 0; part < 3; part++) {
        Vm vm;
        uint32_t root;
        char why[200];
        bool ok = vm_run(&vm, b + at, n - at, why, sizeof why, &root);
        at += vm.pos;
        if (!ok) snprintf(err, errsz, "legacy torch file: %s", why);
        const Val *v = ok ? &vm.vals[root] : NULL;
        if (ok && part == 0 &&
            !(v->kind == V_BIGINT && v->len == sizeof legacy_magic && !memcmp(v->s, legacy_magic, v->len))) {
            snprintf(err, errsz, "not a torch.save file: no magic number");
            ok = false;
        }
        if (ok && part == 1 && !(v->kind == V_INT && v->i == 1001)) {
            snprintf(err, errsz, "legacy torch file: unknown protocol version");
            ok = false;
        }
        for (size_t i = 0; ok && part == 2 && v->kind == V_DICT && i < v->n / 2; i++) {
            const Val *k = &vm.vals[v->items[2 * i]], *x = &vm.vals[v->items[2 * i + 1]];
            if (k->kind == V_STR && same(k->s, k->len, "little_endian") && !(x->kind == V_BOOL && x->i)) {
                snprintf(err, errsz, "legacy torch file: written on a big-endian machine");
                ok = false;
            }
        }
        if (ok && part == 2 && v->kind != V_DICT) {
            snprintf(err, errsz, "legacy torch file: no system information");
            ok = false;
        }
        vm_free(&vm);
        if (!ok) return false;
    }
    *used = at;
    return true;
}

bool gpt2_pickle_string_list(const uint8_t *b, size_t n, size_t *used, char ***keys, size_t *n_keys, char *err,
                             size_t errsz) {
    Vm vm;
    uint32_t root;
    char why[200];
    *keys = NULL, *n_keys = 0;
    bool ok = vm_run(&vm, b, n, why, sizeof why, &root);
    *used = vm.pos;
    if (!ok) snprintf(err, errsz, "legacy torch file, storage keys: %s", why);
    const Val *v = ok ? &vm.vals[root] : NULL;
    if (ok && v->kind != V_LIST) {
        snprintf(err, errsz, "legacy torch file: the storage keys are not a list");
        ok = false;
    }
    size_t bytes = 0;
    for (size_t i = 0; ok && i < v->n; i++) {
        const Val *s = &vm.vals[v->items[i]];
        if (s->kind != V_STR || memchr(s->s, 0, s->len)) {
            snprintf(err, errsz, "legacy torch file: a storage key is not a string");
            ok = false;
        }
        bytes += s->len + 1 + sizeof(char *);
    }
    char **list = ok ? malloc(bytes + 1) : NULL;
    if (ok && !list) {
        snprintf(err, errsz, "out of memory");
        ok = false;
    }
    if (ok) {
        char *at = (char *)(list + v->n);
        for (size_t i = 0; i < v->n; i++) {
            const Val *s = &vm.vals[v->items[i]];
            list[i] = at;
            memcpy(at, s->s, s->len);
            at[s->len] = '\0';
            at += s->len + 1;
        }
        *keys = list;
        *n_keys = v->n;
    }
    vm_free(&vm);
    return ok;
}
