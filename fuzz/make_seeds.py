#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora of the converter's fuzz targets.

    python3 fuzz/make_seeds.py                 # rewrites fuzz/corpus/{torch,gguf,index,hf_tokenizer,config}
    python3 fuzz/make_seeds.py --models DIR    # also writes whole tiny models to convert

Every seed is synthetic: a GPT-2 of 2 layers, 2 heads, n_embd 4 and n_ctx 8
whose weights are small made-up numbers, and a byte-level vocabulary of the
256 byte tokens, 5 merges and <|endoftext|> (262 tokens).  Nothing comes from
real weights.  The files are written the way their writers write them
(torch.save's pickles and zip archive, llama.cpp's GGUF, transformers' JSON),
by hand with struct, so that no package is needed.

--models DIR writes, under DIR, folders gpt2-convert converts: torch-zip,
torch-legacy, torch-sharded, tokenizer-json-pairs (each with config.json and
a tokenizer), and gpt2.gguf; a check that the seeds' writers write what the
real readers accept.  CI does not run this script: the seeds are committed.
"""
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

N_LAYER, N_HEAD, N_EMBD, N_CTX = 2, 2, 4, 8

# ---- the vocabulary --------------------------------------------------------------


def byte_chars():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


CHARS = byte_chars()
MERGES = [("\u0120", "t"), ("h", "e"), ("\u0120t", "he"), ("\u0120", "a"), ("e", "r")]
TOKENS = [CHARS[b] for b in range(256)] + [a + b for a, b in MERGES] + ["<|endoftext|>"]
N_VOCAB = len(TOKENS)


def vocab_json():
    return json.dumps({t: i for i, t in enumerate(TOKENS)}, ensure_ascii=False, separators=(",", ":"))


def merges_txt(header=True, crlf=False, merges=MERGES):
    nl = "\r\n" if crlf else "\n"
    lines = (["#version: 0.2"] if header else []) + ["%s %s" % m for m in merges]
    return nl.join(lines) + nl


def tokenizer_json(pairs):
    merges = [list(m) for m in MERGES] if pairs else ["%s %s" % m for m in MERGES]
    doc = {
        "version": "1.0",
        "added_tokens": [{"id": N_VOCAB - 1, "content": "<|endoftext|>", "special": True}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "model": {"type": "BPE", "dropout": None, "vocab": {t: i for i, t in enumerate(TOKENS)}, "merges": merges},
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def config_json(**extra):
    c = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": N_CTX,
        "n_embd": N_EMBD,
        "n_head": N_HEAD,
        "n_layer": N_LAYER,
        "n_positions": N_CTX,
        "vocab_size": N_VOCAB,
    }
    c.update(extra)
    return json.dumps(c, indent=2) + "\n"


# ---- the weights ----------------------------------------------------------------


def hf_tensors():
    """(name, shape) of a GPT-2 state dict, Conv1D weights [in][out]."""
    C = N_EMBD
    out = [("wte.weight", (N_VOCAB, C)), ("wpe.weight", (N_CTX, C))]
    for i in range(N_LAYER):
        p = "h.%d." % i
        out += [
            (p + "ln_1.weight", (C,)),
            (p + "ln_1.bias", (C,)),
            (p + "attn.c_attn.weight", (C, 3 * C)),
            (p + "attn.c_attn.bias", (3 * C,)),
            (p + "attn.c_proj.weight", (C, C)),
            (p + "attn.c_proj.bias", (C,)),
            (p + "ln_2.weight", (C,)),
            (p + "ln_2.bias", (C,)),
            (p + "mlp.c_fc.weight", (C, 4 * C)),
            (p + "mlp.c_fc.bias", (4 * C,)),
            (p + "mlp.c_proj.weight", (4 * C, C)),
            (p + "mlp.c_proj.bias", (C,)),
        ]
    return out + [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def values(seed, n):
    """n made-up numbers in [-0.5, 0.5), exact in f16 and bf16."""
    x = seed * 2654435761 % 2**32 or 1
    out = []
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out.append(((x >> 8) % 256 - 128) / 256.0)
    return out


def encode(vals, dtype):
    if dtype == "f32":
        return struct.pack("<%df" % len(vals), *vals)
    if dtype == "f16":
        return struct.pack("<%de" % len(vals), *vals)
    if dtype == "bf16":  # the values are exact in bf16: the high half of the f32
        return b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in vals)
    raise ValueError(dtype)


ELEM = {"f32": 4, "f16": 2, "bf16": 2, "bool": 1, "u8": 1}
STORAGE = {"f32": "FloatStorage", "f16": "HalfStorage", "bf16": "BFloat16Storage", "bool": "BoolStorage",
           "u8": "ByteStorage"}

# ---- pickles, opcode by opcode ------------------------------------------------------


class Pickle:
    """A pickle written as torch.save writes it (protocol 2: GLOBAL, BINPUT)
    or as protocol 4 would (STACK_GLOBAL, MEMOIZE, FRAME)."""

    def __init__(self, proto=2):
        self.proto = proto
        self.out = bytearray(b"\x80" + bytes([proto]))
        if proto >= 4:  # one FRAME around the rest, as pickle writes it
            self.out += b"\x95" + bytes(8)
        self.memo = 0
        self.globals = {}

    def op(self, b):
        self.out += b

    def put(self):
        if self.proto >= 4:
            self.op(b"\x94")
        elif self.memo < 256:
            self.op(b"q" + bytes([self.memo]))
        else:
            self.op(b"r" + struct.pack("<I", self.memo))
        self.memo += 1
        return self.memo - 1

    def get(self, i):
        self.op(b"h" + bytes([i]) if i < 256 else b"j" + struct.pack("<I", i))

    def str(self, s, memo=True):
        b = s.encode("utf-8")
        if self.proto >= 4 and len(b) < 256:
            self.op(b"\x8c" + bytes([len(b)]) + b)
        else:
            self.op(b"X" + struct.pack("<I", len(b)) + b)
        if memo:
            self.put()

    def int(self, x):
        if 0 <= x < 256:
            self.op(b"K" + bytes([x]))
        elif 0 <= x < 65536:
            self.op(b"M" + struct.pack("<H", x))
        elif -(2**31) <= x < 2**31:
            self.op(b"J" + struct.pack("<i", x))
        else:
            n = (x.bit_length() + 8) // 8
            self.op(b"\x8a" + bytes([n]) + x.to_bytes(n, "little", signed=True))

    def glob(self, module, name):
        key = (module, name)
        if key in self.globals:
            self.get(self.globals[key])
            return
        if self.proto >= 4:
            self.str(module)
            self.str(name)
            self.op(b"\x93")
        else:
            self.op(b"c" + module.encode() + b"\n" + name.encode() + b"\n")
        self.globals[key] = self.put()

    def tuple_of_ints(self, xs):
        if len(xs) == 0:
            self.op(b")")
            return
        if len(xs) <= 3:
            for x in xs:
                self.int(x)
            self.op(bytes([0x84 + len(xs)]))
        else:
            self.op(b"(")
            for x in xs:
                self.int(x)
            self.op(b"t")
        self.put()

    def stop(self):
        self.op(b".")
        if self.proto >= 4:
            self.out[3:11] = struct.pack("<Q", len(self.out) - 11)
        return bytes(self.out)


def state_dict_pickle(tensors, proto=2, legacy=False, parameter=None, metadata=True):
    """tensors: (name, dtype, key, storage_numel, offset, shape, stride).
    parameter: the names wrapped in _rebuild_parameter."""
    p = Pickle(proto)
    p.glob("collections", "OrderedDict")
    p.op(b")R")
    p.put()
    p.op(b"(")
    for name, dtype, key, storage_numel, offset, shape, stride in tensors:
        p.str(name)
        wrap = parameter and name in parameter
        if wrap:
            p.glob("torch._utils", "_rebuild_parameter")
            p.op(b"(")
        p.glob("torch._utils", "_rebuild_tensor_v2")
        p.op(b"((")
        p.str("storage")
        p.glob("torch", STORAGE[dtype])
        p.str(key)
        p.str("cpu")
        p.int(storage_numel)
        if legacy:
            p.op(b"N")
        p.op(b"t")
        p.put()
        p.op(b"Q")
        p.int(offset)
        p.tuple_of_ints(shape)
        p.tuple_of_ints(stride)
        p.op(b"\x89")  # requires_grad
        p.glob("collections", "OrderedDict")
        p.op(b")R")
        p.put()
        p.op(b"t")
        p.put()
        p.op(b"R")
        p.put()
        if wrap:
            p.op(b"\x89")  # requires_grad
            p.glob("collections", "OrderedDict")
            p.op(b")R")
            p.put()
            p.op(b"tR")
            p.put()
    p.op(b"u")
    if metadata:  # state_dict()'s _metadata, set by BUILD
        p.op(b"}")
        p.put()
        p.str("_metadata")
        p.glob("collections", "OrderedDict")
        p.op(b")R")
        p.put()
        p.str("")
        p.op(b"}")
        p.put()
        p.str("version")
        p.int(1)
        p.op(b"ss")
        p.op(b"s")
        p.op(b"b")
    return p.stop()


def contiguous(shape):
    stride, s = [], 1
    for d in reversed(shape):
        stride.insert(0, s)
        s *= d
    return tuple(stride)


def one_storage_each(named, dtype):
    """(name, shape) -> pickle entries and storages, one storage per tensor."""
    entries, storages = [], []
    for i, (name, shape) in enumerate(named):
        n = numel(shape)
        entries.append((name, dtype, str(i), n, 0, shape, contiguous(shape)))
        storages.append((str(i), encode(values(i + 1, n), dtype)))
    return entries, storages


def one_storage(named, dtype):
    """All tensors views of one storage at increasing offsets."""
    entries, at = [], 0
    for name, shape in named:
        n = numel(shape)
        entries.append((name, dtype, "0", 0, at, shape, contiguous(shape)))
        at += n
    entries = [(n, d, k, at, o, s, st) for n, d, k, _, o, s, st in entries]
    return entries, [("0", encode(values(7, at), dtype))]


# ---- zip archives (torch.save) ------------------------------------------------------


def zip_archive(files, zip64=False, descriptor=False, align=64):
    """Stored entries, their data aligned as torch aligns it (an extra
    field of padding in the local header)."""
    out = bytearray()
    central = bytearray()
    for name, data in files:
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        at = len(out)
        flags = 0x08 if descriptor else 0
        pad = (-(at + 30 + len(nb) + 4)) % align
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        sizes = (0, 0, 0) if descriptor else (crc, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 0, 0, 0, *sizes, len(nb), len(extra)) + nb + extra
        out += data
        if descriptor:
            out += struct.pack("<IIII", 0x08074B50, crc, len(data), len(data))
        if zip64:
            cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), at)
            csize = usize = local = 0xFFFFFFFF
        else:
            cextra = b""
            csize = usize = len(data)
            local = at
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45 if zip64 else 20, 45 if zip64 else 20, flags,
                               0, 0, 0, crc, csize, usize, len(nb), len(cextra), 0, 0, 0, 0, local)
        central += nb + cextra
    cd_at = len(out)
    out += central
    n = len(files)
    if zip64:
        eocd64_at = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_at)
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_at, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_at, 0)
    return bytes(out)


def torch_zip(entries, storages, folder="archive", proto=2, byteorder=True, **kw):
    files = [(folder + "/data.pkl", state_dict_pickle(entries, proto=proto, parameter=kw.pop("parameter", None)))]
    if byteorder:
        files.append((folder + "/byteorder", b"little"))
    files += [(folder + "/data/" + key, data) for key, data in storages]
    files.append((folder + "/version", b"3\n"))
    files.append((folder + "/.data/serialization_id", b"0123456789"))
    return zip_archive(files, **kw)


# ---- the legacy format --------------------------------------------------------------


def torch_legacy(entries, storages):
    p = Pickle(2)
    p.int(0x1950A86A20F9469CFC6C)
    magic = p.stop()
    p = Pickle(2)
    p.int(1001)
    version = p.stop()
    p = Pickle(2)
    p.op(b"}")
    p.put()
    p.op(b"(")
    p.str("protocol_version")
    p.int(1001)
    p.str("little_endian")
    p.op(b"\x88")
    p.str("type_sizes")
    p.op(b"}")
    p.put()
    p.op(b"(")
    for k, v in (("short", 2), ("int", 4), ("long", 4)):
        p.str(k)
        p.int(v)
    p.op(b"uu")
    info = p.stop()
    sd = state_dict_pickle(entries, legacy=True)
    p = Pickle(2)
    p.op(b"]")
    p.put()
    p.op(b"(")
    for key, _ in storages:
        p.str(key)
    p.op(b"e")
    keys = p.stop()
    out = magic + version + info + sd + keys
    for key, data in storages:
        size = next(e[3] for e in entries if e[2] == key)
        out += struct.pack("<q", size) + data
    return out


# ---- GGUF -------------------------------------------------------------------------------

GT = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9, "u64": 10,
      "i64": 11, "f64": 12}
SCALAR = {"u8": "<B", "i8": "<b", "u16": "<H", "i16": "<h", "u32": "<I", "i32": "<i", "f32": "<f", "bool": "<?",
          "u64": "<Q", "i64": "<q", "f64": "<d"}
GGML = {"f32": 0, "f16": 1, "q8_0": 8, "bf16": 30}


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(t, v):
    if t == "str":
        return gguf_str(v)
    if t == "arr":
        et, items = v
        return struct.pack("<IQ", GT[et], len(items)) + b"".join(gguf_value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def q8_0(vals):
    out = b""
    for i in range(0, len(vals), 32):
        block = vals[i:i + 32]
        d = max(abs(x) for x in block) / 127 or 1.0
        out += struct.pack("<e", d) + bytes((round(x / d) & 0xFF) for x in block)
    return out


def gguf(kv, tensors, version=3, align=32):
    """kv: (key, type, value); tensors: (name, ne, dtype, bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv))
    for key, t, v in kv:
        head += gguf_str(key) + struct.pack("<I", GT[t]) + gguf_value(t, v)
    data = b""
    for name, ne, dtype, raw in tensors:
        data += b"\0" * ((-len(data)) % align)
        head += gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        head += struct.pack("<IQ", GGML[dtype], len(data))
        data += raw
    return head + b"\0" * ((-len(head)) % align) + data


