#!/usr/bin/env python3
"""model-to-hf.py - write an f32 gpt2 model file back out as a Hugging Face
GPT-2 folder: config.json and model.safetensors, or shards with
model.safetensors.index.json.  A developer's tool (scripts/check-big-model.sh
uses it to make a big safetensors checkpoint whose conversion must give back
the very same model file); standard library only.

Usage: scripts/model-to-hf.py MODEL OUT_DIR [--shards N] [--prefix P]

The tensors are named as the Hugging Face hub's GPT-2 checkpoints name them
(h.N.attn.c_attn.weight, Conv1D weights stored [in, out]), each layer with
its h.N.attn.bias causal-mask buffer (F32 [1, 1, n_ctx, n_ctx]) as in the
hub's files, and the data in name order, as the safetensors library writes
it.  --shards N splits the tensors, in name order, into at most N files
as even as that order allows, named as transformers names them; --prefix P
(e.g. "transformer.") is put before every name.  vocab.json and merges.txt
are not written: copy GPT-2's.
Memory stays at about one tensor (wte: n_vocab x n_embd x 4 bytes).
"""
import json
import mmap
import os
import struct
import sys

KINDS = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"]
LAYER_KINDS = ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
               "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
               "mlp.c_proj.weight", "mlp.c_proj.bias"]
MATRIX = {0, 6, 8, 12, 14}  # stored in the panel layout
TRANSPOSED = {6, 8, 12, 14}  # Conv1D: Hugging Face stores [in, out]


def fail(msg):
    sys.exit("model-to-hf.py: " + msg)


def f32_text(x):
    """The shortest decimal that reads back as the same float32."""
    want = struct.pack("<f", x)
    for digits in range(1, 10):
        s = "%.*g" % (digits, x)
        if struct.pack("<f", float(s)) == want:
            return float(s)
    return x


class Model:
    def __init__(self, path):
        self.file = open(path, "rb")
        self.map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        m = self.map
        if len(m) < 128 or m[:8] != b"GPT2MODL":
            fail("%s: not a gpt2 model file" % path)
        (version, _, self.n_vocab, self.n_ctx, self.n_embd, self.n_layer, self.n_head, dtype, self.eot_id,
         self.ln_eps, _, n_tensors) = struct.unpack_from("<IIIIIIIIIfII", m, 8)
        if version not in (2, 3):
            fail("%s: model file version %d, not 2 or 3" % (path, version))
        if version == 3 and struct.unpack_from("<I", m, 112)[0] != 0:
            fail("%s: the model has added tokens, which this script does not write out" % path)
        if dtype != 0:
            fail("%s: only f32 model files can be written out (this one's dtype is %d)" % (path, dtype))
        dir_at = struct.unpack_from("<Q", m, 88)[0]
        self.tensors = []  # (name, kind, layer, rows, cols, offset, bytes)
        for i in range(n_tensors):
            kind, layer, tdtype, rows, cols, off, nbytes = struct.unpack_from("<HHIIIQQ", m, dir_at + 32 * i)
            if tdtype != 0:
                fail("%s: tensor %d is not f32" % (path, i))
            name = KINDS[kind] if kind < 4 else "h.%d.%s" % (layer, LAYER_KINDS[kind - 4])
            self.tensors.append((name, kind, layer, rows, cols, off, nbytes))

    def last_offset(self):
        return max(t[5] for t in self.tensors)

    def hf_shape(self, kind, rows, cols):
        if kind in TRANSPOSED:
            return [cols, rows]
        if kind in MATRIX or kind == 1:
            return [rows, cols]
        return [cols]

    def hf_bytes(self, kind, rows, cols, off, nbytes):
        """The tensor's values in Hugging Face's layout, as bytes."""
        src = memoryview(self.map)[off:off + nbytes]
        if kind not in MATRIX:
            return bytes(src)
        src = src.cast("I")  # bit patterns: nothing is converted
        out = memoryview(bytearray(4 * rows * cols)).cast("I")
        # Panel p holds rows 16p..16p+15 column by column: (r, c) is element
        # (p * cols + c) * 16 + r % 16.  One strided copy per row.
        for r in range(rows):
            p, i = divmod(r, 16)
            row = src[p * cols * 16 + i:(p + 1) * cols * 16:16]
            if kind in TRANSPOSED:
                out[r::rows] = row  # column r of [cols][rows]
            else:
                out[r * cols:(r + 1) * cols] = row
        out = out.cast("B")
        # Done with these pages of the model file: the resident set stays
        # at about one tensor rather than growing to the whole file.
        start = off // mmap.PAGESIZE * mmap.PAGESIZE
        self.map.madvise(mmap.MADV_DONTNEED, start, off + nbytes - start)
        return out


