/* complete.c - the smallest program on libgpt2: complete a prompt.
 *
 *   complete MODEL_FILE "prompt text" [N_TOKENS]
 *
 * Build it against an installed libgpt2 with pkg-config:
 *   cc complete.c $(pkg-config --cflags --libs gpt2) -o complete
 * or with CMake: examples/CMakeLists.txt (find_package(gpt2)).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gpt2.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: complete MODEL_FILE PROMPT [N_TOKENS]\n");
        return 2;
    }
    char err[256];
    Gpt2 *g = gpt2_open(argv[1], NULL, err, sizeof err);
    if (!g) {
        fprintf(stderr, "complete: %s\n", err);
        return 1;
    }
    int32_t *ids;
    size_t n;
    if (!gpt2_tokenize(g, argv[2], strlen(argv[2]), false, &ids, &n, err, sizeof err)) {
        fprintf(stderr, "complete: %s\n", err);
        gpt2_close(g);
        return 1;
    }
    Gpt2Completion c = {.prompt = ids, .n_prompt = n, .params = gpt2_default_params()};
    c.params.n_predict = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 20;
    c.params.sampling.temperature = 0; /* greedy: the same text every run */
    bool ok = gpt2_generate(g, &c, 1, NULL, err, sizeof err);
    if (ok)
        printf("%s%.*s\n[%s, %zu tokens, libgpt2 %s]\n", argv[2], (int)c.text_len, c.text, gpt2_finish_name(c.finish),
               c.n_tokens, gpt2_version());
    else fprintf(stderr, "complete: %s\n", err);
    gpt2_completion_free(&c);
    free(ids);
    gpt2_close(g);
    return ok ? 0 : 1;
}