def gguf_hparams(arch="gpt2"):
    return [
        ("general.architecture", "str", arch),
        ("general.name", "str", "tiny synthetic gpt2"),
        ("gpt2.context_length", "u32", N_CTX),
        ("gpt2.embedding_length", "u32", N_EMBD),
        ("gpt2.feed_forward_length", "u32", 4 * N_EMBD),
        ("gpt2.block_count", "u32", N_LAYER),
        ("gpt2.attention.head_count", "u32", N_HEAD),
        ("gpt2.attention.layer_norm_epsilon", "f32", 1e-5),
        ("general.file_type", "u32", 1),
    ]


def gguf_tokenizer():
    return [
        ("tokenizer.ggml.model", "str", "gpt2"),
        ("tokenizer.ggml.tokens", "arr", ("str", TOKENS)),
        ("tokenizer.ggml.merges", "arr", ("str", ["%s %s" % m for m in MERGES])),
        ("tokenizer.ggml.bos_token_id", "u32", N_VOCAB - 1),
        ("tokenizer.ggml.eos_token_id", "u32", N_VOCAB - 1),
    ]


GGUF_NAMES = {"ln_1.weight": "attn_norm.weight", "ln_1.bias": "attn_norm.bias",
              "attn.c_attn.weight": "attn_qkv.weight", "attn.c_attn.bias": "attn_qkv.bias",
              "attn.c_proj.weight": "attn_output.weight", "attn.c_proj.bias": "attn_output.bias",
              "ln_2.weight": "ffn_norm.weight", "ln_2.bias": "ffn_norm.bias", "mlp.c_fc.weight": "ffn_up.weight",
              "mlp.c_fc.bias": "ffn_up.bias", "mlp.c_proj.weight": "ffn_down.weight",
              "mlp.c_proj.bias": "ffn_down.bias"}


