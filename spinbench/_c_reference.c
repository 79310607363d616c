/* A small C multi-spin reference for `spinbench bench`: the Metropolis checkerboard of the 2D
 * Ising model (J = 1, periodic L x L lattices), with an independent random number for every
 * decision. spinbench builds it with the system C compiler.
 *
 * Layout (the one of spinbench's packed kernel, in 64-bit words): each colour c of the
 * checkerboard is an L x L/2 array; the spin of colour c in row x, column j is the site
 * (x, 2j + (x + c) % 2). Rows are cut into W blocks of R = L / W rows (W the largest divisor
 * of L up to 64); bit t of word (r, j) is the spin in row t R + r (bit 1 = spin -1). The four
 * neighbours of a word are the words above and below (a one-bit rotation across blocks), the
 * same word of the other colour, and its left or right neighbour (by the row's parity).
 *
 * Rule: with k anti-aligned neighbours, dE = 8 - 4k; k >= 2 flips without a random number;
 * k = 0 or 1 flips when a fresh uniform 32-bit number u satisfies u <= m, m = ceil(p 2^32) - 1,
 * p = exp(-dE / T): one number per such spin (the rule spinbench's kernel used before issue
 * 17, exact to 2^-32). Random numbers: xoshiro256++ (Blackman and Vigna 2021), one stream per
 * (lattice, block row r) seeded by splitmix64, each 64-bit output giving two 32-bit numbers,
 * so the lattices share nothing and the result does not depend on the number of threads.
 *
 * With the argument "sliced" the decisions are instead spinbench's bit-sliced ones (see
 * sliced_decisions), about 10 random 64-bit words per 64 decisions, fewer when the lanes of a
 * word are decided early.
 *
 * Protocol (stdin/stdout): argv = L lattices beta seed one|sliced. Each line "N" on stdin runs N sweeps
 * of every lattice and prints "seconds flips" (monotonic clock, the sweeps only); "q" or
 * end of input stops. Threads: OpenMP when compiled with it (OMP_NUM_THREADS).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    uint64_t s[4];
    uint64_t spare; /* the second 32-bit half of the last output */
    int has_spare;
} rng_t;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t xoshiro_next(rng_t *g) {
    uint64_t *s = g->s;
    uint64_t result = rotl64(s[0] + s[3], 23) + s[0];
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

static inline uint32_t next32(rng_t *g) {
    if (g->has_spare) {
        g->has_spare = 0;
        return (uint32_t)g->spare;
    }
    uint64_t x = xoshiro_next(g);
    g->spare = x >> 32;
    g->has_spare = 1;
    return (uint32_t)x;
}

typedef struct {
    int L, W, R, H, lattices;
    uint64_t mask;
    uint64_t *spins[2]; /* [lattice][r][j] per colour */
    uint64_t *parity[2]; /* [r]: bits whose row x has x + c odd (third neighbour at j + 1) */
    rng_t *rngs;          /* [lattice][r] */
    uint32_t limit[2];    /* m for k = 0 (dE = 8) and k = 1 (dE = 4) */
    int sliced;           /* 1: bit-sliced decisions (below) instead of one number each */
    uint32_t lead[2], rest[2]; /* the sliced rule's thresholds for k = 0 and k = 1 */
} sim_t;

/* Bit-sliced decisions, spinbench's rule in 64 lanes: bit i of random word i is bit i (most
 * significant first) of each lane's uniform, compared with p's 8 leading bits; the loop stops
 * as soon as no lane is undecided. The (at most 8) lowest lanes still tied then get a 16-bit
 * uniform each against p's next 16 bits (2 more outputs); a lane past the eighth tie takes
 * the likelier outcome (probability < 2^-8 C(63, 8) 2^-64 < 2^-40). */
static inline uint64_t sliced_decisions(const sim_t *s, rng_t *g, uint64_t hi, uint64_t lo) {
    uint64_t accept = 0, undecided = hi | lo;
    for (int i = 7; i >= 0 && undecided; i--) {
        uint64_t target = (hi & (0ull - (uint64_t)((s->lead[0] >> i) & 1))) |
                          (lo & (0ull - (uint64_t)((s->lead[1] >> i) & 1)));
        uint64_t u = xoshiro_next(g);
        accept |= undecided & target & ~u;
        undecided &= ~(u ^ target);
    }
    for (int j = 0; j < 2 && undecided; j++) {
        uint64_t u = xoshiro_next(g);
        for (int h = 0; h < 4 && undecided; h++) {
            uint64_t lowest = undecided & (~undecided + 1);
            uint32_t v = (uint32_t)(u >> (16 * h)) & 0xFFFFu;
            uint32_t rest = (hi & lowest) ? s->rest[0] : s->rest[1];
            accept |= lowest & (0ull - (uint64_t)(v < rest));
            undecided ^= lowest;
        }
    }
    uint64_t likely = (hi & (0ull - (uint64_t)(s->rest[0] >= 0x8000u))) |
                      (lo & (0ull - (uint64_t)(s->rest[1] >= 0x8000u)));
    return accept | (undecided & likely);
}

static inline uint64_t rot_up(const sim_t *s, uint64_t w) {
    if (s->W == 1) return w;
    return ((w << 1) | (w >> (s->W - 1))) & s->mask;
}

static inline uint64_t rot_down(const sim_t *s, uint64_t w) {
    if (s->W == 1) return w;
    return ((w >> 1) | (w << (s->W - 1))) & s->mask;
}

/* One colour of one block row r of one lattice; returns the flips. */
static uint64_t half_row(sim_t *s, int colour, int lat, int r) {
    const int R = s->R, H = s->H;
    uint64_t *own = s->spins[colour] + (size_t)lat * R * H;
    const uint64_t *oth = s->spins[1 - colour] + (size_t)lat * R * H;
    const uint64_t odd = s->parity[colour][r];
    rng_t *g = &s->rngs[(size_t)lat * R + r];
    uint64_t flips = 0;
    for (int j = 0; j < H; j++) {
        uint64_t me = own[(size_t)r * H + j];
        uint64_t up = r > 0 ? oth[(size_t)(r - 1) * H + j] : rot_up(s, oth[(size_t)(R - 1) * H + j]);
        uint64_t down = r < R - 1 ? oth[(size_t)(r + 1) * H + j] : rot_down(s, oth[j]);
        uint64_t same = oth[(size_t)r * H + j];
        uint64_t right = oth[(size_t)r * H + (j + 1 == H ? 0 : j + 1)];
        uint64_t left = oth[(size_t)r * H + (j == 0 ? H - 1 : j - 1)];
        uint64_t side = (right & odd) | (left & ~odd);
        uint64_t a1 = me ^ up, a2 = me ^ down, a3 = me ^ same, a4 = me ^ side;
        uint64_t s1 = a1 ^ a2, c1 = a1 & a2, s2 = a3 ^ a4, c2 = a3 & a4;
        uint64_t none = ~(s1 | s2 | c1 | c2) & s->mask; /* k = 0 */
        uint64_t one = (s1 ^ s2) & ~(c1 | c2) & s->mask; /* k = 1 */
        uint64_t flip = ~(none | one) & s->mask;
        if (s->sliced) {
            flip |= sliced_decisions(s, g, none, one);
        } else {
            uint64_t need = none | one;
            while (need) {
                uint64_t bit = need & (~need + 1); /* lowest spin that needs a number */
                need ^= bit;
                uint32_t m = (none & bit) ? s->limit[0] : s->limit[1];
                if (next32(g) <= m) flip |= bit;
            }
        }
        own[(size_t)r * H + j] = me ^ flip;
        flips += (uint64_t)__builtin_popcountll(flip);
    }
    return flips;
}

static uint64_t sweep(sim_t *s) {
    uint64_t flips = 0;
    const int rows = s->lattices * s->R;
    for (int colour = 0; colour < 2; colour++) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(+ : flips)
#endif
        for (int i = 0; i < rows; i++) flips += half_row(s, colour, i / s->R, i % s->R);
    }
    return flips;
}

