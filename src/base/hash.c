/* hash.c - see hash.h.  SipHash-1-3 as in the reference implementation
 * (Aumasson and Bernstein), little-endian words. */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

typedef struct {
    uint64_t v0, v1, v2, v3;
} SipState;

static inline void sip_round(SipState *s) {
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static inline SipState sip_init(HashKey key) {
    return (SipState){key.k0 ^ 0x736f6d6570736575ull, key.k1 ^ 0x646f72616e646f6dull, key.k0 ^ 0x6c7967656e657261ull,
                      key.k1 ^ 0x7465646279746573ull};
}

static inline void sip_word(SipState *s, uint64_t m) {
    s->v3 ^= m;
    sip_round(s);
    s->v0 ^= m;
}

static inline uint64_t sip_final(SipState *s) {
    s->v2 ^= 0xff;
    sip_round(s);
    sip_round(s);
    sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
    return w;
}

uint64_t gpt2_hash_bytes(HashKey key, const void *p, size_t n) {
    const uint8_t *b = p;
    SipState s = sip_init(key);
    const uint64_t tail_len = (uint64_t)n << 56;
    while (n >= 8) {
        sip_word(&s, load_le(b, 8));
        b += 8;
        n -= 8;
    }
    sip_word(&s, tail_len | load_le(b, n));
    return sip_final(&s);
}

uint64_t gpt2_hash_u64(HashKey key, uint64_t x) {
    SipState s = sip_init(key);
    sip_word(&s, x);
    sip_word(&s, (uint64_t)8 << 56);
    return sip_final(&s);
}

/* Fills buf from the kernel's random source; false when there is none. */
static bool system_random(void *buf, size_t n) {
#if defined(__linux__)
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, GRND_NONBLOCK);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        p += got;
        n -= (size_t)got;
    }
    if (n == 0) return true;
    buf = p;
#endif
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    uint8_t *q = buf;
    while (n > 0) {
        ssize_t got = read(fd, q, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        q += got;
        n -= (size_t)got;
    }
    close(fd);
    return n == 0;
}

HashKey gpt2_hash_new_key(void) {
    static uint64_t counter;
    HashKey key = {0, 0};
    if (system_random(&key, sizeof key)) return key;
    /* No random source (a chroot without /dev, an old kernel): still not
     * something a file's author can predict from the file. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    HashKey seed = {(uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec, (uint64_t)getpid()};
    uint64_t stir[3] = {(uint64_t)(uintptr_t)&key, (uint64_t)(uintptr_t)&counter, ++counter};
    key.k0 = gpt2_hash_bytes(seed, stir, sizeof stir);
    key.k1 = gpt2_hash_u64(seed, key.k0 ^ counter);
    return key;
}