def gguf_model_tensors(dtype="f16", tied_output=False):
    """The whole model under llama.cpp's names; ne is innermost first, and a
    Conv1D weight is stored [out][in] (ne = [in, out])."""
    out = []
    for i, (name, shape) in enumerate(hf_tensors()):
        if name == "wte.weight":
            g = "token_embd.weight"
        elif name == "wpe.weight":
            g = "position_embd.weight"
        elif name.startswith("ln_f."):
            g = "output_norm." + name[5:]
        else:
            layer, rest = name[2:].split(".", 1)
            g = "blk.%s.%s" % (layer, GGUF_NAMES[rest])
        ne = list(reversed(shape))
        if len(shape) == 2 and "." in name and name.startswith("h."):  # Conv1D: HF [in][out] -> [out][in]
            ne = [shape[0], shape[1]]
        t = dtype if len(shape) == 2 else "f32"
        out.append((g, ne, t, encode(values(i + 1, numel(shape)), t)))
    if tied_output:
        out.append(("output.weight", out[0][1], out[0][2], out[0][3]))
    return out


# ---- the seeds ----------------------------------------------------------------------------


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


# The shards fuzz_index.c writes in its folder: keep the two in step.
INDEX_SHARDS = {
    "model-00001-of-00002.safetensors": ["h.0.ln_1.weight", "wte.weight"],
    "model-00002-of-00002.safetensors": ["ln_f.bias"],
    "pytorch_model-00001-of-00002.bin": ["h.0.ln_1.weight", "wte.weight"],
    "pytorch_model-00002-of-00002.bin": ["ln_f.bias"],
}