def causal_mask(n):
    one, zero = struct.pack("<f", 1.0), bytes(4)
    return b"".join(one * (t + 1) + zero * (n - t - 1) for t in range(n))


def main(argv):
    args, shards, prefix = [], 1, ""
    it = iter(argv)
    for a in it:
        if a == "--shards":
            shards = int(next(it, "0"))
        elif a == "--prefix":
            prefix = next(it, "")
        elif a in ("-h", "--help"):
            print(__doc__.strip())
            return
        else:
            args.append(a)
    if len(args) != 2 or shards < 1:
        fail("usage: model-to-hf.py MODEL OUT_DIR [--shards N] [--prefix P]")
    model = Model(args[0])
    last = max(model.tensors, key=lambda t: t[5])
    print("%s: %d bytes; the last tensor, %s, starts at byte %d" % (args[0], len(model.map), last[0], last[5]))
    out_dir = args[1]
    os.makedirs(out_dir, exist_ok=True)

    # Every entry: (name, shape, size, function giving its bytes).
    entries = []
    for name, kind, layer, rows, cols, off, nbytes in model.tensors:
        shape = model.hf_shape(kind, rows, cols)
        entries.append((prefix + name, shape, 4 * rows * cols,
                        lambda k=kind, r=rows, c=cols, o=off, b=nbytes: model.hf_bytes(k, r, c, o, b)))
    mask = None
    for layer in range(model.n_layer):
        n = model.n_ctx
        entries.append((prefix + "h.%d.attn.bias" % layer, [1, 1, n, n], 4 * n * n,
                        lambda: mask))
    entries.sort(key=lambda e: e[0])
    mask = causal_mask(model.n_ctx)

    total = sum(e[2] for e in entries)
    def split(limit):  # as transformers's max_shard_size: a new file when the next tensor would pass limit
        groups, at = [[]], 0
        for e in entries:
            if groups[-1] and at + e[2] > limit:
                groups.append([])
                at = 0
            groups[-1].append(e)
            at += e[2]
        return groups

    # The smallest limit that makes at most N files.
    low, high = max(e[2] for e in entries), total
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if len(split(mid)) <= shards else (mid + 1, high)
    groups = split(low)
    names = (["model.safetensors"] if len(groups) == 1 else
             ["model-%05d-of-%05d.safetensors" % (i + 1, len(groups)) for i in range(len(groups))])
    weight_map = {}
    for file_name, group in zip(names, groups):
        header, at = {"__metadata__": {"format": "pt"}}, 0
        for name, shape, size, _ in group:
            header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [at, at + size]}
            weight_map[name] = file_name
            at += size
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        path = os.path.join(out_dir, file_name)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for name, shape, size, data in group:
                b = data()
                if len(b) != size:
                    fail("%s: %d bytes, expected %d" % (name, len(b), size))
                f.write(b)
        print("%s: %d bytes, %d tensors; the last, %s, starts at byte %d" %
              (path, os.path.getsize(path), len(group), group[-1][0], 8 + len(text) + at - group[-1][2]))
    if len(groups) > 1:
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
            f.write("\n")
    config = {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "bos_token_id": model.eot_id,
        "eos_token_id": model.eot_id, "layer_norm_epsilon": f32_text(model.ln_eps), "model_type": "gpt2",
        "n_ctx": model.n_ctx, "n_embd": model.n_embd, "n_head": model.n_head, "n_layer": model.n_layer,
        "n_positions": model.n_ctx, "vocab_size": model.n_vocab,
    }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
