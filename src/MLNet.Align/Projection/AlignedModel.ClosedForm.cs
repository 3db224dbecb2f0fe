using MLNet.Align.Embeddings;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

public sealed partial class AlignedModel
{
    /// <summary>The fixed logit scale (1 / temperature) of every closed-form model: CLIP's 100.</summary>
    public const float ClosedFormLogitScale = 100f;

    /// <summary>
    /// The closed-form map <paramref name="map"/> (least squares, reverse ridge or Procrustes) as an aligned model, so it
    /// saves as a bundle, exports to ONNX and serves exactly like a trained projector: each side becomes one
    /// <see cref="ProjectorKind.Linear"/> piece y = x W + b with b = -mean W (identity W where the map leaves that side
    /// as is), followed by the network's L2 normalisation; temperature 1 / <see cref="ClosedFormLogitScale"/>.
    /// <see cref="ProjectImages"/>/<see cref="ProjectTexts"/> equal <paramref name="map"/>'s up to float rounding.
    /// </summary>
    /// <param name="map">A fitted map ([n, d_i] -> [n, E] and [n, d_t] -> [n, E]).</param>
    public static AlignedModel FromLinearMap(LinearAlignedProjector map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var options = new ProjectorOptions
        {
            ImageGlobal = ProjectorKind.Linear, TextGlobal = ProjectorKind.Linear, EmbeddingDimension = map.EmbeddingDimension, Dropout = 0,
        };
        var model = new AlignedModel(options, map.ImageSide.InputDimension, map.TextSide.InputDimension, initialTemperature: 1.0 / ClosedFormLogitScale)
        {
            Name = map.Name,
        };
        map.ImageSide.CopyInto((TorchSharp.Modules.Linear)model.Network.ImageGlobal!);
        map.TextSide.CopyInto((TorchSharp.Modules.Linear)model.Network.TextGlobal);
        return model;
    }

    /// <summary>
    /// ASIF (relative representations over anchor pairs, Norelli et al. 2023) as an aligned model: both global slots
    /// are <see cref="ProjectorKind.Anchors"/> pieces holding the anchors (row i of <paramref name="image"/> and
    /// <paramref name="text"/> is one pair), so the anchors travel in the bundle's weights and the ONNX graphs compute
    /// similarity to the anchors, top-k sparsification, the power and the normalisation. E = the anchor count N.
    /// </summary>
    /// <param name="image">Anchor image features [N, d_i].</param>
    /// <param name="text">Anchor text features [N, d_t], row i paired with image row i.</param>
    /// <param name="topK">Non-zeros kept per row (clamped to N; ASIF: 800).</param>
    /// <param name="power">Exponent of the kept similarities (ASIF: 8).</param>
    /// <param name="center">Centre each modality by its anchor mean before the cosine.</param>
    /// <exception cref="ArgumentException">Row counts differ, fewer than 2 anchors, <paramref name="topK"/> &lt; 1 or
    /// <paramref name="power"/> not finite and positive.</exception>
    public static AlignedModel FromAnchors(EmbeddingMatrix image, EmbeddingMatrix text, int topK = 800, double power = 8, bool center = false)
    {
        LinearAlignedProjector.CheckPairs(image, text, 2);
        if (topK < 1) throw new ArgumentException($"topK must be >= 1, got {topK}.", nameof(topK));
        var options = new ProjectorOptions
        {
            ImageGlobal = ProjectorKind.Anchors, TextGlobal = ProjectorKind.Anchors, EmbeddingDimension = image.Rows, Dropout = 0,
            AnchorTopK = Math.Min(topK, image.Rows), AnchorPower = power,
        };
        var model = new AlignedModel(options, image.Columns, text.Columns, initialTemperature: 1.0 / ClosedFormLogitScale) { Name = "asif" };
        Fill((AnchorProjector)model.Network.ImageGlobal!, image, center);
        Fill((AnchorProjector)model.Network.TextGlobal, text, center);
        return model;

        static void Fill(AnchorProjector piece, EmbeddingMatrix x, bool center)
        {
            var mean = center ? DenseMath.ColumnMeans(x) : new float[x.Columns];
            piece.SetAnchors(DenseMath.NormalizeRows(DenseMath.SubtractRow(x, mean)).Data, mean);
        }
    }
}