def index_json(torch, extra=None, indent=2):
    wm = {}
    for f, names in INDEX_SHARDS.items():
        if f.endswith(".bin") == torch:
            for n in names:
                wm[n] = f
    if extra:
        wm.update(extra)
    return json.dumps({"metadata": {"total_size": 96}, "weight_map": dict(sorted(wm.items()))}, indent=indent) + "\n"


def seeds():
    small = [("wte.weight", (5, 4)), ("h.0.attn.c_attn.weight", (4, 12)), ("ln_f.bias", (4,))]
    s = {}
    # torch: zip archives, the legacy format, and bare pickles.
    e, st = one_storage_each(small, "f32")
    s["torch/zip-f32"] = torch_zip(e, st)
    e, st = one_storage_each(small, "f16")
    s["torch/zip-f16-proto4-zip64"] = torch_zip(e, st, folder="tiny_model", proto=4, zip64=True, descriptor=True)
    e, st = one_storage(small + [("h.0.ln_1.weight", (4,))], "bf16")
    s["torch/zip-bf16-one-storage"] = torch_zip(e, st, byteorder=False, parameter={"wte.weight"})
    # A transposed view and a tensor at an offset, sharing one storage.
    vals = encode(values(3, 24), "f32")
    e = [("a", "f32", "0", 24, 0, (4, 6), (1, 4)), ("b", "f32", "0", 24, 20, (2, 2), (2, 1)),
         ("mask", "bool", "1", 4, 0, (1, 1, 2, 2), (4, 4, 2, 1)), ("scalar", "u8", "2", 1, 0, (), ())]
    s["torch/zip-views"] = torch_zip(e, [("0", vals), ("1", b"\1\0\1\1"), ("2", b"\7")])
    e, st = one_storage_each(small, "f32")
    s["torch/legacy-f32"] = torch_legacy(e, st)
    s["torch/legacy-f16-one-storage"] = torch_legacy(*one_storage(small, "f16"))
    e, st = one_storage_each(small, "f16")
    s["torch/pickle-proto2"] = state_dict_pickle(e)
    p = Pickle(2)
    p.op(b"]")
    p.put()
    p.op(b"(")
    for key in ("0", "1", "94262523035360"):
        p.str(key)
    p.op(b"e")
    s["torch/pickle-storage-keys"] = p.stop()
    s["torch/pickle-proto4"] = state_dict_pickle(e, proto=4, parameter={"ln_f.bias"}, metadata=False)
    s["torch/zip-model-f16"] = torch_zip(*one_storage(hf_tensors(), "f16"))
    # gguf: the whole model with its tokenizer; smaller ones without.
    s["gguf/model-f16-v3"] = gguf(gguf_hparams() + gguf_tokenizer(), gguf_model_tensors("f16"))
    tensors = [("token_embd.weight", [32, 3], "q8_0", q8_0(values(1, 96))),
               ("output.weight", [32, 3], "q8_0", q8_0(values(1, 96))),
               ("blk.0.attn_qkv.weight", [4, 12], "bf16", encode(values(2, 48), "bf16")),
               ("blk.0.attn_qkv.bias", [12], "f32", encode(values(3, 12), "f32")),
               ("blk.1.ffn_up.weight", [4, 16], "f16", encode(values(4, 64), "f16")),
               ("position_embd.weight", [4, 2, 1, 1], "f32", encode(values(5, 8), "f32"))]
    kv = gguf_hparams() + [("general.alignment", "u32", 64), ("general.quantization_version", "u32", 2),
                           ("tokenizer.ggml.token_type", "arr", ("i32", [1, 1, 3])),
                           ("general.tags", "arr", ("arr", [("str", ["a", "b"]), ("str", [])])),
                           ("general.flags", "arr", ("bool", [True, False])),
                           ("general.float", "f64", 0.5), ("general.i64", "i64", -1), ("general.u16", "u16", 7),
                           ("general.i8", "i8", -3), ("general.u8", "u8", 200), ("general.i16", "i16", -300),
                           ("general.u64", "u64", 2**40)]
    s["gguf/tensors-q8_0-bf16-v2"] = gguf(kv, tensors, version=2, align=64)
    # The hyperparameters in every integer type the reader takes.
    ints = iter(["u64", "u16", "u8", "i8", "i16", "i64", "i32"])
    kv = [(k, next(ints) if t == "u32" else t, v) for k, t, v in gguf_hparams()]
    s["gguf/tokenizer-only-int-types"] = gguf(kv + gguf_tokenizer(), [])
    s["gguf/header-only"] = gguf([("general.architecture", "str", "gpt2")], [])
    # index: the shards fuzz_index.c writes.
    s["index/safetensors"] = index_json(False)
    s["index/torch"] = index_json(True)
    s["index/escaped-duplicate"] = ('{"weight_map": {"wte.weight": "model-00002-of-00002.safetensors", '
                                    '"h.0.ln_1.weight": "model-00001-of-00002.safetensors", '
                                    '"wte.weight": "model-00001-of-00002.safetensors", '
                                    '"ln_f.bias": "model-0000\\u0032-of-00002.safetensors"}, "metadata": {}}')
    s["index/missing-tensor"] = index_json(False, {"h.1.ln_1.weight": "model-00002-of-00002.safetensors"}, indent=None)
    # hf_tokenizer: tokenizer.json in both spellings; vocab.json NUL merges.txt.
    s["hf_tokenizer/tokenizer-json-strings"] = tokenizer_json(pairs=False)
    s["hf_tokenizer/tokenizer-json-pairs"] = tokenizer_json(pairs=True)
    s["hf_tokenizer/vocab-merges"] = vocab_json() + "\0" + merges_txt()
    s["hf_tokenizer/vocab-merges-crlf-no-header"] = vocab_json() + "\0" + merges_txt(header=False, crlf=True)
    s["hf_tokenizer/vocab-no-merges"] = vocab_json() + "\0#version: 0.2\n"
    s["hf_tokenizer/vocab-merges-repeated"] = vocab_json() + "\0" + merges_txt(merges=MERGES + [MERGES[1]])
    s["hf_tokenizer/vocab-merges-empty-line"] = vocab_json() + "\0" + merges_txt().replace("\n", "\n\n", 2)
    # config: as transformers writes it, and variants the reader accepts.
    s["config/gpt2"] = config_json(
        attn_pdrop=0.1, bos_token_id=N_VOCAB - 1, embd_pdrop=0.1, eos_token_id=N_VOCAB - 1, initializer_range=0.02,
        n_inner=None, resid_pdrop=0.1, scale_attn_weights=True, summary_activation=None, summary_first_dropout=0.1,
        summary_proj_to_labels=True, summary_type="cls_index", summary_use_proj=True, use_cache=True,
        task_specific_params={"text-generation": {"do_sample": True, "max_length": 50}},
        transformers_version="4.40.0")
    s["config/minimal"] = '{"vocab_size": %d, "n_embd": 4, "n_layer": 2, "n_head": 2}' % N_VOCAB
    s["config/flags"] = config_json(n_inner=16, scale_attn_by_inverse_layer_idx=False, add_cross_attention=False,
                                    tie_word_embeddings=True, layer_norm_epsilon=1e-6, n_ctx=1024)
    s["config/refused-activation"] = config_json(activation_function="relu")
    return s