static uint32_t limit_for(double delta, double beta) {
    double m = ceil(exp(-beta * delta) * 4294967296.0) - 1.0;
    if (m < 0.0) m = 0.0;
    if (m > 4294967295.0) m = 4294967295.0;
    return (uint32_t)m;
}

/* floor(p 2^8) and round(frac(p 2^8) 2^16), as spinbench's thresholds(). */
static void sliced_limits(double delta, double beta, uint32_t *lead, uint32_t *rest) {
    double scaled = exp(-beta * delta) * 256.0;
    double l = floor(scaled);
    if (l > 255.0) l = 255.0;
    *lead = (uint32_t)l;
    *rest = (uint32_t)nearbyint((scaled - l) * 65536.0);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s L lattices beta seed one|sliced\n", argv[0]);
        return 2;
    }
    sim_t s;
    s.L = atoi(argv[1]);
    s.lattices = atoi(argv[2]);
    double beta = atof(argv[3]);
    uint64_t seed = strtoull(argv[4], NULL, 10);
    if (s.L < 2 || s.L % 2 || s.lattices < 1 || !(beta > 0.0)) {
        fprintf(stderr, "need an even L >= 2, lattices >= 1 and beta > 0\n");
        return 2;
    }
    s.W = 1;
    for (int d = 1; d <= 64; d++)
        if (s.L % d == 0) s.W = d;
    s.R = s.L / s.W;
    s.H = s.L / 2;
    s.mask = s.W == 64 ? ~0ull : ((1ull << s.W) - 1);
    s.limit[0] = limit_for(8.0, beta);
    s.limit[1] = limit_for(4.0, beta);
    s.sliced = strcmp(argv[5], "sliced") == 0;
    if (!s.sliced && strcmp(argv[5], "one") != 0) {
        fprintf(stderr, "the rule is 'one' or 'sliced', not %s\n", argv[5]);
        return 2;
    }
    sliced_limits(8.0, beta, &s.lead[0], &s.rest[0]);
    sliced_limits(4.0, beta, &s.lead[1], &s.rest[1]);
    size_t words = (size_t)s.lattices * s.R * s.H;
    uint64_t init = seed ^ 0x5EED5EED5EED5EEDull;
    for (int c = 0; c < 2; c++) {
        s.spins[c] = malloc(words * sizeof(uint64_t));
        s.parity[c] = malloc((size_t)s.R * sizeof(uint64_t));
        if (!s.spins[c] || !s.parity[c]) return 3;
        for (size_t i = 0; i < words; i++) s.spins[c][i] = splitmix64(&init) & s.mask;
        for (int r = 0; r < s.R; r++) {
            uint64_t m = 0;
            for (int t = 0; t < s.W; t++)
                if ((t * s.R + r + c) % 2) m |= 1ull << t;
            s.parity[c][r] = m;
        }
    }
    s.rngs = malloc((size_t)s.lattices * s.R * sizeof(rng_t));
    if (!s.rngs) return 3;
    for (size_t i = 0; i < (size_t)s.lattices * s.R; i++) {
        uint64_t x = seed * 0x9E3779B97F4A7C15ull + i;
        for (int k = 0; k < 4; k++) s.rngs[i].s[k] = splitmix64(&x);
        s.rngs[i].has_spare = 0;
    }
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'q') break;
        long n = atol(line);
        uint64_t flips = 0;
        double start = now();
        for (long i = 0; i < n; i++) flips += sweep(&s);
        double seconds = now() - start;
        printf("%.9f %llu\n", seconds, (unsigned long long)flips);
        fflush(stdout);
    }
    return 0;
}
