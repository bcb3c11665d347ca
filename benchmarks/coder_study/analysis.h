/* cost breakdown of the current model (ideal adaptive code lengths) */
static double lzcost(uint16_t *p, unsigned bit)
{
    double c = -log2((bit ? 4096 - *p : *p) / 4096.0);
    if (!bit) *p += (4096 - *p) >> 5; else *p -= *p >> 5;
    return c;
}
static void analyse(const image_t *im, uint16_t *rowmem)
{
    double cE = 0, cTop = 0, cRaw = 0, cSign = 0, cSignRaw = 0, n = 0, nz = 0;
    static uint16_t pe[4][32][24], pm[4][64], ps[4][9];
    for (int i = 0; i < im->npieces; i++) {
        for (size_t k = 0; k < sizeof pe / 2; k++) (&pe[0][0][0])[k] = 2048;
        for (size_t k = 0; k < sizeof pm / 2; k++) (&pm[0][0])[k] = 2048;
        for (size_t k = 0; k < sizeof ps / 2; k++) (&ps[0][0])[k] = 2048;
        const piece_t *p = &im->p[i];
        for (int bi = 0; bi < p->nb; bi++) {
            const band_t *b = &p->b[bi];
            for (int y = 0; y < b->h; y++)
                for (int x = 0; x < b->w; x++) {
                    const int32_t *r = b->v + (size_t)y * b->w;
#define MG(yy, xx) (((yy) < 0 || (xx) < 0 || (xx) >= b->w) ? 0u : (iabs32(b->v[(size_t)(yy) * b->w + (xx)]) > 0xFFFF ? 0xFFFF : iabs32(b->v[(size_t)(yy) * b->w + (xx)])))
#define SG(yy, xx) (((yy) < 0 || (xx) < 0) ? 1u : (b->v[(size_t)(yy) * b->w + (xx)] < 0 ? 0u : b->v[(size_t)(yy) * b->w + (xx)] > 0 ? 2u : 1u))
                    uint32_t s = 2 * MG(y, x - 1) + 2 * MG(y - 1, x) + MG(y - 1, x - 1) + MG(y - 1, x + 1);
                    unsigned c = magctx(s), sc = 3 * SG(y, x - 1) + SG(y - 1, x);
                    uint32_t mg = iabs32(r[x]); unsigned E = bitlen(mg);
                    for (unsigned k = 0; k < E; k++) cE += lzcost(&pe[b->cls][c][k < 24 ? k : 23], 1);
                    cE += lzcost(&pe[b->cls][c][E < 24 ? E : 23], 0);
                    if (E >= 2) { cTop += lzcost(&pm[b->cls][E], (mg >> (E - 2)) & 1); cRaw += E - 2; }
                    if (mg) { cSign += lzcost(&ps[b->cls][sc], r[x] < 0); cSignRaw += 1; nz++; }
                    n++;
                }
        }
    }
    printf("current-model ideal bits/coef: E %.4f top %.4f (raw would be %.4f) rawmant %.4f sign %.4f (raw %.4f) total %.4f  nonzero %.3f\n",
           cE / n, cTop / n, 0.0, cRaw / n, cSign / n, cSignRaw / n, (cE + cTop + cRaw + cSign) / n, nz / n);
}
/* static (per piece) empirical entropies of model variants, bits/coef */
#define NV 8
static void static_entropy(const image_t *im)
{
    static double hist[NV][4][64][64];
    double tot[NV] = {0};
    const char *names[NV] = {"E|ctx32", "E|ctx16", "E|ctx16 noW(2N+NW+NE+NN)", "sign|9ctx", "sign|N3ctx", "top|E", "E+top|ctx16 (sym<=31)", "E|ctx8"};
    double n = 0;
    for (int i = 0; i < im->npieces; i++) {
        memset(hist, 0, sizeof hist);
        const piece_t *p = &im->p[i];
        for (int bi = 0; bi < p->nb; bi++) {
            const band_t *b = &p->b[bi];
            for (int y = 0; y < b->h; y++)
                for (int x = 0; x < b->w; x++) {
                    const int32_t *r = b->v + (size_t)y * b->w;
                    uint32_t s = 2 * MG(y, x - 1) + 2 * MG(y - 1, x) + MG(y - 1, x - 1) + MG(y - 1, x + 1);
                    uint32_t s2 = 2 * MG(y - 1, x) + MG(y - 1, x - 1) + MG(y - 1, x + 1) + MG(y - 2, x) + MG(y-1,x-2)+MG(y-1,x+2);
                    unsigned c = magctx(s), c2 = magctx(s2), sc = 3 * SG(y, x - 1) + SG(y - 1, x);
                    uint32_t mg = iabs32(r[x]); unsigned E = bitlen(mg), sym = E < 15 ? E : 15;
                    unsigned top = E >= 2 ? (mg >> (E - 2)) & 1 : 0;
                    unsigned msym = E < 2 ? E : 2 * E - 2 + top; if (msym > 31) msym = 31;
                    hist[0][b->cls][c][sym]++;
                    hist[1][b->cls][(c + 1) >> 1][sym]++;
                    hist[2][b->cls][(c2 + 1) >> 1][sym]++;
                    if (E) { hist[3][b->cls][sc][r[x] < 0]++; hist[4][b->cls][SG(y - 1, x)][r[x] < 0]++; }
                    if (E >= 2) hist[5][b->cls][E][top]++;
                    hist[6][b->cls][(c + 1) >> 1][msym]++;
                    hist[7][b->cls][(c + 3) >> 2][sym]++;
                    n++;
                }
        }
        for (int v = 0; v < NV; v++)
            for (int k = 0; k < 4; k++)
                for (int c = 0; c < 64; c++) {
                    double t = 0;
                    for (int s = 0; s < 64; s++) t += hist[v][k][c][s];
                    for (int s = 0; s < 64; s++) if (hist[v][k][c][s] > 0) tot[v] -= hist[v][k][c][s] * log2(hist[v][k][c][s] / t);
                }
    }
    for (int v = 0; v < NV; v++) printf("  static %-28s %.4f bpc\n", names[v], tot[v] / n);
}
