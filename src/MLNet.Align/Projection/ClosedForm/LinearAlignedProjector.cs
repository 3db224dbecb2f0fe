using MLNet.Align.Embeddings;
using MLNet.Align.Onnx;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>
/// One side of a linear baseline: y = normalize((x − Mean) · Weights), with Weights [InputDimension, OutputDimension]
/// row-major, or the identity when <see cref="Weights"/> is null.
/// </summary>
public sealed class LinearSide
{
    /// <summary>Creates a side; <paramref name="weights"/> null = identity (then output width = input width).</summary>
    /// <exception cref="ArgumentException">Sizes disagree.</exception>
    public LinearSide(float[] mean, float[]? weights, int outputDimension)
    {
        ArgumentNullException.ThrowIfNull(mean);
        if (weights is null && outputDimension != mean.Length)
            throw new ArgumentException($"An identity side keeps width {mean.Length}, got output width {outputDimension}.");
        if (weights is not null && weights.Length != (long)mean.Length * outputDimension)
            throw new ArgumentException($"Weights have {weights.Length} values, expected {mean.Length}x{outputDimension}.");
        Mean = mean; Weights = weights; OutputDimension = outputDimension;
    }

    /// <summary>Subtracted input mean [InputDimension] (the training mean; zeros when not centring).</summary>
    public float[] Mean { get; }
    /// <summary>Map [InputDimension, OutputDimension] row-major, or null for the identity.</summary>
    public float[]? Weights { get; }
    /// <summary>Input feature width.</summary>
    public int InputDimension => Mean.Length;
    /// <summary>Output (shared space) width.</summary>
    public int OutputDimension { get; }

    internal EmbeddingMatrix Apply(EmbeddingMatrix x, string what)
    {
        DenseMath.RequireWidth(x, InputDimension, what);
        var centred = DenseMath.SubtractRow(x, Mean);
        if (Weights is null) return DenseMath.NormalizeRows(centred);
        using var scope = NewDisposeScope();
        using var w = tensor(Weights, new long[] { InputDimension, OutputDimension });
        using var xt = tensor(centred.Data, new long[] { x.Rows, InputDimension });
        var y = DenseMath.ToFloatArray(xt.matmul(w));
        DenseMath.NormalizeRowsInPlace(y, x.Rows, OutputDimension);
        return new EmbeddingMatrix(y, x.Rows, OutputDimension);
    }

    /// <summary>Writes this side into a torch Linear: weight = W^T, bias = -mean W (+ <paramref name="addBack"/>), so
    /// the piece computes (x - mean) W (+ addBack). Shared by the closed-form models and the closed-form initialiser.</summary>
    internal void CopyInto(TorchSharp.Modules.Linear piece, float[]? addBack = null)
    {
        int din = InputDimension, dout = OutputDimension;
        using var _ = no_grad();
        // torch Linear stores [out, in]; the side's weights are [in, out] row-major (identity when null).
        using var w = Weights is null ? eye(din) : tensor(Weights).reshape(din, dout);
        using var mean = tensor(Mean).reshape(1, din);
        piece.weight!.copy_(w.t());
        using var bias = mean.matmul(w).reshape(dout).neg();
        if (addBack != null) bias.add_(tensor(addBack));
        piece.bias!.copy_(bias);
    }

    internal byte[] ExportOnnx(string graphName, string input, string output)
    {
        var g = new OnnxGraphBuilder(graphName);
        var x = g.Input(input, "batch", (long)InputDimension);
        string y;
        var wT = new float[InputDimension * OutputDimension]; // [out, in] as OnnxGraphBuilder.Linear expects
        if (Weights is null)
            for (int i = 0; i < InputDimension; i++) wT[i * InputDimension + i] = 1f;
        else
            for (int i = 0; i < InputDimension; i++)
                for (int o = 0; o < OutputDimension; o++) wT[o * InputDimension + i] = Weights[i * OutputDimension + o];
        // (x - mean) W = x W + (-mean W): fold the centring into the bias.
        var bias = new float[OutputDimension];
        for (int o = 0; o < OutputDimension; o++)
        {
            double s = 0;
            for (int i = 0; i < InputDimension; i++) s -= Mean[i] * wT[o * InputDimension + i];
            bias[o] = (float)s;
        }
        y = g.Linear(x, wT, bias, OutputDimension, InputDimension, "map");
        var n = g.L2Normalize(y);
        g.Op("Identity", new[] { n }, new Dictionary<string, object>(), output);
        g.Output(output, "batch", (long)OutputDimension);
        return g.ToBytes(docString: graphName);
    }
}

