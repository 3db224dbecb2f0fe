using MLNet.Align.Embeddings;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// Orthogonal Procrustes baseline (Schönemann 1966): both modalities are centred by their training means and
/// L2-normalised row-wise; then W = argmax tr(Wᵀ XᵀT) subject to WᵀW = I, i.e. W = U Vᵀ from the thin SVD
/// XᵀT = U S Vᵀ. When widths differ (e.g. ResNet18 512 vs MiniLM 384) the wider modality is mapped into the narrower
/// one by a semi-orthogonal W [d_wide, d_narrow] (orthonormal columns) and the narrower one is left as is, so
/// E = min(d_image, d_text). Images: normalize((x − μx) W) (or normalize(x − μx)); texts likewise. The per-row
/// normalisation used in fitting is a scalar and does not change the normalised output.
/// </summary>
public sealed class ProcrustesMap : LinearAlignedProjector
{
    /// <summary>Fit settings.</summary>
    public sealed record Options
    {
        /// <summary>L2-normalise centred rows before fitting (default true): every pair weighs the same.</summary>
        public bool NormalizeRows { get; init; } = true;
    }

    private ProcrustesMap(LinearSide image, LinearSide text, bool imageMapped) : base("procrustes", image, text) => MapsImage = imageMapped;

    /// <summary>True when the image side carries the orthogonal map (d_image &gt;= d_text), false when the text side does.</summary>
    public bool MapsImage { get; }

    /// <summary>The fitted orthogonal / semi-orthogonal matrix [d_wide, E] row-major.</summary>
    public float[] Rotation => (MapsImage ? ImageSide.Weights : TextSide.Weights)!;

    /// <summary>Fits on paired training features (row i of both matrices is one pair).</summary>
    /// <exception cref="ArgumentException">Row counts differ or fewer than 2 rows.</exception>
    public static ProcrustesMap Fit(EmbeddingMatrix image, EmbeddingMatrix text, Options? options = null)
    {
        options ??= new Options();
        LinearAlignedProjector.CheckPairs(image, text, 2);
        var mx = DenseMath.ColumnMeans(image);
        var mt = DenseMath.ColumnMeans(text);
        var xc = DenseMath.SubtractRow(image, mx);
        var tc = DenseMath.SubtractRow(text, mt);
        if (options.NormalizeRows) { xc = DenseMath.NormalizeRows(xc); tc = DenseMath.NormalizeRows(tc); }
        bool mapImage = image.Columns >= text.Columns;
        var (wide, narrow) = mapImage ? (xc, tc) : (tc, xc);
        float[] w;
        using (NewDisposeScope())
        {
            var a = DenseMath.ToTensor(wide);
            var b = DenseMath.ToTensor(narrow);
            var (u, _, vh) = linalg.svd(a.t().matmul(b), fullMatrices: false); // [d_wide, d_narrow] = U S Vh
            w = DenseMath.ToFloatArray(u.matmul(vh));
        }
        int e = narrow.Columns;
        return mapImage
            ? new ProcrustesMap(new LinearSide(mx, w, e), new LinearSide(mt, null, e), true)
            : new ProcrustesMap(new LinearSide(mx, null, e), new LinearSide(mt, w, e), false);
    }
}
