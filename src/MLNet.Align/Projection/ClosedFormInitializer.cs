using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation.Baselines;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// Initialises a projector from a closed-form alignment, so that training starts where the best closed-form baseline
/// is and InfoNCE only has to improve on it (issue "main job", lever "a linear branch initialised from the closed-form
/// solution"). Works on the paper's token projector used as a global piece (LayerNorm -> Dropout -> Linear +
/// Linear-GELU-Linear, PAPER.md 3.2): its linear branch takes the closed-form map, the last layer of its non-linear
/// branch starts at zero, so at step 0 the model equals the closed-form map computed on LayerNorm-ed features.
/// </summary>
public static class ClosedFormInitializer
{
    /// <summary>
    /// Reverse ridge (text -> image space, <see cref="ReverseRidgeMap"/>) in LayerNorm space. Requires
    /// ImageGlobal = TextGlobal = <see cref="ProjectorKind.Token"/>, no local pieces, and E = image dimension.
    /// Image side: LN(x) - mean (linear branch = identity, bias = -mean). Text side: (LN(t) - mean_t) W', W' the ridge
    /// solution of LN(T) -> LN(X).
    /// </summary>
    /// <param name="image">Training image features [n, d_i] (pooled, as the trainer sees them).</param>
    /// <param name="text">Training text features [n, d_t], row i paired with image row i.</param>
    /// <param name="lambda">Relative ridge strength (see <see cref="ReverseRidgeMap.Options.Lambda"/>).</param>
    /// <exception cref="ArgumentException">The model's configuration does not fit (names the piece), or the matrices
    /// do not pair.</exception>
    public static Action<AlignedModel> ReverseRidge(EmbeddingMatrix image, EmbeddingMatrix text, double lambda = 0.1)
    {
        var lnImage = LayerNormRows(image);
        var lnText = LayerNormRows(text);
        var map = ReverseRidgeMap.Fit(lnImage, lnText, new ReverseRidgeMap.Options { Lambda = lambda });
        return model =>
        {
            var o = model.Network.Options;
            if (o.ImageGlobal != ProjectorKind.Token || o.TextGlobal != ProjectorKind.Token || o.ImageLocal != ProjectorKind.None || o.TextLocal != ProjectorKind.None)
                throw new ArgumentException($"Closed-form initialisation needs ImageGlobal = TextGlobal = Token and no local pieces; got image {o.ImageLocal}/{o.ImageGlobal}, text {o.TextLocal}/{o.TextGlobal}.");
            if (o.EmbeddingDimension != image.Columns)
                throw new ArgumentException($"Reverse-ridge initialisation maps into the image space: EmbeddingDimension must be {image.Columns}, got {o.EmbeddingDimension}.");
            var img = (TokenProjector)model.Network.ImageGlobal!;
            var txt = (TokenProjector)model.Network.TextGlobal;
            int di = image.Columns, dt = text.Columns;
            using var _ = no_grad();
            // Image: identity linear branch with bias -mean.
            img.linear.weight!.copy_(eye(di));
            img.linear.bias!.copy_(tensor(map.ImageSide.Mean).neg());
            // Text: W'^T as [E, d_t] (torch Linear stores [out, in]); bias -mean_t W'.
            var w = tensor(map.TextSide.Weights!).reshape(dt, di);
            var mt = tensor(map.TextSide.Mean).reshape(1, dt);
            txt.linear.weight!.copy_(w.t());
            txt.linear.bias!.copy_(mt.matmul(w).reshape(di).neg());
            foreach (var p in new[] { img, txt })
            {
                p.fc2.weight!.zero_();
                p.fc2.bias!.zero_();
            }
        };
    }

    /// <summary>Per-row LayerNorm without affine (eps 1e-5, biased variance), as torch.nn.LayerNorm at init.</summary>
    public static EmbeddingMatrix LayerNormRows(EmbeddingMatrix m, float epsilon = 1e-5f)
    {
        var result = new float[m.Data.Length];
        for (int r = 0; r < m.Rows; r++)
        {
            var row = m.Row(r);
            double mean = 0; foreach (var v in row) mean += v; mean /= row.Length;
            double var = 0; foreach (var v in row) var += (v - mean) * (v - mean); var /= row.Length;
            float inv = (float)(1 / Math.Sqrt(var + epsilon));
            var dst = result.AsSpan(r * m.Columns, m.Columns);
            for (int c = 0; c < row.Length; c++) dst[c] = (float)((row[c] - mean) * inv);
        }
        return new EmbeddingMatrix(result, m.Rows, m.Columns);
    }
}