/// <summary>
/// Base of the closed-form linear baselines (<see cref="LeastSquaresMap"/>, <see cref="ReverseRidgeMap"/>,
/// <see cref="ProcrustesMap"/>): each modality is centred, optionally mapped by a fitted matrix, and L2-normalised.
/// Exportable as ONNX (MatMul + Add + L2 normalisation; tokens are not used).
/// </summary>
public abstract class LinearAlignedProjector : IOnnxExportableProjector
{
    private protected LinearAlignedProjector(string name, LinearSide image, LinearSide text)
    {
        if (image.OutputDimension != text.OutputDimension)
            throw new ArgumentException($"Both sides must reach the same width, got {image.OutputDimension} and {text.OutputDimension}.");
        Name = name; ImageSide = image; TextSide = text;
    }

    /// <summary>The image-side map.</summary>
    public LinearSide ImageSide { get; }
    /// <summary>The text-side map.</summary>
    public LinearSide TextSide { get; }

    /// <summary>"least_squares", "reverse_ridge" or "procrustes".</summary>
    public string Name { get; }
    /// <summary>Width E of the shared space: the output width both sides map to.</summary>
    public int EmbeddingDimension => ImageSide.OutputDimension;
    /// <summary>False: the linear maps work on pooled features only.</summary>
    public bool UsesImageTokens => false;
    /// <summary>False: the linear maps work on pooled features only.</summary>
    public bool UsesTextTokens => false;
    /// <summary>100, as for every baseline (CLIP's fixed scale).</summary>
    public float LogitScale => 100f;

    /// <summary>[n, image dim] → [n, E], L2-normalised rows; tokens are ignored.</summary>
    public EmbeddingMatrix ProjectImages(EmbeddingMatrix pooled, TokenTensor? tokens = null) => ImageSide.Apply(pooled, "image features");

    /// <summary>[n, text dim] → [n, E], L2-normalised rows; tokens are ignored.</summary>
    public EmbeddingMatrix ProjectTexts(EmbeddingMatrix pooled, TokenTensor? tokens = null) => TextSide.Apply(pooled, "text features");

    /// <summary>Image graph <c>image_embedding</c> [batch, d] → <c>image_aligned</c> [batch, E]; the layout is irrelevant (no tokens).</summary>
    public byte[] ExportImageProjectorOnnx(ImageTokenLayout tokenLayout = ImageTokenLayout.TokensByDim)
        => ImageSide.ExportOnnx(Name + "_image", ProjectorOnnxNames.ImageEmbedding, ProjectorOnnxNames.ImageAligned);

    /// <summary>Text graph <c>text_embedding</c> [batch, d] → <c>text_aligned</c> [batch, E].</summary>
    public byte[] ExportTextProjectorOnnx()
        => TextSide.ExportOnnx(Name + "_text", ProjectorOnnxNames.TextEmbedding, ProjectorOnnxNames.TextAligned);

    internal static void CheckPairs(EmbeddingMatrix image, EmbeddingMatrix text, int minRows)
    {
        DenseMath.RequireRows(image, minRows, nameof(image));
        DenseMath.RequireRows(text, minRows, nameof(text));
        DenseMath.RequireSameRows(image, text, "image", "text");
    }

    /// <summary>Ridge solution W = (XᵀX + λ' I)⁻¹ XᵀY in float64, λ' = λ · tr(XᵀX) / d (scale-free).</summary>
    internal static float[] Ridge(EmbeddingMatrix xc, EmbeddingMatrix yc, double lambda)
    {
        using var scope = NewDisposeScope();
        var x = DenseMath.ToTensor(xc);
        var y = DenseMath.ToTensor(yc);
        var gram = x.t().matmul(x);
        double ridge = lambda * gram.trace().item<double>() / xc.Columns;
        var a = gram + ridge * eye(xc.Columns, dtype: ScalarType.Float64);
        return DenseMath.ToFloatArray(linalg.solve(a, x.t().matmul(y)));
    }
}