def models(out):
    def folder(name, weights):
        d = os.path.join(out, name)
        write(os.path.join(d, "config.json"), config_json())
        for f, data in weights.items():
            write(os.path.join(d, f), data)
        return d

    entries, storages = one_storage_each(hf_tensors(), "f32")
    d = folder("torch-zip", {"pytorch_model.bin": torch_zip(entries, storages)})
    write(os.path.join(d, "vocab.json"), vocab_json())
    write(os.path.join(d, "merges.txt"), merges_txt())
    d = folder("torch-legacy", {"pytorch_model.bin": torch_legacy(entries, storages)})
    write(os.path.join(d, "tokenizer.json"), tokenizer_json(pairs=False))
    d = folder("tokenizer-json-pairs", {"pytorch_model.bin": torch_zip(*one_storage(hf_tensors(), "bf16"),
                                                                       zip64=True, descriptor=True)})
    write(os.path.join(d, "tokenizer.json"), tokenizer_json(pairs=True))
    half = len(hf_tensors()) // 2
    parts = [hf_tensors()[:half], hf_tensors()[half:]]
    weights, wm = {}, {}
    for i, part in enumerate(parts):
        f = "pytorch_model-%05d-of-00002.bin" % (i + 1)
        weights[f] = torch_zip(*one_storage_each(part, "f16"))
        for name, _ in part:
            wm[name] = f
    weights["pytorch_model.bin.index.json"] = json.dumps({"metadata": {}, "weight_map": wm})
    d = folder("torch-sharded", weights)
    write(os.path.join(d, "vocab.json"), vocab_json())
    write(os.path.join(d, "merges.txt"), merges_txt())
    write(os.path.join(out, "gpt2.gguf"),
          gguf(gguf_hparams() + gguf_tokenizer(), gguf_model_tensors("f16", tied_output=True)))


def main():
    args = sys.argv[1:]
    for name, data in seeds().items():
        write(os.path.join(CORPUS, name), data)
    if args[:1] == ["--models"] and len(args) == 2:
        models(args[1])
    elif args:
        sys.exit("usage: make_seeds.py [--models DIR]")


if __name__ == "__main__":
    main()
