using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MLNet.Align.Projection;

/// <summary>
/// The ASIF piece (Norelli et al., NeurIPS 2023, "ASIF: Coupled Data Turns Unimodal Models to Multimodal Without
/// Training"), as a module that lives in an <see cref="AlignmentNetwork"/> slot so that ASIF saves, exports to ONNX and
/// serves like a trained projector. Input x [n, d] -> r [n, N]: c = (x - mean) / ||x - mean||; s = c A^T with A the N
/// unit anchor rows [N, d]; entries below the row's k-th largest similarity and negative entries are set to 0; the
/// rest are raised to the power p. The network L2-normalises the result. Anchors are buffers (saved with the weights,
/// never trained).
/// </summary>
public sealed class AnchorProjector : Module<Tensor, Tensor>
{
    /// <summary>Unit anchor rows A [N, d] (the centred, L2-normalised anchor features of this modality).</summary>
    public readonly Tensor anchors;
    /// <summary>Mean subtracted before the cosine [d] (zeros when not centring).</summary>
    public readonly Tensor mean;

    /// <summary>An empty piece (zero anchors); <see cref="SetAnchors"/> or loaded weights fill it.</summary>
    /// <param name="inputDimension">d, the feature width (&gt; 0).</param>
    /// <param name="anchorCount">N, the number of anchors = the shared space width E (&gt; 0).</param>
    /// <param name="topK">Non-zeros kept per row, in [1, N].</param>
    /// <param name="power">Exponent p of the kept similarities (&gt; 0).</param>
    public AnchorProjector(int inputDimension, int anchorCount, int topK, double power) : base(nameof(AnchorProjector))
    {
        TopK = topK; Power = power;
        anchors = zeros(anchorCount, inputDimension);
        mean = zeros(inputDimension);
        register_buffer(nameof(anchors), anchors);
        register_buffer(nameof(mean), mean);
    }

    /// <summary>Non-zeros kept per row.</summary>
    public int TopK { get; }
    /// <summary>Exponent applied to the kept similarities.</summary>
    public double Power { get; }

    /// <summary>Copies the anchors: <paramref name="unitAnchors"/> [N, d] row-major (already centred and L2-normalised)
    /// and the centring mean [d].</summary>
    /// <exception cref="ArgumentException">A length does not match [N, d] / [d].</exception>
    public void SetAnchors(float[] unitAnchors, float[] centre)
    {
        if (unitAnchors.Length != anchors.numel() || centre.Length != mean.numel())
            throw new ArgumentException($"Anchors need {anchors.shape[0]}x{anchors.shape[1]} values and a {mean.shape[0]}-d mean; got {unitAnchors.Length} and {centre.Length}.");
        using var _ = no_grad();
        using var a = tensor(unitAnchors, anchors.shape);
        using var m = tensor(centre);
        anchors.copy_(a);
        mean.copy_(m);
    }

    /// <summary>[n, d] -> [n, N] sparse relative representation (not normalised).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var c = functional.normalize(TorchScalars.Sub(x, mean), p: 2, dim: -1);
        var s = c.matmul(anchors.t());
        // Keep entries >= the k-th largest of the row (ties at the threshold are kept, as the ONNX graph does).
        var kth = s.topk(TopK, dim: -1).values.narrow(-1, TopK - 1, 1);
        var kept = s.ge(kth);
        // The exponent as a Scalar kept alive until the op returns (an implicit one can be finalized mid-op: TorchScalars).
        using var power = Power.ToScalar();
        var r = functional.relu(s).pow(power);
        return where(kept, r, zeros_like(r)).MoveToOuterDisposeScope();
    }
}
