/* fuzz_config.c - libFuzzer target for the config.json reader.
 *
 * Each input is a config.json, given from memory to gpt2_hf_config_parse
 * with a ModelConfig already holding a dtype and an end-of-text id, as the
 * converter calls it.  A refusal is one non-empty line and leaves the
 * config as it was; what is accepted keeps the dtype and end-of-text id,
 * and the rest passes gpt2_model_config_check (bounds, n_embd a multiple
 * of n_head, the epsilon in (0, 1)).  The input is copied to an allocation
 * of exactly its size, so ASan catches a read past its end.
 *
 * Seeds (fuzz/corpus/config/, written by fuzz/make_seeds.py): a config as
 * transformers writes it, the four required keys alone, every optional
 * flag at GPT-2's value, and an activation the reader refuses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "fuzz_check.h"
#include "model_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    const ModelConfig before = {.dtype = DTYPE_Q8_0, .eot_id = 256, .n_vocab = 7, .ln_eps = 0.5f};
    ModelConfig c = before;
    char err[512];
    if (gpt2_hf_config_parse(text, size, "config.json", &c, err, sizeof err)) {
        require(c.dtype == before.dtype && c.eot_id == before.eot_id);
        require(gpt2_model_config_check(&c, err, sizeof err));
    } else {
        check_refusal(err, sizeof err);
        require(memcmp(&c, &before, sizeof c) == 0);
    }
    free(text);
    return 0;
}
