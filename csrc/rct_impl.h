/* Template: the reversible colour transform (JPEG 2000 RCT) over three
 * component planes.  Expects TB (the planes' type), T (the arithmetic's type,
 * TB or wider), NARROW (1 if TB is narrower) and SFX(name).  The inverse
 * returns 0 if a narrow plane cannot hold a result (redo it wide). */

static void SFX(rct_fwd)(TB *c0, TB *c1, TB *c2, size_t count)
{
    /* narrow planes hold 8-bit samples: every result fits */
    for (size_t i = 0; i < count; i++) {
        const T r = c0[i], g = c1[i], b = c2[i];
        c0[i] = (TB)((r + 2 * g + b) >> 2);
        c1[i] = (TB)(b - g);
        c2[i] = (TB)(r - g);
    }
}

static int SFX(rct_inv)(TB *c0, TB *c1, TB *c2, size_t count)
{
    int overflow = 0;
    for (size_t i = 0; i < count; i++) {
        const T g = c0[i] - ((c1[i] + (T)c2[i]) >> 2), r = c2[i] + g, b = c1[i] + g;
        c0[i] = (TB)r;
        c2[i] = (TB)b;
        c1[i] = (TB)g;
        if (NARROW) overflow |= (T)(TB)r != r || (T)(TB)g != g || (T)(TB)b != b;
    }
    return !overflow;
}
