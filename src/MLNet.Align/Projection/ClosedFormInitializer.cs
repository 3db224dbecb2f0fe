using MLNet.Align.Embeddings;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>Closed-form alignment maps usable as projector initialisation.</summary>
public enum ClosedFormKind
{
    /// <summary>Ridge least squares, image -> text space (<see cref="LeastSquaresMap"/>).</summary>
    LeastSquares,
    /// <summary>Ridge least squares, text -> image space (<see cref="ReverseRidgeMap"/>).</summary>
    ReverseRidge,
    /// <summary>Orthogonal Procrustes after centring (<see cref="ProcrustesMap"/>).</summary>
    Procrustes,
}

/// <summary>
/// Initialises a projector from a closed-form alignment, so that training starts where the best closed-form baseline
/// is and InfoNCE only has to improve on it (issue "main job", lever "a linear branch initialised from the closed-form
/// solution"). Works on the paper's token projector used as a global piece (LayerNorm -> Dropout -> Linear +
/// Linear-GELU-Linear, docs/method.md 3.2): its linear branch takes the closed-form map, the last layer of its non-linear
/// branch starts at zero, so at step 0 the model equals the closed-form map computed on LayerNorm-ed features.
/// </summary>
public static class ClosedFormInitializer
{
    /// <summary>
    /// Fits the closed-form map <paramref name="kind"/> on LayerNorm-ed training features and returns an initialiser
    /// that writes it into a model whose ImageGlobal and TextGlobal pieces are <see cref="ProjectorKind.Token"/> (no
    /// local pieces) and whose EmbeddingDimension equals the map's output width (text width for least squares and
    /// Procrustes with a wider image side, image width for reverse ridge). Each side becomes (LN(v) - mean) W, with
    /// W the map's side (identity where the map leaves that side as is).
    /// </summary>
    /// <param name="kind">Which closed-form map.</param>
    /// <param name="image">Training image features [n, d_i] (pooled, as the trainer sees them).</param>
    /// <param name="text">Training text features [n, d_t], row i paired with image row i.</param>
    /// <param name="lambda">Relative ridge strength for the ridge maps (see <see cref="ReverseRidgeMap.Options.Lambda"/>).</param>
    /// <exception cref="ArgumentException">The model's configuration does not fit (the message names the piece and
    /// the expected width), or the matrices do not pair.</exception>
    public static Action<AlignedModel> Create(ClosedFormKind kind, EmbeddingMatrix image, EmbeddingMatrix text, double lambda = 0.1)
    {
        var lnImage = LayerNormRows(image);
        var lnText = LayerNormRows(text);
        LinearAlignedProjector map = kind switch
        {
            ClosedFormKind.LeastSquares => LeastSquaresMap.Fit(lnImage, lnText, new LeastSquaresMap.Options { Lambda = lambda }),
            ClosedFormKind.ReverseRidge => ReverseRidgeMap.Fit(lnImage, lnText, new ReverseRidgeMap.Options { Lambda = lambda }),
            ClosedFormKind.Procrustes => ProcrustesMap.Fit(lnImage, lnText, new ProcrustesMap.Options { NormalizeRows = false }),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown closed-form map."),
        };
        return model =>
        {
            var o = model.Network.Options;
            // The text side may stay the identity (text embeddings kept as they are, only the image side is learned)
            // when the map leaves the text side unmapped (least squares): the image side then re-adds the text mean.
            bool textIdentity = o.TextGlobal == ProjectorKind.Identity && map.TextSide.Weights is null;
            if (o.ImageGlobal != ProjectorKind.Token || (o.TextGlobal != ProjectorKind.Token && !textIdentity) || o.ImageLocal != ProjectorKind.None || o.TextLocal != ProjectorKind.None)
                throw new ArgumentException($"Closed-form initialisation needs ImageGlobal = Token, TextGlobal = Token (or Identity with least squares) and no local pieces; got image {o.ImageLocal}/{o.ImageGlobal}, text {o.TextLocal}/{o.TextGlobal}.");
            if (o.EmbeddingDimension != map.EmbeddingDimension)
                throw new ArgumentException($"The {kind} map has width {map.EmbeddingDimension}: EmbeddingDimension must be {map.EmbeddingDimension}, got {o.EmbeddingDimension}.");
            using var _ = no_grad();
            Write((TokenProjector)model.Network.ImageGlobal!, map.ImageSide, textIdentity ? map.TextSide.Mean : null);
            if (!textIdentity) Write((TokenProjector)model.Network.TextGlobal, map.TextSide, null);
        };
    }

    /// <summary>Reverse ridge (text -> image space) initialiser; see <see cref="Create"/>.</summary>
    public static Action<AlignedModel> ReverseRidge(EmbeddingMatrix image, EmbeddingMatrix text, double lambda = 0.1)
        => Create(ClosedFormKind.ReverseRidge, image, text, lambda);

    private static void Write(TokenProjector piece, LinearSide side, float[]? addBack)
    {
        side.CopyInto(piece.linear, addBack);
        // The non-linear branch starts silent: step 0 equals the closed-form map.
        piece.fc2.weight!.zero_();
        piece.fc2.bias!.zero_();
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
