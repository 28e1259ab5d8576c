/* model_format.c - see model_format.h. */
#include "model_format.h"

#include <math.h>
#include <stdio.h>

bool model_config_check(const ModelConfig *c, char *err, size_t errsz) {
    struct { const char *name; uint32_t value, lo, hi; } bounds[] = {
        {"n_vocab", c->n_vocab, 257, MAX_VOCAB}, {"n_ctx", c->n_ctx, 1, MAX_CTX},
        {"n_embd", c->n_embd, 1, MAX_EMBD},      {"n_layer", c->n_layer, 1, MAX_LAYER},
        {"n_head", c->n_head, 1, MAX_HEAD},
    };
    for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++) {
        if (bounds[i].value < bounds[i].lo || bounds[i].value > bounds[i].hi) {
            snprintf(err, errsz, "%s is %u, outside %u..%u", bounds[i].name, bounds[i].value, bounds[i].lo,
                     bounds[i].hi);
            return false;
        }
    }
    if (c->n_embd % c->n_head) {
        snprintf(err, errsz, "n_embd %u is not a multiple of n_head %u", c->n_embd, c->n_head);
        return false;
    }
    if ((unsigned)c->dtype >= DTYPE_COUNT) {
        snprintf(err, errsz, "unknown weight dtype %u", (unsigned)c->dtype);
        return false;
    }
    if (c->eot_id >= c->n_vocab) {
        snprintf(err, errsz, "end-of-text id %u is not below n_vocab %u", c->eot_id, c->n_vocab);
        return false;
    }
    if (!(c->ln_eps > 0 && c->ln_eps < 1) || !isfinite(c->ln_eps)) {
        snprintf(err, errsz, "LayerNorm epsilon %g is outside (0, 1)", (double)c->ln_eps);
        return false;
    }
    return true;
}

size_t model_tensor_count(const ModelConfig *c) { return TENSORS_GLOBAL + (size_t)TENSORS_PER_LAYER * c->n_layer; }

void model_tensor_spec(const ModelConfig *c, size_t i, TensorSpec *out) {
    static const struct {
        const char *name;
        int rows_c, cols_c; /* multiples of n_embd; 0 means a special size */
        bool is_matrix, transposed;
    } global[TENSORS_GLOBAL] = {
        {"wte.weight", 0, 1, true, false},
        {"wpe.weight", 0, 1, false, false},
        {"ln_f.weight", 0, 1, false, false},
        {"ln_f.bias", 0, 1, false, false},
    }, layer[TENSORS_PER_LAYER] = {
        {"ln_1.weight", 0, 1, false, false},      {"ln_1.bias", 0, 1, false, false},
        {"attn.c_attn.weight", 3, 1, true, true}, {"attn.c_attn.bias", 0, 3, false, false},
        {"attn.c_proj.weight", 1, 1, true, true}, {"attn.c_proj.bias", 0, 1, false, false},
        {"ln_2.weight", 0, 1, false, false},      {"ln_2.bias", 0, 1, false, false},
        {"mlp.c_fc.weight", 4, 1, true, true},    {"mlp.c_fc.bias", 0, 4, false, false},
        {"mlp.c_proj.weight", 1, 4, true, true},  {"mlp.c_proj.bias", 0, 1, false, false},
    };
    const uint32_t C = c->n_embd;
    if (i < TENSORS_GLOBAL) {
        out->kind = (TensorKind)i;
        out->layer = 0;
        out->rows = i == TK_WTE ? c->n_vocab : i == TK_WPE ? c->n_ctx : 1;
        out->cols = C;
        out->is_matrix = global[i].is_matrix;
        out->hf_transposed = false;
        snprintf(out->name, sizeof out->name, "%s", global[i].name);
        return;
    }
    size_t j = (i - TENSORS_GLOBAL) % TENSORS_PER_LAYER;
    out->kind = (TensorKind)(TK_LN1_W + j);
    out->layer = (uint32_t)((i - TENSORS_GLOBAL) / TENSORS_PER_LAYER);
    out->rows = layer[j].rows_c ? (uint32_t)layer[j].rows_c * C : 1;
    out->cols = (uint32_t)layer[j].cols_c * C;
    out->is_matrix = layer[j].is_matrix;
    out->hf_transposed = layer[j].transposed;
    snprintf(out->name, sizeof out->name, "h.%u.%s", out->layer, layer[j].name);
}

DType tensor_dtype(const ModelConfig *c, const TensorSpec *s) {
    if (!s->is_matrix) return DTYPE_F32;
    if (c->dtype == DTYPE_Q8_0 && s->cols % Q8_BLOCK) return DTYPE_F16;
    return c->dtype;
}

uint64_t tensor_bytes(const TensorSpec *s, DType t) {
    if (s->is_matrix) return panel_matrix_bytes(t, s->rows, s->cols);
    if (t != DTYPE_F32) return 0;
    return (uint64_t)s->rows * s->cols * sizeof(float);
}
